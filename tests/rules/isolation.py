"""Objects of the rules domain for tests/test_tenant_isolation.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from territoire.rules import service as rules
from territoire.tenancy.models import Tenant
from tests.conftest import World

Factory = Callable[[World, Tenant], str]


def _rule(world: World, tenant: Tenant) -> str:
    draft = rules.RuleDraft(
        name=f"Lampes éteintes {uuid.uuid4().hex[:6]}", definition={"kind": "lamp_out"}
    )
    with world.database.session() as session:
        return rules.create_rule(session, tenant.id, draft).public_id


RULES_FACTORIES: dict[str, Factory] = {"rule_id": _rule}
