"""The main navigation, to which each domain adds its own entries.

A domain registers its entries once, at import of its routes module, e.g.:

    from territoire.web.i18n import N_
    from territoire.web.nav import NavEntry, register_nav

    register_nav(NavEntry("alarms", N_("Alarms"), "/alarms", Permission.OPERATE, order=40))

The base template then shows the entries the signed-in role may use, in `order`.
"""

from __future__ import annotations

from dataclasses import dataclass

from territoire.tenancy.models import Role
from territoire.tenancy.permissions import Permission, allows
from territoire.web.i18n import N_


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str  # an English message id, translated when shown
    path: str
    permission: Permission = Permission.READ
    order: int = 100

    def is_current(self, path: str) -> bool:
        if self.path == "/":
            return path == "/"
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


_entries: dict[str, NavEntry] = {}


def register_nav(entry: NavEntry) -> None:
    """Add or replace (by key) a navigation entry; registering twice is harmless."""
    _entries[entry.key] = entry


def nav_entries(role: Role | None) -> list[NavEntry]:
    if role is None:
        return []
    visible = [entry for entry in _entries.values() if allows(role, entry.permission)]
    return sorted(visible, key=lambda entry: (entry.order, entry.key))


register_nav(NavEntry("home", N_("Home"), "/", order=0))
register_nav(NavEntry("entities", N_("Assets"), "/entities", order=10))
register_nav(NavEntry("map", N_("Map"), "/map", order=20))
