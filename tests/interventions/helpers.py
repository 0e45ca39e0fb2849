"""A small territory for the alarms and interventions tests: two communes, a lighting
cabinet with its street lights, a waste container, and people in every role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from territoire.db.base import utcnow
from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, Tenant
from tests.conftest import Account, World

WEST = {
    "type": "Polygon",
    "coordinates": [[[5.0, 47.0], [5.1, 47.0], [5.1, 47.1], [5.0, 47.1], [5.0, 47.0]]],
}
EAST = {
    "type": "Polygon",
    "coordinates": [[[5.1, 47.0], [5.2, 47.0], [5.2, 47.1], [5.1, 47.1], [5.1, 47.0]]],
}
CABINET = "urn:ngsi-ld:StreetlightControlCabinet:c1"
LAMPS = [f"urn:ngsi-ld:Streetlight:l{index}" for index in range(1, 5)]
BIN = "urn:ngsi-ld:WasteContainer:w1"

# A whole minute, far enough in the past for every test timeline to fit before now.
BASE = (utcnow() - timedelta(days=20)).replace(second=0, microsecond=0)


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


@dataclass
class Territory:
    """A tenant with its assets; its people are created when first asked for (hashing
    passwords is the slow part of a test)."""

    world: World
    tenant: Tenant
    _accounts: dict[str, Account] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.tenant.id

    def _account(self, key: str, role: Role, email: str | None = None) -> Account:
        if key not in self._accounts:
            self._accounts[key] = self.world.account(self.tenant, role, email=email)
        return self._accounts[key]

    @property
    def operator(self) -> Account:
        return self._account("operator", Role.OPERATOR)

    @property
    def agent(self) -> Account:
        return self._account("agent", Role.FIELD_AGENT)

    @property
    def other_agent(self) -> Account:
        return self._account(
            "other_agent", Role.FIELD_AGENT, email=f"agent2.{self.tenant.slug}@example.test"
        )

    @property
    def viewer(self) -> Account:
        return self._account("viewer", Role.VIEWER)

    @property
    def admin(self) -> Account:
        return self._account("admin", Role.ADMIN)


def add_assets(session: Session, tenant_id: int) -> None:
    tenancy.create_commune(session, tenant_id, insee_code="21001", name="Ouest", boundary=WEST)
    tenancy.create_commune(session, tenant_id, insee_code="21002", name="Est", boundary=EAST)
    registry.create_entity(
        session,
        tenant_id,
        registry.EntityDraft(
            type="StreetlightControlCabinet", id=CABINET, location=point(5.05, 47.05)
        ),
    )
    for index, urn in enumerate(LAMPS):
        draft = registry.EntityDraft(
            type="Streetlight",
            id=urn,
            name=f"Lampadaire {index + 1}",
            location=point(5.05 + index * 0.001, 47.05),
            relationships={"refStreetlightControlCabinet": CABINET},
        )
        registry.create_entity(session, tenant_id, draft)
    registry.create_entity(
        session,
        tenant_id,
        registry.EntityDraft(type="WasteContainer", id=BIN, location=point(5.15, 47.05)),
    )


def territory(world: World, slug: str, *people: str) -> Territory:
    """A territory; `people` names the accounts to create now (e.g. "operator", "agent"),
    which must be done before a test opens its own session on SQLite."""
    tenant = world.tenant(slug)
    with world.database.session() as session:
        add_assets(session, tenant.id)
    place = Territory(world, tenant)
    for name in people:
        getattr(place, name)
    return place


def user_id(session: Session, account: Account) -> int:
    user = tenancy.find_user_by_email(session, account.email)
    assert user is not None
    return user.id
