"""Evaluation: each ingested batch, and timers, through the tenant's enabled rules.

A batch is evaluated in one transaction with few queries: the rule set (cached, checked
by one fingerprint query), the states of every (rule, subject) the batch touches (one
locked SELECT per 500), alarm changes when a condition starts or ends, and one bulk
UPDATE of the states. Because the state is read under lock and written with the alarms
it raised, any worker may evaluate any series and several workers agree.

A rule that throws on one subject leaves that subject's state and alarms as they were,
records the error on the rule, and the other subjects and rules go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.db import Database
from territoire.db.base import utcnow
from territoire.errors import NotFound
from territoire.registry import service as registry
from territoire.rules.definitions import DEFINITIONS, Definition, parse_definition
from territoire.rules.evaluators import evaluator_for
from territoire.rules.evaluators.base import (
    Context,
    Entities,
    EntityInfo,
    Evaluator,
    Point,
    Scope,
    Signal,
    State,
    to_datetime,
)
from territoire.rules.models import Rule, RuleState
from territoire.telemetry.records import StoredReading
from territoire.tenancy import service as tenancy

log = logging.getLogger("territoire.rules")

CHUNK = 500
ENTITY_TTL = 300.0
MAX_ERROR = 2000


@dataclass(eq=False)
class CompiledRule:
    id: int
    key: str
    kind: str
    severity: Severity
    definition: Definition
    evaluator: Evaluator
    scope: Scope

    @property
    def timed(self) -> bool:
        return self.evaluator.timed


@dataclass
class Outcome:
    """What one evaluation did (for tests, benchmarks and the CLI)."""

    points: int = 0
    subjects: int = 0
    raised: int = 0
    cleared: int = 0
    errors: int = 0


# --- caches ----------------------------------------------------------------------------


@dataclass
class _RuleSet:
    fingerprint: tuple[Any, ...]
    rules: list[CompiledRule]


_rule_sets: dict[tuple[str, int], _RuleSet] = {}
_lock = threading.Lock()


def compile_rule(row: Rule, commune_id: int | None) -> CompiledRule:
    definition = parse_definition(row.parameters)
    scope = row.scope or {}
    types = scope.get("entity_types") or list(definition.default_types)
    return CompiledRule(
        id=row.id,
        key=row.key,
        kind=row.kind,
        severity=row.severity,
        definition=definition,
        evaluator=evaluator_for(definition),
        scope=Scope(
            types=frozenset(types),
            entities=frozenset(scope.get("entities") or ()),
            commune_id=commune_id,
            excluded=frozenset(scope.get("exclude") or ()),
        ),
    )


def rules_for(session: Session, database_url: str, tenant_id: int) -> list[CompiledRule]:
    """The tenant's enabled rules, compiled once and reused until one of them changes."""
    fingerprint = tuple(
        session.execute(
            select(func.count(Rule.id), func.max(Rule.id), func.max(Rule.updated_at)).where(
                Rule.tenant_id == tenant_id
            )
        ).one()
    )
    key = (database_url, tenant_id)
    with _lock:
        cached = _rule_sets.get(key)
        if cached is not None and cached.fingerprint == fingerprint:
            return cached.rules
    rows = session.scalars(
        select(Rule)
        .where(Rule.tenant_id == tenant_id, Rule.enabled, Rule.archived_at.is_(None))
        .order_by(Rule.id)
    )
    communes = {c.insee_code: c.id for c in tenancy.list_communes(session, tenant_id)}
    compiled = []
    for row in rows:
        commune = (row.scope or {}).get("commune")
        compiled.append(compile_rule(row, communes.get(commune) if commune else None))
    with _lock:
        _rule_sets[key] = _RuleSet(fingerprint, compiled)
    return compiled


@dataclass
class _EntityCache:
    fingerprint: datetime
    by_urn: dict[str, EntityInfo] = field(default_factory=dict)
    loaded: dict[str, float] = field(default_factory=dict)  # type -> monotonic load time
    # (member type, relation) -> group URN -> member URNs
    members: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)


_entity_caches: dict[tuple[str, int], _EntityCache] = {}


class _EntityView(Entities):
    """Registry facts for evaluators: a whole entity type is read at once, then cached.

    An unknown URN reloads its type once per evaluation, so new assets are seen at once.
    """

    def __init__(self, session: Session, cache: _EntityCache, tenant_id: int) -> None:
        self.session = session
        self.cache = cache
        self.tenant_id = tenant_id
        self.reloaded: set[str] = set()

    def get(self, urn: str) -> EntityInfo | None:
        found = self.cache.by_urn.get(urn)
        if found is not None:
            return found
        kind = urn.split(":", 3)[2] if urn.count(":") >= 3 else ""
        loaded = self.cache.loaded.get(kind)
        stale = loaded is None or time.monotonic() - loaded > ENTITY_TTL
        if kind and (stale or kind not in self.reloaded):
            self._load(kind)
        return self.cache.by_urn.get(urn)

    def members(self, group: str, member_type: str, relation: str) -> list[str]:
        if member_type not in self.cache.loaded:
            self._load(member_type)
        index = self.cache.members.get((member_type, relation))
        if index is None:
            index = defaultdict(list)
            for info in self.cache.by_urn.values():
                target = info.related(relation) if info.type == member_type else None
                if target is not None:
                    index[target].append(info.urn)
            self.cache.members[(member_type, relation)] = index = dict(index)
        return index.get(group, [])

    def _load(self, kind: str) -> None:
        self.reloaded.add(kind)
        where = registry.EntityFilter(types=[kind])
        offset = 0
        seen: set[str] = set()
        while True:
            page = registry.list_entities(
                self.session, self.tenant_id, where, limit=registry.MAX_PAGE_SIZE, offset=offset
            )
            for entity in page.items:
                seen.add(entity.urn)
                self.cache.by_urn[entity.urn] = EntityInfo(
                    entity.urn,
                    entity.type,
                    entity.commune_id,
                    dict(entity.properties or {}),
                    dict(entity.relationships or {}),
                )
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        for urn in [u for u, info in self.cache.by_urn.items() if info.type == kind]:
            if urn not in seen:
                del self.cache.by_urn[urn]
        self.cache.loaded[kind] = time.monotonic()
        self.cache.members = {}


def entity_view(session: Session, database_url: str, tenant_id: int) -> Entities:
    created = tenancy.get_tenant(session, tenant_id).created_at
    key = (database_url, tenant_id)
    with _lock:
        cache = _entity_caches.get(key)
        if cache is None or cache.fingerprint != created:
            cache = _entity_caches[key] = _EntityCache(created)
    return _EntityView(session, cache, tenant_id)


def forget_caches() -> None:
    with _lock:
        _rule_sets.clear()
        _entity_caches.clear()


# --- states ----------------------------------------------------------------------------


def _take_write_lock(session: Session) -> None:
    """SQLite: start the write transaction now, so the states read are the ones we
    overwrite (a deferred transaction would read, then fail to upgrade if another
    connection wrote meanwhile). PostgreSQL locks the state rows instead."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE rule_state SET subject = subject WHERE 1 = 0"))


def _select_states(session: Session, pairs: list[tuple[int, str]]) -> dict[tuple[int, str], State]:
    found: dict[tuple[int, str], State] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(pairs), CHUNK):
        query = (
            select(RuleState.rule_id, RuleState.subject, RuleState.state)
            .where(tuple_(RuleState.rule_id, RuleState.subject).in_(pairs[start : start + CHUNK]))
            .order_by(RuleState.rule_id, RuleState.subject)
        )
        if postgres:
            query = query.with_for_update()
        for rule_id, subject, state in session.execute(query):
            found[(rule_id, subject)] = dict(state or {})
    return found


def load_states(
    session: Session, tenant_id: int, pairs: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], State]:
    """The states of these (rule, subject) pairs, locked; missing ones are created empty
    first (a concurrent worker creating the same row is harmless)."""
    wanted = sorted(set(pairs))
    found = _select_states(session, wanted)
    missing = [pair for pair in wanted if pair not in found]
    if missing:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        now = utcnow()
        rows = [
            {"rule_id": r, "subject": s, "tenant_id": tenant_id, "state": {}, "updated_at": now}
            for r, s in missing
        ]
        for start in range(0, len(rows), CHUNK):
            session.execute(
                dialect.insert(RuleState).on_conflict_do_nothing(), rows[start : start + CHUNK]
            )
        found.update(_select_states(session, missing))
    return found


_STATES = cast(Table, RuleState.__table__)
_SAVE = (
    update(_STATES)
    .where(_STATES.c.rule_id == bindparam("r"), _STATES.c.subject == bindparam("s"))
    .values(state=bindparam("state"), updated_at=bindparam("now"))
)


def save_states(session: Session, states: dict[tuple[int, str], State]) -> None:
    """One executemany UPDATE (the rows exist: `load_states` created the missing ones)."""
    if not states:
        return
    now = utcnow()
    rows = [{"r": r, "s": s, "state": state, "now": now} for (r, s), state in states.items()]
    session.connection().execute(_SAVE, rows)


def all_subjects(session: Session, rule_id: int) -> list[str]:
    return list(
        session.scalars(
            select(RuleState.subject)
            .where(RuleState.rule_id == rule_id)
            .order_by(RuleState.subject)
        )
    )


# --- signals and errors ----------------------------------------------------------------


def _alarm_signal(rule: CompiledRule, signal: Signal) -> alarms.AlarmSignal:
    return alarms.AlarmSignal(
        rule_key=rule.key,
        entity_urn=signal.entity,
        severity=rule.severity,
        message=signal.message[: alarms.MAX_MESSAGE] or rule.key,
        observed_at=to_datetime(signal.at),
        value=signal.value,
        group_key=signal.group if signal.group != signal.entity else None,
    )


def _apply(
    session: Session, tenant_id: int, rule: CompiledRule, signals: list[Signal], outcome: Outcome
) -> None:
    for signal in signals:
        if signal.raise_alarm:
            alarms.raise_alarms(session, tenant_id, [_alarm_signal(rule, signal)])
            outcome.raised += 1
        elif alarms.clear_alarm_condition(
            session, tenant_id, rule.key, signal.entity, to_datetime(signal.at)
        ):
            outcome.cleared += 1


class _Errors:
    """Errors per rule, written once at the end of the evaluation."""

    def __init__(self) -> None:
        self.by_rule: dict[int, tuple[int, str]] = {}

    def add(self, rule: CompiledRule, subject: str, error: Exception) -> None:
        log.warning("rule %s failed on %s: %s", rule.key, subject, error, exc_info=error)
        count, _ = self.by_rule.get(rule.id, (0, ""))
        message = f"{subject}: {type(error).__name__}: {error}"[:MAX_ERROR]
        self.by_rule[rule.id] = (count + 1, message)

    def write(self, session: Session) -> int:
        now = utcnow()
        for rule_id, (count, message) in self.by_rule.items():
            # updated_at stays: an error is not an edit and must not recompile the rule set.
            session.execute(
                update(Rule)
                .where(Rule.id == rule_id)
                .values(last_error=message, last_error_at=now, error_count=Rule.error_count + count)
            )
        return sum(count for count, _ in self.by_rule.values())


@dataclass(eq=False)
class _Step:
    """One (rule, subject) evaluated: its state (changed in place) and its signals."""

    rule: CompiledRule
    subject: str
    state: State
    signals: list[Signal]


def _steps(steps: Iterable[tuple[CompiledRule, str, State, Any]], errors: _Errors) -> list[_Step]:
    """Run each evaluator step; one that throws is left out (its state is not saved)."""
    done = []
    for rule, subject, state, work in steps:
        try:
            done.append(_Step(rule, subject, state, work(state) or []))
        except Exception as error:  # any failure stays with its rule and subject
            errors.add(rule, subject, error)
    return done


def _apply_steps(
    session: Session, tenant_id: int, steps: list[_Step], outcome: Outcome, errors: _Errors
) -> dict[tuple[int, str], State]:
    """Send the steps' signals to the alarms domain; return the states that may be saved.

    Steps that only raise (nearly all of them) go in one `raise_alarms` call, in one
    savepoint. If that batch fails, or a step also clears, each step is applied alone in
    its own savepoint, so a failure stays with its rule and subject.
    """
    raising = [s for s in steps if s.signals and all(g.raise_alarm for g in s.signals)]
    alone = [s for s in steps if s.signals and s not in raising]
    if raising:
        batch = [_alarm_signal(s.rule, g) for s in raising for g in s.signals]
        try:
            with session.begin_nested():
                alarms.raise_alarms(session, tenant_id, batch)
            outcome.raised += len(batch)
        except Exception as error:  # find the culprit one step at a time
            log.info("batch of %d alarms refused (%s); applying one by one", len(batch), error)
            alone += raising
    failed: set[int] = set()
    for step in alone:
        try:
            with session.begin_nested():
                _apply(session, tenant_id, step.rule, step.signals, outcome)
        except Exception as error:
            errors.add(step.rule, step.subject, error)
            failed.add(id(step))
    return {(s.rule.id, s.subject): s.state for s in steps if id(s) not in failed}


# --- batches ---------------------------------------------------------------------------


def to_points(readings: Sequence[StoredReading], wanted: frozenset[str]) -> list[Point]:
    points = [
        Point(r.ts.timestamp(), r.value, r.entity, r.attribute)
        for r in readings
        if r.attribute in wanted
    ]
    points.sort(key=lambda p: p.ts)
    return points


def evaluate_batch(
    database: Database, tenant_id: int, readings: Sequence[StoredReading]
) -> Outcome:
    """Evaluate newly stored readings through the tenant's rules (the ingest listener)."""
    outcome = Outcome()
    if not readings:
        return outcome
    with database.session() as session:
        compiled = rules_for(session, database.url, tenant_id)
        if not compiled:
            return outcome
        wanted = frozenset().union(*(rule.evaluator.attributes for rule in compiled))
        points = to_points(readings, wanted)
        if not points:
            return outcome
        outcome.points = len(points)
        entities = entity_view(session, database.url, tenant_id)
        errors = _Errors()
        routed = _route(tenant_id, compiled, points, entities, errors)
        if routed:
            _take_write_lock(session)
            states = load_states(session, tenant_id, ((r.id, s) for r, s in routed))
            work = (
                (
                    rule,
                    subject,
                    states[(rule.id, subject)],
                    _batch_step(
                        rule.evaluator,
                        subject,
                        subject_points,
                        Context(tenant_id, entities, rule.scope, session),
                    ),
                )
                for (rule, subject), subject_points in routed.items()
            )
            steps = _steps(work, errors)
            save_states(session, _apply_steps(session, tenant_id, steps, outcome, errors))
            outcome.subjects = len(routed)
        outcome.errors = errors.write(session)
    return outcome


def _batch_step(evaluator: Evaluator, subject: str, points: list[Point], ctx: Context) -> Any:
    return lambda state: evaluator.evaluate(subject, state, points, ctx)


def _route(
    tenant_id: int,
    compiled: list[CompiledRule],
    points: list[Point],
    entities: Entities,
    errors: _Errors,
) -> dict[tuple[CompiledRule, str], list[Point]]:
    by_attribute: dict[str, list[Point]] = defaultdict(list)
    for point in points:
        by_attribute[point.attribute].append(point)
    routed: dict[tuple[CompiledRule, str], list[Point]] = {}
    for rule in compiled:
        attributes = [a for a in rule.evaluator.attributes if a in by_attribute]
        if not attributes:
            continue
        ctx = Context(tenant_id, entities, rule.scope)
        subject_of = rule.evaluator.subject
        mine: dict[str, list[Point]] = {}
        try:
            for attribute in attributes:
                for point in by_attribute[attribute]:
                    subject = subject_of(point, ctx)
                    if subject is not None:
                        found = mine.get(subject)
                        if found is None:
                            mine[subject] = [point]
                        else:
                            found.append(point)
        except Exception as error:
            errors.add(rule, "routing", error)
            continue
        for subject, subject_points in mine.items():
            if len(attributes) > 1:
                subject_points.sort(key=lambda p: p.ts)  # merge the attributes' time lines
            routed[(rule, subject)] = subject_points
    return routed


# --- timers ----------------------------------------------------------------------------

TIMED = tuple(kind for kind, cls in DEFINITIONS.items() if cls.timed)


def run_timers(database: Database, now: datetime | None = None) -> Outcome:
    """Timed evaluations (silence, night windows, daily checks) as of `now`."""
    moment = now or utcnow()
    outcome = Outcome()
    with database.session() as session:
        tenants = list(
            session.scalars(
                select(Rule.tenant_id)
                .where(Rule.enabled, Rule.archived_at.is_(None), Rule.kind.in_(TIMED))
                .distinct()
                .order_by(Rule.tenant_id)
            )
        )
    for tenant_id in tenants:
        try:
            _timers_of(database, tenant_id, moment, outcome)
        except NotFound:
            continue  # the tenant went away meanwhile
    return outcome


def _timers_of(database: Database, tenant_id: int, moment: datetime, outcome: Outcome) -> None:
    with database.session() as session:
        compiled = [r for r in rules_for(session, database.url, tenant_id) if r.timed]
        if not compiled:
            return
        entities = entity_view(session, database.url, tenant_id)
        errors = _Errors()
        _take_write_lock(session)
        for rule in compiled:
            ctx = Context(tenant_id, entities, rule.scope, session, moment.timestamp())
            subjects = rule.evaluator.timer_subjects(ctx)
            if subjects is None:
                subjects = all_subjects(session, rule.id)
            states = load_states(session, tenant_id, ((rule.id, s) for s in subjects))
            ctx.extra["states"] = {s: states[(rule.id, s)] for s in subjects}
            work = (
                (rule, s, states[(rule.id, s)], _timer_step(rule.evaluator, s, ctx))
                for s in subjects
            )
            steps = _steps(work, errors)
            save_states(session, _apply_steps(session, tenant_id, steps, outcome, errors))
            outcome.subjects += len(subjects)
        outcome.errors += errors.write(session)


def _timer_step(evaluator: Evaluator, subject: str, ctx: Context) -> Any:
    return lambda state: evaluator.on_timer(subject, state, ctx)
