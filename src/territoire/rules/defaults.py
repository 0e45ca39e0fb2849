"""The default rule set offered to a tenant (and measured by `territoire evaluate detection`).

Parameters are chosen for typical French municipal equipment; `docs/detection.md` says
which simulated seeds they were tuned on. The set adapts to the tenant's registry only
where a rule needs a named entity (the weather station) or must leave one out (a
swimming pool keeps its water warm on purpose).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from territoire.registry import service as registry
from territoire.rules.service import RuleDraft

# Series that may stick: rule key suffix, attribute, entity types, and parameters. Values
# that are no evidence are ignored: a fill sensor or a hygrometer saturates at 100 %, a
# meter of a closed building and a pollutant sensor at their floor read 0, and a lighting
# cabinet whose lamps are all off draws only its controller's few watts.
STUCK_SERIES: tuple[tuple[str, str, tuple[str, ...], dict[str, Any]], ...] = (
    ("flow", "flow", ("WaterConsumptionObserved",), {}),
    ("level", "level", ("Tank",), {}),
    (
        "fillingLevel",
        "fillingLevel",
        ("WasteContainer",),
        {"ignore_values": [0.0, 1.0], "min_hours": 12.0, "history_factor": 2.0},
    ),
    # A small car park keeps its few overnight cars for a whole night, every night.
    (
        "occupiedSpotNumber",
        "occupiedSpotNumber",
        ("OffStreetParking",),
        {"min_hours": 12.0, "history_factor": 2.0},
    ),
    ("activePower", "activePower", ("Building",), {}),
    (
        "cabinetPower",
        "activePower",
        ("StreetlightControlCabinet",),
        {"ignore_below": 0.02, "min_hours": 16.0},
    ),
    ("gasConsumption", "gasConsumption", ("Building",), {"ignore_values": [0.0]}),
    ("waterConsumption", "waterConsumption", ("Building",), {"ignore_values": [0.0]}),
    ("temperature", "temperature", ("Building", "WeatherObserved"), {}),
    ("no2", "no2", ("AirQualityObserved",), {"ignore_values": [0.0]}),
    ("pm10", "pm10", ("AirQualityObserved",), {"ignore_values": [0.0]}),
    ("pm25", "pm25", ("AirQualityObserved",), {"ignore_values": [0.0]}),
    ("o3", "o3", ("AirQualityObserved",), {"ignore_values": [0.0]}),
    ("relativeHumidity", "relativeHumidity", ("WeatherObserved",), {"ignore_values": [1.0]}),
    ("atmosphericPressure", "atmosphericPressure", ("WeatherObserved",), {}),
    ("windSpeed", "windSpeed", ("WeatherObserved",), {"ignore_values": [0.0]}),
    # A spot's own few weeks say little about each hour; its street zone's spots together
    # give the hour's departure rate (11 changes due: tuning seeds 1-10).
    (
        "occupancy",
        "occupancy",
        ("ParkingSpot",),
        {"model": "changes", "group_by": "refParkingSite", "expected_changes": 11.0},
    ),
)
# Meters stuck at 0 while the building is in use (the `stuck` rules ignore 0).
OCCUPIED_ZERO_KEYS = ("stuck-waterZero", "stuck-gasZero")
POOL_USAGES = frozenset({"pool", "swimmingPool", "swimming_pool"})


def _urns_of(session: Session, tenant_id: int, entity_type: str) -> list[Any]:
    found = []
    offset = 0
    where = registry.EntityFilter(types=[entity_type])
    while True:
        page = registry.list_entities(
            session, tenant_id, where, limit=registry.MAX_PAGE_SIZE, offset=offset
        )
        found += page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return found


def _pools(session: Session, tenant_id: int) -> list[str]:
    return sorted(
        entity.urn
        for entity in _urns_of(session, tenant_id, "Building")
        if (entity.properties or {}).get("usage") in POOL_USAGES
        or "swimming_pool" in ((entity.properties or {}).get("category") or [])
    )


def _scope(types: tuple[str, ...] = (), exclude: list[str] | None = None) -> dict[str, Any]:
    return {"entity_types": list(types), "entities": [], "commune": None, "exclude": exclude or []}


def default_rules(session: Session, tenant_id: int) -> list[RuleDraft]:
    pools = _pools(session, tenant_id)
    drafts = [
        RuleDraft("Lampe éteinte", {"kind": "lamp_out"}, "major", key="lamp-out"),
        RuleDraft("Lampe allumée de jour", {"kind": "day_burner"}, "minor", key="day-burner"),
        RuleDraft("Lampe instable", {"kind": "lamp_cycling"}, "minor", key="lamp-cycling"),
        RuleDraft("Défaut d'armoire", {"kind": "cabinet_fault"}, "critical", key="cabinet-fault"),
        RuleDraft("Fuite (débit de nuit)", {"kind": "night_flow"}, "major", key="water-leak"),
        RuleDraft("Casse de canalisation", {"kind": "burst"}, "critical", key="water-burst"),
        RuleDraft(
            "Compteur de secteur qui dérive",
            {"kind": "night_flow_drift"},
            "minor",
            key="water-meter-drift",
        ),
        RuleDraft(
            "Rendement de réseau", {"kind": "network_efficiency"}, "warning", key="water-efficiency"
        ),
        RuleDraft(
            "Conteneur plein",
            # Three readings at 100 %: the ultrasonic sensor saturates once the content
            # reaches the lid, while 99 % is still reached by a container that is merely
            # nearly full for the night (tuning seeds 1-10).
            {"kind": "container_full", "level": 1.0, "readings": 3},
            "minor",
            key="container-full",
        ),
        RuleDraft(
            "Capteur de remplissage décalé",
            {"kind": "emptied_level"},
            "minor",
            key="container-sensor",
        ),
        RuleDraft(
            "Conteneur bientôt plein",
            {"kind": "container_forecast"},
            "warning",
            key="container-forecast",
        ),
        RuleDraft(
            "Bâtiment éclairé hors occupation",
            {"kind": "unoccupied_consumption"},
            "minor",
            scope=_scope(("Building",), pools),
            key="building-lit-unoccupied",
        ),
        RuleDraft(
            "Bâtiment chauffé hors occupation",
            {"kind": "unoccupied_heating"},
            "minor",
            scope=_scope(("Building",), pools),
            key="building-heated-unoccupied",
        ),
        RuleDraft(
            "Équipement muet",
            {"kind": "silence", "minutes": 150},
            "minor",
            scope=_scope(),
            key="sensor-silence",
        ),
    ]
    # Air stations drift apart from each other: particles move together closely; NO2
    # and ozone depend on each station's traffic, hence a wider tolerance (seeds 1-10).
    drafts += [
        RuleDraft(
            "Dérive de capteur (particules)",
            {"kind": "peer_drift", "attributes": ["pm10", "pm25"], "tolerance": 0.3},
            "warning",
            scope=_scope(("AirQualityObserved",)),
            key="air-drift-particles",
        ),
        RuleDraft(
            "Dérive de capteur (NO2, ozone)",
            {"kind": "peer_drift", "attributes": ["no2", "o3"], "tolerance": 0.45},
            "warning",
            scope=_scope(("AirQualityObserved",)),
            key="air-drift-gases",
        ),
    ]
    # The heating regulation holds the same set-points day after day: a building
    # thermometer whose regulated level moves is drifting (tuning seeds 1-10).
    drafts.append(
        RuleDraft(
            "Thermomètre de bâtiment décalé",
            {"kind": "thermometer_drift"},
            "warning",
            scope=_scope(("Building",)),
            key="building-thermometer-drift",
        )
    )
    # A closed building's meters read 0 for days (the stuck rule ignores 0); an occupied
    # building always draws some water, and its boiler fires while the room is held at
    # comfort (8 h of use at 0: longer than any healthy run on the tuning seeds 1-10).
    drafts += [
        RuleDraft(
            "Capteur figé à zéro (eau, bâtiment occupé)",
            {"kind": "occupied_zero", "attribute": "waterConsumption"},
            "minor",
            scope=_scope(("Building",)),
            key=OCCUPIED_ZERO_KEYS[0],
        ),
        RuleDraft(
            "Capteur figé à zéro (gaz, bâtiment occupé et chauffé)",
            {
                "kind": "occupied_zero",
                "attribute": "gasConsumption",
                "temperature_attribute": "temperature",
                "readings": 32,
            },
            "minor",
            scope=_scope(("Building",)),
            key=OCCUPIED_ZERO_KEYS[1],
        ),
    ]
    weather = _urns_of(session, tenant_id, "WeatherObserved")
    if weather:
        drafts.append(
            RuleDraft(
                "Dérive de consommation de gaz",
                {"kind": "consumption_drift", "weather_entity": weather[0].urn},
                "warning",
                scope=_scope(("Building",), pools),
                key="building-gas-drift",
            )
        )
    for suffix, attribute, types, parameters in STUCK_SERIES:
        drafts.append(
            RuleDraft(
                f"Capteur figé ({suffix})",
                {"kind": "stuck", "attribute": attribute, **parameters},
                "minor",
                scope=_scope(types),
                key=f"stuck-{suffix}",
            )
        )
    return drafts
