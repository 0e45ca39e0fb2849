"""Seed the demo intercommunality: three communes, a user per role, a few hundred assets.

Idempotent: running it again adds only what is missing. The simulator extends this
territory; keep every demo fixture here so there is one place to change.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, Tenant, TenantKind

DEMO_SLUG = "demo"
DEMO_NAME = "Communauté de communes du Val de Lanterne (démo)"
DEMO_SIREN = "249000019"
DEMO_SEED = 20261122

# Fictional communes on a fictional plateau; INSEE-shaped codes that are not real ones.
COMMUNES: list[dict[str, Any]] = [
    {
        "insee_code": "39901",
        "name": "Clairval",
        "population": 9200,
        "ring": [
            (5.470, 47.000),
            (5.552, 47.004),
            (5.548, 47.052),
            (5.556, 47.100),
            (5.474, 47.097),
            (5.466, 47.050),
        ],
    },
    {
        "insee_code": "39902",
        "name": "Montfleury",
        "population": 2100,
        "ring": [
            (5.400, 47.002),
            (5.470, 47.000),
            (5.466, 47.050),
            (5.474, 47.097),
            (5.404, 47.094),
        ],
    },
    {
        "insee_code": "39903",
        "name": "Les Essarts-sur-Lanterne",
        "population": 1400,
        "ring": [
            (5.552, 47.004),
            (5.620, 47.006),
            (5.618, 47.098),
            (5.556, 47.100),
            (5.548, 47.052),
        ],
    },
]

# Town and village centres, where streets and assets are placed.
CENTRES: dict[str, tuple[float, float]] = {
    "39901": (5.510, 47.050),
    "39902": (5.436, 47.046),
    "39903": (5.585, 47.055),
}

DEMO_USERS: list[tuple[Role, str, str]] = [
    (Role.ADMIN, "admin@demo.territoire.test", "Alice Admin"),
    (Role.OPERATOR, "operateur@demo.territoire.test", "Olivier Opérateur"),
    (Role.FIELD_AGENT, "agent@demo.territoire.test", "Fatou Agente"),
    (Role.VIEWER, "elu@demo.territoire.test", "Étienne Élu"),
    (Role.DATA_OFFICER, "donnees@demo.territoire.test", "Dominique Données"),
]
DEMO_PASSWORD_SUFFIX = "-demo-2026"


@dataclass
class SeedReport:
    tenant: Tenant
    created_users: list[tuple[str, str, Role]] = field(default_factory=list)
    entities_added: int = 0
    credentials: list[tuple[str, str, Role]] = field(default_factory=list)


def demo_password(role: Role) -> str:
    return role.value.replace("_", "-") + DEMO_PASSWORD_SUFFIX


def _closed(ring: list[tuple[float, float]]) -> list[list[float]]:
    points = [[lon, lat] for lon, lat in ring]
    return [*points, points[0]]


def ensure_tenant(session: Session) -> Tenant:
    tenant = tenancy.find_tenant_by_slug(session, DEMO_SLUG)
    if tenant is None:
        tenant = tenancy.create_tenant(
            session,
            slug=DEMO_SLUG,
            name=DEMO_NAME,
            siren=DEMO_SIREN,
            kind=TenantKind.INTERCOMMUNALITY,
        )
    existing = {c.insee_code for c in tenancy.list_communes(session, tenant.id)}
    for commune in COMMUNES:
        if commune["insee_code"] in existing:
            continue
        tenancy.create_commune(
            session,
            tenant.id,
            insee_code=commune["insee_code"],
            name=commune["name"],
            population=commune["population"],
            boundary={"type": "Polygon", "coordinates": [_closed(commune["ring"])]},
        )
    return tenant


def ensure_users(session: Session, tenant: Tenant, report: SeedReport) -> None:
    for role, email, full_name in DEMO_USERS:
        password = demo_password(role)
        user = tenancy.find_user_by_email(session, email)
        if user is None:
            user = tenancy.create_user(session, email=email, full_name=full_name, password=password)
            report.created_users.append((email, password, role))
        tenancy.set_role(session, user_id=user.id, tenant_id=tenant.id, role=role)
        report.credentials.append((email, password, role))


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}


def _offset(centre: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    lon, lat = centre
    metres_per_degree_lat = 111_200.0
    metres_per_degree_lon = metres_per_degree_lat * math.cos(math.radians(lat))
    return lon + east_m / metres_per_degree_lon, lat + north_m / metres_per_degree_lat


def demo_drafts(seed: int = DEMO_SEED) -> list[registry.EntityDraft]:
    """A few hundred assets around each centre: streets, lights, bins, parking, buildings."""
    rng = random.Random(seed)
    drafts: list[registry.EntityDraft] = []
    for code, centre in CENTRES.items():
        streets = 6 if code == "39901" else 3
        for street in range(streets):
            drafts.extend(_street_with_lights(rng, code, centre, street))
        drafts.extend(_containers(rng, code, centre, 24 if code == "39901" else 10))
        drafts.extend(_parking(rng, code, centre, 30 if code == "39901" else 6))
        drafts.append(_building(rng, code, centre, "Mairie", "townHall"))
        drafts.append(_building(rng, code, centre, "École", "school"))
    drafts.append(
        registry.EntityDraft(
            type="WeatherObserved",
            id="urn:ngsi-ld:WeatherObserved:clairval-meteo",
            name="Station météo de Clairval",
            location=_point(*_offset(CENTRES["39901"], 300, 500)),
            properties={"dataProvider": "demo"},
        )
    )
    for index, pollutants in enumerate((["NO2", "PM10", "PM2.5", "O3"], ["NO2", "PM10"])):
        drafts.append(
            registry.EntityDraft(
                type="AirQualityObserved",
                id=f"urn:ngsi-ld:AirQualityObserved:aq-{index + 1}",
                name=f"Station air {index + 1}",
                location=_point(*_offset(CENTRES["39901"], -400 + 800 * index, -200)),
                properties={"measuredPollutants": pollutants},
            )
        )
    return drafts


def _street_with_lights(
    rng: random.Random, code: str, centre: tuple[float, float], street: int
) -> list[registry.EntityDraft]:
    horizontal = street % 2 == 0
    shift = (street // 2 - 1) * 220.0 + rng.uniform(-30, 30)
    length = rng.uniform(600, 1100)
    start = (
        _offset(centre, -length / 2, shift) if horizontal else _offset(centre, shift, -length / 2)
    )
    end = _offset(centre, length / 2, shift) if horizontal else _offset(centre, shift, length / 2)
    street_id = f"{code}-rue-{street + 1}"
    cabinet_urn = f"urn:ngsi-ld:StreetlightControlCabinet:{street_id}-armoire"
    drafts = [
        registry.EntityDraft(
            type="RoadSegment",
            id=f"urn:ngsi-ld:RoadSegment:{street_id}",
            name=f"Rue {street + 1} ({code})",
            location={
                "type": "LineString",
                "coordinates": [[round(p, 6) for p in start], [round(p, 6) for p in end]],
            },
        ),
        registry.EntityDraft(
            type="StreetlightControlCabinet",
            id=cabinet_urn,
            name=f"Armoire {street_id}",
            location=_point(*start),
            properties={"maximumPowerAvailable": 12.0},
        ),
    ]
    lights = int(length // 35)
    for index in range(lights):
        fraction = (index + 0.5) / lights
        lon = start[0] + (end[0] - start[0]) * fraction
        lat = start[1] + (end[1] - start[1]) * fraction
        drafts.append(
            registry.EntityDraft(
                type="Streetlight",
                id=f"urn:ngsi-ld:Streetlight:{street_id}-{index + 1:03d}",
                name=f"Point lumineux {street_id}-{index + 1:03d}",
                location=_point(lon, lat),
                properties={"powerConsumption": rng.choice([35, 50, 70]), "lanternHeight": 8},
                relationships={"refStreetlightControlCabinet": cabinet_urn},
            )
        )
    return drafts


def _containers(
    rng: random.Random, code: str, centre: tuple[float, float], count: int
) -> list[registry.EntityDraft]:
    return [
        registry.EntityDraft(
            type="WasteContainer",
            id=f"urn:ngsi-ld:WasteContainer:{code}-bac-{i + 1:03d}",
            name=f"Conteneur {code}-{i + 1:03d}",
            location=_point(*_offset(centre, rng.uniform(-600, 600), rng.uniform(-600, 600))),
            properties={
                "wasteType": rng.choice(["residual", "packaging", "glass"]),
                "cargoVolume": rng.choice([660, 770, 1100]),
            },
        )
        for i in range(count)
    ]


def _parking(
    rng: random.Random, code: str, centre: tuple[float, float], count: int
) -> list[registry.EntityDraft]:
    return [
        registry.EntityDraft(
            type="ParkingSpot",
            id=f"urn:ngsi-ld:ParkingSpot:{code}-place-{i + 1:03d}",
            name=f"Place {code}-{i + 1:03d}",
            location=_point(*_offset(centre, rng.uniform(-250, 250), rng.uniform(-250, 250))),
            properties={"category": ["onStreet"]},
        )
        for i in range(count)
    ]


def _building(
    rng: random.Random, code: str, centre: tuple[float, float], label: str, category: str
) -> registry.EntityDraft:
    return registry.EntityDraft(
        type="Building",
        id=f"urn:ngsi-ld:Building:{code}-{category}",
        name=f"{label} ({code})",
        location=_point(*_offset(centre, rng.uniform(-150, 150), rng.uniform(-150, 150))),
        properties={"category": [category]},
    )


def seed_demo(session: Session) -> SeedReport:
    tenant = ensure_tenant(session)
    report = SeedReport(tenant=tenant)
    ensure_users(session, tenant, report)
    drafts = demo_drafts()
    present = registry.existing_urns(session, tenant.id, [d.id for d in drafts if d.id])
    locator = registry.commune_locator(session, tenant.id)
    rows = [
        registry.validated_row(draft, tenant.id, locator)
        for draft in drafts
        if draft.id not in present
    ]
    report.entities_added = registry.insert_entities(session, rows)
    return report
