"""What each role may do. Domains ask `require(principal, Permission.X)`."""

from __future__ import annotations

import enum

from territoire.errors import Forbidden
from territoire.tenancy.models import Role


class Permission(enum.StrEnum):
    READ = "read"
    EDIT_REGISTRY = "edit_registry"
    OPERATE = "operate"
    FIELD_WORK = "field_work"
    MANAGE_DATA = "manage_data"
    ADMINISTER = "administer"
    INGEST_TELEMETRY = "ingest_telemetry"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {Permission.READ, Permission.EDIT_REGISTRY, Permission.OPERATE, Permission.FIELD_WORK}
    ),
    Role.FIELD_AGENT: frozenset({Permission.READ, Permission.FIELD_WORK}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.DATA_OFFICER: frozenset(
        {Permission.READ, Permission.EDIT_REGISTRY, Permission.MANAGE_DATA}
    ),
}
# Sending telemetry with an API token (devices use their own ingest tokens instead).
for _role in (Role.OPERATOR, Role.DATA_OFFICER):
    GRANTS[_role] = GRANTS[_role] | {Permission.INGEST_TELEMETRY}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def require(role: Role, permission: Permission) -> None:
    if not allows(role, permission):
        raise Forbidden(f"the role '{role.value}' may not do '{permission.value}'")
