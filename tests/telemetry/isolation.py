"""Objects of the telemetry domain for tests/test_tenant_isolation.py: one factory per
path parameter name."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from territoire.registry import service as registry
from territoire.telemetry import service as telemetry
from territoire.tenancy.models import Tenant
from tests.conftest import World

Factory = Callable[[World, Tenant], str]


def _meter(world: World, tenant: Tenant) -> str:
    urn = f"urn:ngsi-ld:WaterConsumptionObserved:{uuid.uuid4()}"
    with world.database.session() as session:
        registry.create_entity(
            session, tenant.id, registry.EntityDraft(type="WaterConsumptionObserved", id=urn)
        )
    return urn


def _device(world: World, tenant: Tenant) -> str:
    device_id = f"dev-{uuid.uuid4().hex[:12]}"
    with world.database.session() as session:
        telemetry.register_device(
            session,
            tenant.id,
            device_id=device_id,
            entity=_meter(world, tenant),
            payload_format="senml",
            mapping=None,
        )
    return device_id


def _series(world: World, tenant: Tenant) -> str:
    with world.database.session() as session:
        series_id = telemetry.ensure_series(
            session, tenant.id, _meter(world, tenant), "flow", "MQH"
        )
    return str(series_id)


TELEMETRY_FACTORIES: dict[str, Factory] = {"device_id": _device, "series_id": _series}
