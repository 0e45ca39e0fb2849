"""Alarm services: what a rules engine calls, and what operators do in the console.

Lifecycle: active_unacknowledged → active_acknowledged → cleared → closed. An alarm is
cleared automatically when its condition ends (`clear_alarm_condition`) or by hand;
acknowledging a cleared alarm that nobody acknowledged is allowed (it counts for the
mean time to acknowledge). One alarm per (rule, entity) is active at a time: a repeat
raises its count and last-seen time. Alarms are correlated by a group key — the URN of
a cabinet, district meter or street-light group: the active alarm on that entity becomes
the parent of the alarms below it, whichever comes first.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from territoire.alarms.models import (
    ACTIVE_STATUSES,
    SEVERITY_RANK,
    Alarm,
    AlarmEvent,
    AlarmStatus,
    ClearKind,
    Severity,
)
from territoire.db.base import utcnow
from territoire.errors import Conflict, InvalidInput, NotFound, invalid
from territoire.interventions import service as interventions
from territoire.interventions.models import Priority, Skill, WorkOrder, WorkOrderStatus
from territoire.registry import service as registry
from territoire.registry.models import Entity
from territoire.registry.types import Domain, domain_of
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows

RULE_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
MAX_MESSAGE = 500
MAX_COMMENT = 2000
MAX_PAGE_SIZE = 500
# Observations stamped slightly ahead of our clock are accepted (device clock drift).
FUTURE_TOLERANCE = timedelta(minutes=5)

PRIORITY_OF_SEVERITY: dict[Severity, Priority] = {
    Severity.CRITICAL: Priority.URGENT,
    Severity.MAJOR: Priority.HIGH,
    Severity.MINOR: Priority.NORMAL,
    Severity.WARNING: Priority.LOW,
}
SKILL_OF_DOMAIN: dict[Domain, Skill] = {
    Domain.LIGHTING: Skill.LIGHTING,
    Domain.WATER: Skill.WATER,
    Domain.WASTE: Skill.WASTE,
    Domain.PARKING: Skill.PARKING,
    Domain.BUILDINGS: Skill.BUILDINGS,
    Domain.MOBILITY: Skill.ROADS,
}


@dataclass(frozen=True)
class AlarmSignal:
    """What a rule reports when its condition holds for an entity."""

    rule_key: str
    entity_urn: str
    severity: Severity | str
    message: str
    observed_at: datetime
    value: float | None = None
    group_key: str | None = None


@dataclass
class AlarmFilter:
    statuses: Sequence[AlarmStatus] = ()
    severities: Sequence[Severity] = ()
    rule_key: str | None = None
    entity_urn: str | None = None
    commune_id: int | None = None
    assignee_id: int | None = None
    parent_id: int | None = None
    top_level: bool = False
    raised_from: datetime | None = None
    raised_until: datetime | None = None


@dataclass
class Page:
    items: list[Alarm]
    total: int
    limit: int
    offset: int


# --- checks --------------------------------------------------------------------------


def parse_severity(value: Any, field_name: str = "severity") -> Severity:
    try:
        return Severity(value)
    except ValueError as error:
        allowed = ", ".join(s.value for s in Severity)
        raise invalid(field_name, f"one of {allowed}") from error


def parse_status(value: Any, field_name: str = "status") -> AlarmStatus:
    try:
        return AlarmStatus(value)
    except ValueError as error:
        allowed = ", ".join(s.value for s in AlarmStatus)
        raise invalid(field_name, f"one of {allowed}") from error


def _check_signal(signal: AlarmSignal) -> tuple[Severity, str]:
    if not isinstance(signal.rule_key, str) or not RULE_KEY_PATTERN.match(signal.rule_key):
        raise invalid("rule_key", "letters, digits and _ . : -, at most 100 characters")
    if not isinstance(signal.entity_urn, str) or not registry.URN_PATTERN.match(signal.entity_urn):
        raise invalid("entity_urn", "an entity id is urn:ngsi-ld:<Type>:<local id>")
    severity = parse_severity(signal.severity)
    message = signal.message.strip() if isinstance(signal.message, str) else ""
    if not message or len(message) > MAX_MESSAGE:
        raise invalid("message", f"a text of 1 to {MAX_MESSAGE} characters")
    _check_time(signal.observed_at, "observed_at")
    if signal.value is not None and (
        isinstance(signal.value, bool)
        or not isinstance(signal.value, int | float)
        or not math.isfinite(signal.value)
    ):
        raise invalid("value", "a finite number or nothing")
    if signal.group_key is not None:
        if not registry.URN_PATTERN.match(signal.group_key):
            raise invalid("group_key", "the URN of the grouping entity (cabinet, district…)")
        if signal.group_key == signal.entity_urn:
            raise invalid("group_key", "an alarm cannot be grouped under its own entity")
    return severity, message


def _check_time(moment: Any, field_name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise invalid(field_name, "a time with its time zone is required")
    if moment > utcnow() + FUTURE_TOLERANCE:
        raise invalid(field_name, "in the future")
    return moment


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as error:
        raise Conflict("the alarm was changed meanwhile; reload and try again") from error


def _record(
    session: Session,
    alarm: Alarm,
    kind: str,
    *,
    user_id: int | None = None,
    text: str | None = None,
    at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> AlarmEvent:
    event = AlarmEvent(
        alarm_id=alarm.id, at=at or utcnow(), kind=kind, user_id=user_id, text=text, data=data or {}
    )
    session.add(event)
    return event


# --- what the rules engine calls -----------------------------------------------------


Key = tuple[str, str]  # (rule key, entity URN)
CHUNK = 500
MAX_ATTEMPTS = 3


class _Collision(Exception):
    """Another transaction created one of our new alarms first: read again, retry."""


@dataclass(frozen=True)
class _Checked:
    signal: AlarmSignal
    severity: Severity
    message: str

    @property
    def key(self) -> Key:
        return (self.signal.rule_key, self.signal.entity_urn)


def _active_many(session: Session, tenant_id: int, keys: set[Key]) -> dict[Key, Alarm]:
    """The active alarms of these (rule, entity) pairs, locked in id order (so that two
    workers locking overlapping sets cannot deadlock) and read afresh."""
    urns = sorted({urn for _rule, urn in keys})
    found: dict[Key, Alarm] = {}
    for start in range(0, len(urns), CHUNK):
        rows = session.scalars(
            select(Alarm)
            .where(
                Alarm.tenant_id == tenant_id,
                Alarm.entity_urn.in_(urns[start : start + CHUNK]),
                Alarm.status.in_(ACTIVE_STATUSES),
            )
            .order_by(Alarm.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for alarm in rows:
            if (alarm.rule_key, alarm.entity_urn) in keys:
                found[(alarm.rule_key, alarm.entity_urn)] = alarm
    return found


def raise_alarm(session: Session, tenant_id: int, signal: AlarmSignal) -> Alarm:
    """Create the alarm of (rule, entity), or count a repeat of the active one."""
    return raise_alarms(session, tenant_id, [signal])[0]


def raise_alarms(session: Session, tenant_id: int, signals: Sequence[AlarmSignal]) -> list[Alarm]:
    """What a rules engine calls with a batch of signals: for each, the alarm it created
    or repeated, in a handful of statements whatever the batch size. Signals on the same
    (rule, entity) within the batch repeat one another. One bad signal refuses the batch.

    Safe under concurrency: when another worker creates one of the same alarms first, the
    partial unique index refuses our insert, and the batch is read again and applied as
    repeats.
    """
    checked = [_checked(signal, index, len(signals)) for index, signal in enumerate(signals)]
    for _attempt in range(MAX_ATTEMPTS):
        try:
            return _apply(session, tenant_id, checked)
        except _Collision:
            continue
    raise Conflict("the same alarms are being raised concurrently; try again")


def _checked(signal: AlarmSignal, index: int, count: int) -> _Checked:
    try:
        severity, message = _check_signal(signal)
    except InvalidInput as error:
        raise _prefixed(error, index, count) from error
    return _Checked(signal, severity, message)


def _prefixed(error: InvalidInput, index: int, count: int) -> InvalidInput:
    """In a batch, name the signal: `signals.3.entity_urn`."""
    if count == 1:
        return error
    field = f"signals.{index}.{error.problems[0].field}" if error.problems else "signals"
    reason = error.problems[0].reason if error.problems else error.message
    return invalid(field, reason)


def _apply(session: Session, tenant_id: int, batch: list[_Checked]) -> list[Alarm]:
    active = _active_many(session, tenant_id, {item.key for item in batch})
    created = _insert_new(session, tenant_id, batch, active)
    results: list[Alarm] = []
    regrouped: list[Alarm] = []
    for item in batch:
        alarm = active.get(item.key)
        if alarm is None:
            alarm = active[item.key] = created[item.key]
        elif _repeat(session, alarm, item):
            regrouped.append(alarm)
        results.append(alarm)
    _correlate(session, tenant_id, [*created.values(), *regrouped])
    _flush(session)
    return results


def _insert_new(
    session: Session, tenant_id: int, batch: list[_Checked], active: dict[Key, Alarm]
) -> dict[Key, Alarm]:
    """Insert the alarms whose (rule, entity) has no active alarm, from their first signal."""
    wanted = [item for item in batch if item.key not in active]
    entities = _entities(session, tenant_id, {item.signal.entity_urn for item in wanted})
    firsts: dict[Key, tuple[_Checked, Any]] = {}
    for index, item in enumerate(batch):
        if item.key not in active and item.key not in firsts:
            entity = entities.get(item.signal.entity_urn)
            if entity is None:
                refusal = invalid(
                    "entity_urn", f"no entity {item.signal.entity_urn} in this tenant's registry"
                )
                raise _prefixed(refusal, index, len(batch))
            firsts[item.key] = (item, entity)
    created = {key: _new_alarm(tenant_id, item, entity) for key, (item, entity) in firsts.items()}
    if not created:
        return created
    _flush(session)  # the savepoint below must hold our inserts only
    try:
        with session.begin_nested():
            session.add_all(created.values())
            session.flush()
    except IntegrityError as error:
        raise _Collision from error
    for key, alarm in created.items():
        severity = firsts[key][0].severity.value
        _record(session, alarm, "raised", at=alarm.raised_at, data={"severity": severity})
    return created


def _entities(session: Session, tenant_id: int, urns: set[str]) -> dict[str, Any]:
    """URN, type and commune of these entities, a query per 500 rather than one each."""
    wanted = sorted(urns)
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = session.execute(
            select(Entity.urn, Entity.type, Entity.commune_id).where(
                Entity.tenant_id == tenant_id, Entity.urn.in_(wanted[start : start + CHUNK])
            )
        )
        found.update({row.urn: row for row in rows})
    return found


def _new_alarm(tenant_id: int, item: _Checked, entity: Any) -> Alarm:
    return Alarm(
        public_id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        rule_key=item.signal.rule_key,
        entity_urn=entity.urn,
        entity_type=entity.type,
        commune_id=entity.commune_id,
        group_key=item.signal.group_key,
        severity=item.severity,
        status=AlarmStatus.UNACKNOWLEDGED,
        message=item.message,
        value=item.signal.value,
        occurrences=1,
        raised_at=item.signal.observed_at,
        last_seen_at=item.signal.observed_at,
    )


def _repeat(session: Session, alarm: Alarm, item: _Checked) -> bool:
    """Count a repeat; True when its group changed (it must be correlated again)."""
    signal = item.signal
    alarm.occurrences += 1
    alarm.last_seen_at = max(alarm.last_seen_at, signal.observed_at)
    alarm.message = item.message
    alarm.value = signal.value
    alarm.updated_at = utcnow()
    if item.severity is not alarm.severity:
        # Only severity changes go to the history: a repeat every minute must not bloat it.
        data = {"from": alarm.severity.value, "to": item.severity.value}
        _record(session, alarm, "severity_changed", at=signal.observed_at, data=data)
        alarm.severity = item.severity
    if signal.group_key and alarm.group_key != signal.group_key:
        alarm.group_key = signal.group_key
        alarm.parent_id = None
        return True
    return False


def _correlate(session: Session, tenant_id: int, alarms: list[Alarm]) -> None:
    """Attach each alarm under the active alarm of its group entity, and let each adopt
    the active alarms already waiting for its entity as their group."""
    if not alarms:
        return
    parents = _group_alarms(session, tenant_id, {a.group_key for a in alarms if a.group_key})
    for alarm in alarms:
        parent = parents.get(alarm.group_key) if alarm.group_key else None
        if parent is not None and alarm.parent_id is None and parent.id != alarm.id:
            alarm.parent_id = parent.id
            _record(session, alarm, "grouped", data={"parent": parent.public_id})
    adopters = _most_severe_by_entity(alarms)
    urns = sorted(adopters)
    for start in range(0, len(urns), CHUNK):
        orphans = session.scalars(
            select(Alarm).where(
                Alarm.tenant_id == tenant_id,
                Alarm.group_key.in_(urns[start : start + CHUNK]),
                Alarm.parent_id.is_(None),
                Alarm.status.in_(ACTIVE_STATUSES),
            )
        )
        for child in orphans:
            parent = adopters[child.group_key or ""]
            if parent.id != child.id:
                child.parent_id = parent.id
                _record(session, child, "grouped", data={"parent": parent.public_id})


def _group_alarms(session: Session, tenant_id: int, group_keys: set[str]) -> dict[str, Alarm]:
    """The active alarm of each grouping entity (the most severe, then the oldest)."""
    keys = sorted(group_keys)
    found: dict[str, Alarm] = {}
    for start in range(0, len(keys), CHUNK):
        rows = session.scalars(
            select(Alarm)
            .where(
                Alarm.tenant_id == tenant_id,
                Alarm.entity_urn.in_(keys[start : start + CHUNK]),
                Alarm.status.in_(ACTIVE_STATUSES),
            )
            .order_by(_severity_order(), Alarm.raised_at, Alarm.id)
        )
        for alarm in rows:
            found.setdefault(alarm.entity_urn, alarm)
    return found


def _most_severe_by_entity(alarms: list[Alarm]) -> dict[str, Alarm]:
    ranked = sorted(alarms, key=lambda a: (SEVERITY_RANK[a.severity], a.raised_at, a.id))
    chosen: dict[str, Alarm] = {}
    for alarm in ranked:
        chosen.setdefault(alarm.entity_urn, alarm)
    return chosen


def clear_alarm_condition(
    session: Session, tenant_id: int, rule_key: str, entity_urn: str, at: datetime
) -> Alarm | None:
    """The condition ended: clear the active alarm of (rule, entity), if there is one."""
    return clear_alarm_conditions(session, tenant_id, [(rule_key, entity_urn)], at).get(
        (rule_key, entity_urn)
    )


def clear_alarm_conditions(
    session: Session, tenant_id: int, keys: Sequence[Key], at: datetime
) -> dict[Key, Alarm]:
    """The conditions of these (rule, entity) pairs ended at `at`: clear their active
    alarms (pairs with none are ignored) and return them.

    If the work order dispatched for an alarm is already closed, the data now confirms
    the fix and the alarm is closed as well.
    """
    moment = _check_time(at, "at")
    active = _active_many(session, tenant_id, set(keys))
    for alarm in active.values():
        cleared_at = max(moment, alarm.raised_at)
        _clear(session, alarm, ClearKind.AUTO, user_id=None, note=None, at=cleared_at)
        if alarm.fix_reported_at is not None:
            _close(session, alarm, user_id=None, note="fix confirmed by data", at=cleared_at)
    _flush(session)
    return active


# --- reading -------------------------------------------------------------------------


def get_alarm(
    session: Session, tenant_id: int, alarm_id: str, *, for_update: bool = False
) -> Alarm:
    query = select(Alarm).where(Alarm.tenant_id == tenant_id, Alarm.public_id == alarm_id)
    if for_update:
        # Two operators acknowledging at once: the second waits here, then sees the first's
        # change (PostgreSQL). On SQLite the version column refuses the lost update.
        query = query.with_for_update().execution_options(populate_existing=True)
    alarm = session.scalar(query)
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}")
    return alarm


def _severity_order() -> Any:
    return case(
        *((Alarm.severity == severity, rank) for severity, rank in SEVERITY_RANK.items()),
        else_=len(SEVERITY_RANK),
    )


def _filter_clauses(tenant_id: int, where: AlarmFilter) -> list[Any]:
    clauses: list[Any] = [Alarm.tenant_id == tenant_id]
    if where.statuses:
        clauses.append(Alarm.status.in_(list(where.statuses)))
    if where.severities:
        clauses.append(Alarm.severity.in_(list(where.severities)))
    if where.rule_key:
        clauses.append(Alarm.rule_key == where.rule_key)
    if where.entity_urn:
        clauses.append(Alarm.entity_urn == where.entity_urn)
    if where.commune_id is not None:
        clauses.append(Alarm.commune_id == where.commune_id)
    if where.assignee_id is not None:
        clauses.append(Alarm.assignee_id == where.assignee_id)
    if where.parent_id is not None:
        clauses.append(Alarm.parent_id == where.parent_id)
    if where.top_level:
        clauses.append(Alarm.parent_id.is_(None))
    if where.raised_from is not None:
        clauses.append(Alarm.raised_at >= where.raised_from)
    if where.raised_until is not None:
        clauses.append(Alarm.raised_at < where.raised_until)
    return clauses


def list_alarms(
    session: Session, tenant_id: int, where: AlarmFilter, *, limit: int = 100, offset: int = 0
) -> Page:
    """Most severe first, then the most recently seen."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise invalid("limit", f"between 1 and {MAX_PAGE_SIZE}")
    if offset < 0:
        raise invalid("offset", "must not be negative")
    condition = and_(*_filter_clauses(tenant_id, where))
    total = session.scalar(select(func.count()).select_from(Alarm).where(condition)) or 0
    items = session.scalars(
        select(Alarm)
        .where(condition)
        .order_by(_severity_order(), Alarm.last_seen_at.desc(), Alarm.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return Page(items=list(items), total=int(total), limit=limit, offset=offset)


def history(session: Session, alarm: Alarm) -> list[AlarmEvent]:
    """In the order things were recorded; `at` says when each happened, which for data
    (an observation time) can be a little earlier than an operator's action before it."""
    return list(
        session.scalars(
            select(AlarmEvent).where(AlarmEvent.alarm_id == alarm.id).order_by(AlarmEvent.id)
        )
    )


def children_of(session: Session, alarm: Alarm) -> list[Alarm]:
    return list(
        session.scalars(
            select(Alarm)
            .where(Alarm.parent_id == alarm.id)
            .order_by(_severity_order(), Alarm.raised_at)
        )
    )


def child_counts(session: Session, alarms: Sequence[Alarm]) -> dict[int, int]:
    ids = [alarm.id for alarm in alarms]
    if not ids:
        return {}
    rows = session.execute(
        select(Alarm.parent_id, func.count())
        .where(Alarm.parent_id.in_(ids))
        .group_by(Alarm.parent_id)
    )
    return {int(parent): int(count) for parent, count in rows if parent is not None}


def public_ids(session: Session, row_ids: Sequence[int]) -> dict[int, str]:
    wanted = sorted({row for row in row_ids})
    if not wanted:
        return {}
    rows = session.execute(select(Alarm.id, Alarm.public_id).where(Alarm.id.in_(wanted)))
    return {int(row_id): public_id for row_id, public_id in rows}


def counts_by_status(session: Session, tenant_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Alarm.status, func.count())
        .where(Alarm.tenant_id == tenant_id)
        .group_by(Alarm.status)
    )
    return {status.value: int(count) for status, count in rows}


# --- operator actions ----------------------------------------------------------------


def acknowledge(
    session: Session,
    tenant_id: int,
    alarm_id: str,
    *,
    by_user: int | None,
    note: str | None = None,
    at: datetime | None = None,
) -> Alarm:
    """Acknowledge an alarm nobody has acknowledged yet; a second acknowledgement is a 409.

    The alarms grouped under it are acknowledged with it.
    """
    clean_note = _comment(note, "note") if note else None
    alarm = get_alarm(session, tenant_id, alarm_id, for_update=True)
    if alarm.acknowledged_at is not None or alarm.status is AlarmStatus.CLOSED:
        raise Conflict(f"the alarm is already {_describe(alarm)}")
    moment = max(at or utcnow(), alarm.raised_at)
    _acknowledge(session, alarm, by_user, clean_note, moment)
    _flush(session)
    for child in children_of(session, alarm):
        if child.acknowledged_at is None and child.status is not AlarmStatus.CLOSED:
            _acknowledge(session, child, by_user, "with its group alarm", moment)
    _flush(session)
    return alarm


def _describe(alarm: Alarm) -> str:
    if alarm.status is AlarmStatus.CLEARED and alarm.acknowledged_at is not None:
        return "cleared and acknowledged"
    return alarm.status.value.replace("_", " ")


def _acknowledge(
    session: Session, alarm: Alarm, user_id: int | None, note: str | None, at: datetime
) -> None:
    alarm.acknowledged_at = at
    alarm.acknowledged_by = user_id
    if alarm.status is AlarmStatus.UNACKNOWLEDGED:
        alarm.status = AlarmStatus.ACKNOWLEDGED
    alarm.updated_at = utcnow()
    _record(session, alarm, "acknowledged", user_id=user_id, text=note, at=at)


def clear(
    session: Session,
    tenant_id: int,
    alarm_id: str,
    *,
    by_user: int | None,
    note: str | None = None,
) -> Alarm:
    """Clear by hand (the operator knows the condition is over, or it was a false alarm)."""
    clean_note = _comment(note, "note") if note else None
    alarm = get_alarm(session, tenant_id, alarm_id, for_update=True)
    if not alarm.is_active:
        raise Conflict(f"only an active alarm can be cleared; this one is {_describe(alarm)}")
    _clear(session, alarm, ClearKind.MANUAL, user_id=by_user, note=clean_note, at=utcnow())
    _flush(session)
    return alarm


def _clear(
    session: Session,
    alarm: Alarm,
    kind: ClearKind,
    *,
    user_id: int | None,
    note: str | None,
    at: datetime,
) -> None:
    alarm.status = AlarmStatus.CLEARED
    alarm.cleared_at = at
    alarm.cleared_by = user_id
    alarm.clear_kind = kind
    alarm.updated_at = utcnow()
    _record(session, alarm, "cleared", user_id=user_id, text=note, at=at, data={"kind": kind.value})


def close(
    session: Session,
    tenant_id: int,
    alarm_id: str,
    *,
    by_user: int | None,
    note: str | None = None,
) -> Alarm:
    """Close a cleared alarm: nothing more to do about it."""
    clean_note = _comment(note, "note") if note else None
    alarm = get_alarm(session, tenant_id, alarm_id, for_update=True)
    if alarm.status is not AlarmStatus.CLEARED:
        raise Conflict(f"only a cleared alarm can be closed; this one is {_describe(alarm)}")
    _close(session, alarm, user_id=by_user, note=clean_note, at=utcnow())
    _flush(session)
    return alarm


def _close(
    session: Session, alarm: Alarm, *, user_id: int | None, note: str | None, at: datetime | None
) -> None:
    moment = max(at or utcnow(), alarm.cleared_at or alarm.raised_at)
    alarm.status = AlarmStatus.CLOSED
    alarm.closed_at = moment
    alarm.closed_by = user_id
    alarm.updated_at = utcnow()
    _record(session, alarm, "closed", user_id=user_id, text=note, at=moment)


def _comment(text: Any, field_name: str = "text") -> str:
    cleaned = text.strip() if isinstance(text, str) else ""
    if not cleaned:
        raise invalid(field_name, "must not be empty")
    if len(cleaned) > MAX_COMMENT:
        raise invalid(field_name, f"at most {MAX_COMMENT} characters")
    return cleaned


def add_comment(
    session: Session, tenant_id: int, alarm_id: str, text: str, *, by_user: int | None
) -> AlarmEvent:
    cleaned = _comment(text)
    alarm = get_alarm(session, tenant_id, alarm_id)
    event = _record(session, alarm, "comment", user_id=by_user, text=cleaned)
    session.flush()
    return event


def assign(
    session: Session, tenant_id: int, alarm_id: str, assignee_id: int | None, *, by_user: int | None
) -> Alarm:
    """Give the alarm to an operator or agent of the tenant (None takes it back)."""
    if assignee_id is not None:
        role = tenancy.role_in(session, assignee_id, tenant_id)
        if role is None or not (
            allows(role, Permission.OPERATE) or allows(role, Permission.FIELD_WORK)
        ):
            raise invalid("assignee", "this person is not an operator or agent of this tenant")
    alarm = get_alarm(session, tenant_id, alarm_id, for_update=True)
    if alarm.status is AlarmStatus.CLOSED:
        raise Conflict("a closed alarm cannot be assigned")
    if alarm.assignee_id == assignee_id:
        return alarm
    alarm.assignee_id = assignee_id
    alarm.updated_at = utcnow()
    kind = "assigned" if assignee_id is not None else "unassigned"
    _record(session, alarm, kind, user_id=by_user, data={"assignee_id": assignee_id})
    _flush(session)
    return alarm


# --- alarms and work orders ----------------------------------------------------------


@dataclass
class WorkOrderOptions:
    """What an operator may change when dispatching an alarm; the rest is derived."""

    title: str | None = None
    description: str | None = None
    priority: Priority | None = None
    skill: str | None = None
    team_id: str | None = None


def create_work_order(
    session: Session,
    tenant_id: int,
    alarm_id: str,
    options: WorkOrderOptions | None = None,
    *,
    by_user: int | None,
    at: datetime | None = None,
) -> WorkOrder:
    """Dispatch a work order for an alarm (an operator's click, or a rule's automation).

    Priority follows severity and skill follows the entity's domain unless given.
    Refused while an earlier work order for this alarm is still open.
    """
    chosen = options or WorkOrderOptions()
    alarm = get_alarm(session, tenant_id, alarm_id, for_update=True)
    if alarm.status is AlarmStatus.CLOSED:
        raise Conflict("the alarm is closed")
    if alarm.work_order_id is not None:
        current = interventions.get_work_order(session, tenant_id, alarm.work_order_id)
        if current.is_open or current.status is WorkOrderStatus.DONE:
            raise Conflict(f"work order {current.public_id} is already under way for this alarm")
    domain = domain_of(alarm.entity_type)
    skill = chosen.skill or (SKILL_OF_DOMAIN.get(domain, Skill.OTHER) if domain else Skill.OTHER)
    draft = interventions.WorkOrderDraft(
        title=chosen.title or alarm.message[:200],
        description=chosen.description or _default_description(alarm),
        priority=chosen.priority or PRIORITY_OF_SEVERITY[alarm.severity],
        skill=str(skill),
        team_id=chosen.team_id,
        entity_urn=alarm.entity_urn if _entity_exists(session, tenant_id, alarm) else None,
        source_kind="alarm",
        source_ref=alarm.public_id,
    )
    order = interventions.create_work_order(session, tenant_id, draft, created_by=by_user, at=at)
    alarm.work_order_id = order.public_id
    alarm.fix_reported_at = None
    alarm.updated_at = utcnow()
    _record(
        session,
        alarm,
        "work_order_created",
        user_id=by_user,
        at=order.created_at,
        data={"work_order": order.public_id},
    )
    _flush(session)
    return order


def _entity_exists(session: Session, tenant_id: int, alarm: Alarm) -> bool:
    return bool(registry.existing_urns(session, tenant_id, [alarm.entity_urn]))


def _default_description(alarm: Alarm) -> str:
    """Facts, not prose: the page and the API show them in the reader's language."""
    return (
        f"{alarm.rule_key} · {alarm.entity_urn} · {alarm.severity.value} · "
        f"{alarm.raised_at.isoformat(timespec='minutes')} · ×{alarm.occurrences}"
    )


def work_order_changed(
    session: Session, tenant_id: int, alarm_id: str, work_order_id: str, new_status: str
) -> Alarm | None:
    """Follow the work order dispatched for an alarm (called by the event listener).

    Closed: if the data already shows the condition over, the alarm is closed; otherwise
    it waits for the data (`clear_alarm_condition`) to confirm the fix. Reopened: the
    wait is cancelled.
    """
    alarm = session.scalar(
        select(Alarm)
        .where(Alarm.tenant_id == tenant_id, Alarm.public_id == alarm_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if alarm is None or alarm.work_order_id != work_order_id:
        return None
    data = {"work_order": work_order_id, "status": new_status}
    if new_status == WorkOrderStatus.CLOSED:
        if alarm.status is AlarmStatus.CLEARED:
            _close(session, alarm, user_id=None, note="work order closed", at=None)
        elif alarm.is_active:
            alarm.fix_reported_at = utcnow()
            _record(session, alarm, "fix_reported", data=data)
    elif new_status in (WorkOrderStatus.CANCELLED, WorkOrderStatus.DONE):
        _record(session, alarm, f"work_order_{new_status}", data=data)
    elif alarm.fix_reported_at is not None:
        alarm.fix_reported_at = None
        _record(session, alarm, "work_order_reopened", data=data)
    alarm.updated_at = utcnow()
    _flush(session)
    return alarm


def active_severity_by_entity(
    session: Session, tenant_id: int, urns: Sequence[str] | None = None
) -> dict[str, Severity]:
    """The highest severity among each entity's active alarms (the map colours by it).
    Entities without an active alarm are absent; `urns` narrows the question."""
    query = select(Alarm.entity_urn, Alarm.severity).where(
        Alarm.tenant_id == tenant_id, Alarm.status.in_(ACTIVE_STATUSES)
    )
    if urns is not None:
        query = query.where(Alarm.entity_urn.in_(list(urns)))
    worst: dict[str, Severity] = {}
    for urn, severity in session.execute(query):
        known = worst.get(urn)
        if known is None or SEVERITY_RANK[severity] < SEVERITY_RANK[known]:
            worst[urn] = severity
    return worst


def active_occurrences(session: Session, tenant_id: int) -> dict[int, tuple[str, str, int]]:
    """Each active alarm's rule, entity and number of occurrences, by alarm id: a rise in
    the number between two looks means that its rule fired again in between (repeats are
    not in the history, to keep it small)."""
    query = select(Alarm.id, Alarm.rule_key, Alarm.entity_urn, Alarm.occurrences).where(
        Alarm.tenant_id == tenant_id, Alarm.status.in_(ACTIVE_STATUSES)
    )
    return {row_id: (rule, urn, count) for row_id, rule, urn, count in session.execute(query)}


# --- live updates (read by the web's event stream) -------------------------------------


@dataclass(frozen=True)
class AlarmChange:
    """One recorded alarm event with what a screen needs to show it, without reloading."""

    event_id: int
    kind: str
    at: datetime
    alarm_id: str
    severity: Severity
    status: AlarmStatus
    message: str
    entity_urn: str
    entity_type: str
    top_level: bool


def last_alarm_event_id(session: Session, tenant_id: int) -> int:
    """The newest alarm event of the tenant (0 when none): where a live stream starts."""
    newest = session.scalar(
        select(func.max(AlarmEvent.id))
        .join(Alarm, Alarm.id == AlarmEvent.alarm_id)
        .where(Alarm.tenant_id == tenant_id)
    )
    return int(newest or 0)


def alarm_changes_after(
    session: Session, tenant_id: int, after_id: int, *, limit: int = 200
) -> list[AlarmChange]:
    """The tenant's alarm events recorded after `after_id`, oldest first, at most `limit`."""
    rows = session.execute(
        select(AlarmEvent.id, AlarmEvent.kind, AlarmEvent.at, Alarm)
        .join(Alarm, Alarm.id == AlarmEvent.alarm_id)
        .where(Alarm.tenant_id == tenant_id, AlarmEvent.id > after_id)
        .order_by(AlarmEvent.id)
        .limit(limit)
    )
    return [
        AlarmChange(
            event_id=int(event_id),
            kind=kind,
            at=at,
            alarm_id=alarm.public_id,
            severity=alarm.severity,
            status=alarm.status,
            message=alarm.message,
            entity_urn=alarm.entity_urn,
            entity_type=alarm.entity_type,
            top_level=alarm.parent_id is None,
        )
        for event_id, kind, at, alarm in rows
    ]


# --- the console's sorting and extra filters --------------------------------------------


ALARM_SORTS = ("severity", "raised", "last_seen", "entity", "status")


def _sort_columns(sort: str) -> list[Any]:
    if sort == "severity":
        return [_severity_order()]
    if sort == "raised":
        return [Alarm.raised_at]
    if sort == "last_seen":
        return [Alarm.last_seen_at]
    if sort == "entity":
        return [Alarm.entity_type, Alarm.entity_urn]
    if sort == "status":
        return [Alarm.status]
    raise invalid("sort", f"one of {', '.join(ALARM_SORTS)}")


def list_alarms_sorted(
    session: Session,
    tenant_id: int,
    where: AlarmFilter,
    *,
    sort: str = "severity",
    descending: bool = False,
    entity_types: Sequence[str] = (),
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Like `list_alarms`, ordered by one column (then the most recently seen), and
    optionally narrowed to some entity types. Ascending severity is the most severe first."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise invalid("limit", f"between 1 and {MAX_PAGE_SIZE}")
    if offset < 0:
        raise invalid("offset", "must not be negative")
    columns = [c.desc() if descending else c.asc() for c in _sort_columns(sort)]
    clauses = _filter_clauses(tenant_id, where)
    if entity_types:
        clauses.append(Alarm.entity_type.in_(list(entity_types)))
    condition = and_(*clauses)
    total = session.scalar(select(func.count()).select_from(Alarm).where(condition)) or 0
    items = session.scalars(
        select(Alarm)
        .where(condition)
        .order_by(*columns, Alarm.last_seen_at.desc(), Alarm.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return Page(items=list(items), total=int(total), limit=limit, offset=offset)


def alarm_entity_types(session: Session, tenant_id: int) -> list[str]:
    """The entity types that have alarms in the tenant (the console's type filter)."""
    rows = session.scalars(select(Alarm.entity_type).where(Alarm.tenant_id == tenant_id).distinct())
    return sorted(rows)
