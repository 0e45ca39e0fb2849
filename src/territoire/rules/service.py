"""Rule services: define, edit (a new version each time), list, archive; evaluate.

Other domains and the CLI use these functions only. A rule's key is its stable name: the
alarms it raises carry it. Editing keeps the key and the learned state, writes a new
version (the previous ones stay, for the algorithm register), and regenerates the
French and English descriptions from the parameters.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.db import Database
from territoire.db.base import utcnow
from territoire.errors import AlreadyExists, Conflict, FieldProblem, InvalidInput, NotFound, invalid
from territoire.registry import service as registry
from territoire.registry.types import ENTITY_TYPES
from territoire.rules import engine
from territoire.rules.definitions import (
    KINDS,
    ConsumptionDrift,
    Definition,
    as_json,
    parse_definition,
)
from territoire.rules.engine import Outcome, evaluate_batch, run_timers
from territoire.rules.models import Rule, RuleVersion
from territoire.tenancy import service as tenancy

__all__ = [
    "KINDS",
    "Outcome",
    "RuleDraft",
    "RulePatch",
    "archive_rule",
    "create_rule",
    "evaluate_batch",
    "get_rule",
    "list_rules",
    "run_timers",
    "update_rule",
    "versions_of",
]

log = logging.getLogger("territoire.rules")

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
MAX_SCOPE_ITEMS = 10_000


@dataclass
class RuleDraft:
    name: str
    definition: dict[str, Any]
    severity: str = "minor"
    scope: dict[str, Any] | None = None
    enabled: bool = True
    key: str | None = None


@dataclass
class RulePatch:
    """What an edit may change; None leaves a field as it is."""

    name: str | None = None
    definition: dict[str, Any] | None = None
    severity: str | None = None
    scope: dict[str, Any] | None = None
    enabled: bool | None = None
    expected_version: int | None = None


# --- checks ----------------------------------------------------------------------------


def _name(value: Any) -> str:
    cleaned = value.strip() if isinstance(value, str) else ""
    if not cleaned or len(cleaned) > 200:
        raise invalid("name", "a text of 1 to 200 characters")
    return cleaned


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    return (slug or "rule")[:80]


def _key(session: Session, tenant_id: int, wanted: str | None, name: str) -> str:
    if wanted is not None:
        if not isinstance(wanted, str) or not KEY_PATTERN.match(wanted):
            raise invalid("key", "letters, digits and _ . : -, at most 100 characters")
        if _find_by_key(session, tenant_id, wanted) is not None:
            raise AlreadyExists(f"a rule with the key {wanted} already exists")
        return wanted
    base = _slug(name)
    candidate, number = base, 1
    while _find_by_key(session, tenant_id, candidate) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _find_by_key(session: Session, tenant_id: int, key: str) -> Rule | None:
    return session.scalar(select(Rule).where(Rule.tenant_id == tenant_id, Rule.key == key))


def _scope(session: Session, tenant_id: int, scope: Any) -> dict[str, Any]:
    if scope is None:
        return {"entity_types": [], "entities": [], "commune": None, "exclude": []}
    if not isinstance(scope, dict):
        raise invalid("scope", "an object with entity_types, entities, commune, exclude")
    unknown = set(scope) - {"entity_types", "entities", "commune", "exclude"}
    if unknown:
        raise invalid("scope", f"unknown field(s): {', '.join(sorted(unknown))}")
    types = _strings(scope.get("entity_types"), "scope.entity_types")
    for entity_type in types:
        if entity_type not in ENTITY_TYPES:
            raise invalid("scope.entity_types", f"unknown entity type {entity_type!r}")
    entities = _urns(session, tenant_id, scope.get("entities"), "scope.entities")
    excluded = _urns(session, tenant_id, scope.get("exclude"), "scope.exclude", must_exist=False)
    commune = scope.get("commune")
    if commune is not None:
        if not isinstance(commune, str):
            raise invalid("scope.commune", "an INSEE code")
        try:
            tenancy.get_commune(session, tenant_id, commune)
        except NotFound as error:
            raise invalid("scope.commune", f"no commune {commune} in this tenant") from error
    return {"entity_types": types, "entities": entities, "commune": commune, "exclude": excluded}


def _strings(value: Any, field_name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(field_name, "a list of texts")
    if len(value) > MAX_SCOPE_ITEMS:
        raise invalid(field_name, f"at most {MAX_SCOPE_ITEMS} items")
    return sorted(set(value))


def _urns(
    session: Session, tenant_id: int, value: Any, field_name: str, *, must_exist: bool = True
) -> list[str]:
    urns = _strings(value, field_name)
    for urn in urns:
        if not registry.URN_PATTERN.match(urn):
            raise invalid(field_name, f"{urn!r} is not urn:ngsi-ld:<Type>:<id>")
    if must_exist and urns:
        missing = set(urns) - registry.existing_urns(session, tenant_id, urns)
        if missing:
            raise invalid(field_name, f"no entity {sorted(missing)[0]} in this tenant")
    return urns


def _definition(session: Session, tenant_id: int, data: Any) -> Definition:
    definition = parse_definition(data)
    if isinstance(definition, ConsumptionDrift) and not registry.existing_urns(
        session, tenant_id, [definition.weather_entity]
    ):
        raise invalid("definition.weather_entity", "no such entity in this tenant")
    return definition


def _severity(value: Any) -> Severity:
    return alarms.parse_severity(value)


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid("enabled", "true or false")
    return value


# --- writing ---------------------------------------------------------------------------


def _describe(rule: Rule, definition: Definition) -> None:
    rule.description_fr = definition.describe("fr") + _scope_text(rule.scope, "fr")
    rule.description_en = definition.describe("en") + _scope_text(rule.scope, "en")


def _scope_text(scope: dict[str, Any], lang: str) -> str:
    parts: list[str] = []
    french = lang == "fr"
    if scope.get("entities"):
        count = len(scope["entities"])
        parts.append(f"{count} entité(s) désignée(s)" if french else f"{count} named entities")
    elif scope.get("entity_types"):
        parts.append("types " + ", ".join(scope["entity_types"]))
    if scope.get("commune"):
        parts.append(f"commune {scope['commune']}")
    if scope.get("exclude"):
        count = len(scope["exclude"])
        parts.append(f"{count} exclue(s)" if lang == "fr" else f"{count} excluded")
    if not parts:
        return ""
    return (" Périmètre : " if lang == "fr" else " Scope: ") + "; ".join(parts) + "."


def _snapshot(session: Session, rule: Rule, by_user: int | None) -> None:
    session.add(
        RuleVersion(
            rule_id=rule.id,
            version=rule.version,
            name=rule.name,
            parameters=rule.parameters,
            scope=rule.scope,
            severity=rule.severity,
            enabled=rule.enabled,
            description_fr=rule.description_fr,
            description_en=rule.description_en,
            created_at=rule.updated_at,
            created_by=by_user,
        )
    )
    session.flush()


def create_rule(
    session: Session, tenant_id: int, draft: RuleDraft, *, by_user: int | None = None
) -> Rule:
    problems: list[FieldProblem] = []
    checked: dict[str, Any] = {}
    for name, check in (
        ("name", lambda: _name(draft.name)),
        ("definition", lambda: _definition(session, tenant_id, draft.definition)),
        ("severity", lambda: _severity(draft.severity)),
        ("scope", lambda: _scope(session, tenant_id, draft.scope)),
        ("enabled", lambda: _enabled(draft.enabled)),
    ):
        try:
            checked[name] = check()
        except InvalidInput as error:
            problems += error.problems
    if problems:
        raise InvalidInput("; ".join(f"{p.field}: {p.reason}" for p in problems), problems)
    definition: Definition = checked["definition"]
    now = utcnow()
    rule = Rule(
        public_id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        key=_key(session, tenant_id, draft.key, checked["name"]),
        kind=definition.kind_name,
        name=checked["name"],
        version=1,
        parameters=as_json(definition),
        scope=checked["scope"],
        severity=checked["severity"],
        enabled=checked["enabled"],
        error_count=0,
        created_at=now,
        updated_at=now,
    )
    _describe(rule, definition)
    session.add(rule)
    session.flush()
    _snapshot(session, rule, by_user)
    return rule


def update_rule(
    session: Session,
    tenant_id: int,
    rule_id: str,
    patch: RulePatch,
    *,
    by_user: int | None = None,
) -> Rule:
    rule = get_rule(session, tenant_id, rule_id, for_update=True)
    if rule.archived_at is not None:
        raise Conflict("an archived rule cannot be edited; create a new one")
    if patch.expected_version is not None and patch.expected_version != rule.version:
        raise Conflict(
            f"the rule is at version {rule.version}, not {patch.expected_version}; reload it"
        )
    changes: dict[str, Any] = {}
    if patch.name is not None:
        changes["name"] = _name(patch.name)
    definition = parse_definition(rule.parameters)
    if patch.definition is not None:
        definition = _definition(session, tenant_id, patch.definition)
        if definition.kind_name != rule.kind:
            raise invalid("definition.kind", "a rule keeps its kind; create a new rule instead")
        changes["parameters"] = as_json(definition)
    if patch.severity is not None:
        changes["severity"] = _severity(patch.severity)
    if patch.scope is not None:
        changes["scope"] = _scope(session, tenant_id, patch.scope)
    if patch.enabled is not None:
        changes["enabled"] = _enabled(patch.enabled)
    changed = {k: v for k, v in changes.items() if getattr(rule, k) != v}
    if not changed:
        return rule
    for name, value in changed.items():
        setattr(rule, name, value)
    rule.version += 1
    rule.updated_at = utcnow()
    _describe(rule, definition)
    _snapshot(session, rule, by_user)
    return rule


def archive_rule(
    session: Session, tenant_id: int, rule_id: str, *, by_user: int | None = None
) -> Rule:
    """Stop a rule for good; its versions stay (the algorithm register keeps history).
    Its active alarms stay too: operators clear them once they know the state of things."""
    rule = get_rule(session, tenant_id, rule_id, for_update=True)
    if rule.archived_at is not None:
        return rule
    now = utcnow()
    rule.archived_at = now
    rule.enabled = False
    rule.version += 1
    rule.updated_at = now
    _snapshot(session, rule, by_user)
    return rule


def clear_error(session: Session, tenant_id: int, rule_id: str) -> Rule:
    rule = get_rule(session, tenant_id, rule_id, for_update=True)
    rule.last_error = None
    rule.last_error_at = None
    session.flush()
    return rule


# --- reading ---------------------------------------------------------------------------


def get_rule(session: Session, tenant_id: int, rule_id: str, *, for_update: bool = False) -> Rule:
    query = select(Rule).where(Rule.tenant_id == tenant_id, Rule.public_id == rule_id)
    if for_update:
        query = query.with_for_update()
    rule = session.scalar(query)
    if rule is None:
        raise NotFound(f"no rule {rule_id}")
    return rule


def find_rule(session: Session, tenant_id: int, key: str) -> Rule | None:
    return _find_by_key(session, tenant_id, key)


def list_rules(
    session: Session, tenant_id: int, *, include_archived: bool = False, kind: str | None = None
) -> list[Rule]:
    query = select(Rule).where(Rule.tenant_id == tenant_id)
    if not include_archived:
        query = query.where(Rule.archived_at.is_(None))
    if kind is not None:
        if kind not in KINDS:
            raise invalid("kind", f"one of {', '.join(KINDS)}")
        query = query.where(Rule.kind == kind)
    return list(session.scalars(query.order_by(Rule.name, Rule.id)))


def versions_of(session: Session, rule: Rule) -> list[RuleVersion]:
    return list(
        session.scalars(
            select(RuleVersion)
            .where(RuleVersion.rule_id == rule.id)
            .order_by(RuleVersion.version.desc())
        )
    )


def rule_keys_by_kind(session: Session, tenant_id: int) -> dict[str, list[str]]:
    """Rule keys per kind, archived ones included (to read the alarms they raised)."""
    found: dict[str, list[str]] = {}
    for key, kind in session.execute(
        select(Rule.key, Rule.kind).where(Rule.tenant_id == tenant_id).order_by(Rule.key)
    ):
        found.setdefault(kind, []).append(key)
    return found


def describe_definition(data: Any) -> dict[str, str]:
    """The descriptions a definition would get (the admin page previews them)."""
    definition = parse_definition(data)
    return {"fr": definition.describe("fr"), "en": definition.describe("en")}


def install_rules(
    session: Session, tenant_id: int, drafts: Sequence[RuleDraft], *, by_user: int | None = None
) -> list[Rule]:
    """Create the drafts whose key is not taken yet (installing twice changes nothing)."""
    created = []
    for draft in drafts:
        if draft.key is not None and _find_by_key(session, tenant_id, draft.key) is not None:
            continue
        created.append(create_rule(session, tenant_id, draft, by_user=by_user))
    return created


# --- running ---------------------------------------------------------------------------


def run_timers_forever(database: Database, stop: threading.Event, every: float = 60.0) -> None:
    """A worker's timer loop (a thread): run the timers every `every` seconds until stopped."""
    while not stop.wait(every):
        _timer_pass(database)


async def run_timers_in_background(database: Database, every: float = 60.0) -> None:
    """The embedded default's timer loop (an asyncio task in the web process)."""
    while True:
        await asyncio.sleep(every)
        await asyncio.to_thread(_timer_pass, database)


def _timer_pass(database: Database, now: datetime | None = None) -> None:
    try:
        run_timers(database, now)
    except Exception:  # a failed pass must not stop the next ones
        log.exception("rule timers failed")


def forget_caches() -> None:
    engine.forget_caches()
