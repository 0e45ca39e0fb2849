"""Objects of the alarms and interventions domains for tests/test_tenant_isolation.py:
one factory per path parameter name, and request bodies that pass validation (so that
the answer is about the object, not the body)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.db.base import utcnow
from territoire.interventions import service
from territoire.registry import service as registry
from territoire.tenancy.models import Tenant
from tests.conftest import World

Factory = Callable[[World, Tenant], str]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64

TITLE = "Isolation"


def _team(world: World, tenant: Tenant) -> str:
    with world.database.session() as session:
        existing = service.list_teams(session, tenant.id)
        if existing:
            return existing[0].public_id
        return service.create_team(session, tenant.id, name=f"Équipe {tenant.slug}").public_id


def _work_order(world: World, tenant: Tenant) -> str:
    """One work order per tenant serves {work_order_id} and {photo_id}: a photo is found
    only under its own work order."""
    team = _team(world, tenant)
    with world.database.session() as session:
        mine = service.list_work_orders(session, tenant.id, service.WorkOrderFilter()).items
        existing = [order for order in mine if order.title == TITLE]
        if existing:
            return existing[0].public_id
        draft = service.WorkOrderDraft(title=TITLE, team_id=team)
        order = service.create_work_order(session, tenant.id, draft, created_by=None)
        service.transition(session, tenant.id, order.public_id, "start", by_user=None)
        return order.public_id


def _photo(world: World, tenant: Tenant) -> str:
    order = _work_order(world, tenant)
    uploads = world.app.state.settings.uploads_dir  # type: ignore[attr-defined]
    with world.database.session() as session:
        photo = service.add_photo(
            session, tenant.id, order, content=PNG, uploads_dir=uploads, by_user=None
        )
        return photo.public_id


def _alarm(world: World, tenant: Tenant) -> str:
    urn = f"urn:ngsi-ld:Streetlight:iso-{uuid.uuid4()}"
    with world.database.session() as session:
        registry.create_entity(session, tenant.id, registry.EntityDraft(type="Streetlight", id=urn))
        signal = alarms.AlarmSignal("lamp_out", urn, Severity.MAJOR, "Isolation", utcnow())
        return alarms.raise_alarm(session, tenant.id, signal).public_id


OPERATIONS_FACTORIES: dict[str, Factory] = {
    "alarm_id": _alarm,
    "team_id": _team,
    "work_order_id": _work_order,
    "photo_id": _photo,
}

OPERATIONS_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/alarms/{alarm_id}/comments"): {"text": "coucou"},
    ("POST", "/api/v1/alarms/{alarm_id}/assign"): {"assignee": None},
    ("POST", "/api/v1/work-orders/{work_order_id}/transition"): {"action": "hold"},
    ("POST", "/api/v1/work-orders/{work_order_id}/dispatch"): {"team_id": "any"},
    ("POST", "/api/v1/work-orders/{work_order_id}/notes"): {"text": "coucou"},
    ("POST", "/api/v1/work-orders/{work_order_id}/reports"): {"text": "coucou"},
}
