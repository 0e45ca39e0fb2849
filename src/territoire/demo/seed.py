"""Seed the demo intercommunality: three communes, a user per role, the simulated town.

Idempotent: running it again adds only what is missing. The assets, their devices and
their readings come from the simulator (`territoire.simulator`); keep every demo
fixture here so there is one place to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from territoire.interventions.demo import seed_operations
from territoire.requests.demo import seed_demo_requests
from territoire.simulator.service import seed_territory
from territoire.simulator.sizes import Size
from territoire.simulator.territory import TOWNS, build_territory
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, Tenant, TenantKind

DEMO_SLUG = "demo"
DEMO_NAME = "Communauté de communes du Val de Lanterne (démo)"
DEMO_SIREN = "249000019"
DEMO_SEED = 20261122
DEMO_SIZE = Size.MEDIUM

# Fictional communes on a fictional plateau; INSEE-shaped codes that are not real ones.
COMMUNES: list[dict[str, Any]] = [
    {"insee_code": t.code, "name": t.name, "population": t.population, "ring": list(t.ring)}
    for t in TOWNS
]

# Town and village centres, where streets and assets are placed.
CENTRES: dict[str, tuple[float, float]] = {t.code: t.centre for t in TOWNS}

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
    devices_added: int = 0
    work_orders_added: int = 0
    requests_added: int = 0
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


def seed_demo(session: Session, size: Size = DEMO_SIZE) -> SeedReport:
    """Tenant, communes, users, the simulated territory's entities and devices, then
    operations (teams, alarms, work orders) and citizen requests."""
    tenant = ensure_tenant(session)
    report = SeedReport(tenant=tenant)
    ensure_users(session, tenant, report)
    outcome = seed_territory(session, tenant.id, build_territory(DEMO_SEED, size))
    report.entities_added = outcome.entities_added
    report.devices_added = outcome.devices_added
    # Teams, a grouped alarm and work orders at several stages, then citizen requests:
    # so that every screen has something to show on first visit.
    report.work_orders_added = seed_operations(session, tenant.id).work_orders_added
    report.requests_added = seed_demo_requests(session, tenant.id)
    return report
