"""The engine: errors stay with their rule, state lives in the database, few queries."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from territoire.app import create_app
from territoire.config import Settings
from territoire.db import Database
from territoire.rules import engine
from territoire.rules import service as rules
from territoire.rules.models import Rule, RuleState
from territoire.telemetry import service as telemetry
from territoire.telemetry.models import Series
from territoire.telemetry.records import Reading, StoredReading
from tests.conftest import World
from tests.rules.helpers import alarms_of, at, entity, rule, send

STATION = "urn:ngsi-ld:WeatherObserved:meteo"
SCHOOL = "urn:ngsi-ld:Building:school"
HOT = {"kind": "threshold", "attribute": "temperature", "value": 30}


def test_a_rule_that_throws_is_recorded_and_the_others_go_on(world: World) -> None:
    tenant = world.tenant("ville-a").id
    entity(world.database, tenant, STATION)
    entity(world.database, tenant, SCHOOL)  # no openingHours: the building rule cannot judge
    rule(world.database, tenant, "lit", {"kind": "unoccupied_consumption",
                                         "occupancy_attribute": None})  # fmt: skip
    rule(world.database, tenant, "hot", HOT)
    rule(world.database, tenant, "hot-building", HOT, scope={"entity_types": ["Building"]})
    send(
        world.database,
        tenant,
        [
            Reading(SCHOOL, "activePower", at(0), 12.0),
            Reading(SCHOOL, "temperature", at(0), 35.0),
            Reading(STATION, "temperature", at(0), 31.0),
        ],
    )
    found = {(a.rule_key, a.entity_urn) for a in alarms_of(world.database, tenant)}
    assert found == {("hot", STATION), ("hot", SCHOOL), ("hot-building", SCHOOL)}
    with world.database.session() as session:
        failed = session.scalar(select(Rule).where(Rule.key == "lit"))
        assert failed is not None and failed.error_count == 1
        assert failed.last_error is not None and "no openingHours" in failed.last_error
        assert SCHOOL in failed.last_error and failed.last_error_at is not None
        states = session.execute(select(Rule.key, RuleState.subject).join(Rule)).all()
    assert ("lit", SCHOOL) in states, "created, but left empty: nothing half-done was kept"
    with world.database.session() as session:
        (empty,) = session.scalars(
            select(RuleState.state).join(Rule).where(Rule.key == "lit")
        ).all()
    assert empty == {}


def test_state_survives_another_worker(world: World, database_url: str) -> None:
    """Two readings through one Database, the third through a fresh one (another worker,
    caches forgotten): the rule counts all three."""
    tenant = world.tenant("ville-a").id
    entity(world.database, tenant, STATION)
    rule(world.database, tenant, "hot", {**HOT, "repeats": 3})
    send(world.database, tenant, [Reading(STATION, "temperature", at(h), 31.0) for h in (0, 1)])
    assert alarms_of(world.database, tenant) == []
    engine.forget_caches()
    telemetry.forget_caches()
    other = Database(database_url)
    try:
        send(other, tenant, [Reading(STATION, "temperature", at(2), 32.0)])
    finally:
        other.dispose()
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.raised_at == at(2) and alarm.occurrences == 1


def _stations_batch(world: World, tenant: int, n: int, value: float) -> list[StoredReading]:
    """n weather stations under the "hot" rule, each with one stored reading at 10 °C,
    and the next batch of readings at `value`."""
    stations = [f"urn:ngsi-ld:WeatherObserved:m{i}" for i in range(n)]
    for urn in stations:
        entity(world.database, tenant, urn)
    rule(world.database, tenant, "hot", HOT)
    send(world.database, tenant, [Reading(u, "temperature", at(0), 10.0) for u in stations])
    with world.database.session() as session:
        ids = dict(session.execute(select(Series.entity, Series.id)).all())
    return [StoredReading(ids[u], u, "temperature", at(1), value) for u in stations]


def _evaluate_counting(
    world: World, tenant: int, batch: list[StoredReading]
) -> tuple[engine.Outcome, list[str]]:
    """Evaluate a batch and return the SQL statements it sent."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(world.database.engine, "before_cursor_execute", count)
    try:
        outcome = engine.evaluate_batch(world.database, tenant, batch)
    finally:
        event.remove(world.database.engine, "before_cursor_execute", count)
    return outcome, statements


def test_a_batch_costs_a_few_queries_whatever_its_number_of_series(world: World) -> None:
    tenant = world.tenant("ville-a").id
    rule(world.database, tenant, "stuck", {"kind": "stuck", "attribute": "temperature"})
    batch = _stations_batch(world, tenant, 300, 11.0)
    outcome, statements = _evaluate_counting(world, tenant, batch)
    assert outcome.points == 300 and outcome.subjects == 600
    # Fingerprint, tenant, lock, states (600 pairs: 2 chunks), one bulk update, + commit.
    assert len(statements) <= 8, statements


def test_edits_apply_at_once_and_disabled_rules_rest(world: World) -> None:
    tenant = world.tenant("ville-a").id
    entity(world.database, tenant, STATION)
    rule_id = rule(world.database, tenant, "hot", HOT)
    send(world.database, tenant, [Reading(STATION, "temperature", at(0), 29.0)])
    with world.database.session() as session:
        rules.update_rule(
            session, tenant, rule_id, rules.RulePatch(definition={**HOT, "value": 28})
        )
    send(world.database, tenant, [Reading(STATION, "temperature", at(1), 29.0)])
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.raised_at == at(1), "the new threshold applied to the next batch"
    with world.database.session() as session:
        rules.update_rule(session, tenant, rule_id, rules.RulePatch(enabled=False))
    send(world.database, tenant, [Reading(STATION, "temperature", at(2), 10.0)])
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.cleared_at is None, "a disabled rule evaluates nothing"


def test_rules_of_one_tenant_never_see_another_tenants_readings(world: World) -> None:
    first = world.tenant("ville-a").id
    second = world.tenant("ville-b").id
    for tenant in (first, second):
        entity(world.database, tenant, STATION)
    rule(world.database, first, "hot", HOT)
    send(world.database, second, [Reading(STATION, "temperature", at(0), 40.0)])
    assert alarms_of(world.database, first) == []
    assert alarms_of(world.database, second) == []
    with world.database.session() as session:
        assert session.scalars(select(RuleState)).all() == []


def test_the_web_process_runs_the_timers_in_the_background(
    world: World, settings: Settings
) -> None:
    tenant = world.tenant("ville-a").id
    entity(world.database, tenant, STATION)
    rule(world.database, tenant, "silence", {"kind": "silence", "minutes": 5})
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    send(world.database, tenant, [Reading(STATION, "temperature", an_hour_ago, 5.0)])
    app = create_app(settings.model_copy(update={"rule_timer_seconds": 0.1}), world.database)
    with TestClient(app):
        deadline = time.monotonic() + 10
        while not alarms_of(world.database, tenant) and time.monotonic() < deadline:
            time.sleep(0.1)
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.rule_key == "silence" and alarm.entity_urn == STATION


def test_alarms_raised_by_one_batch_cost_a_few_queries_whatever_their_number(
    world: World,
) -> None:
    tenant = world.tenant("ville-a").id
    batch = _stations_batch(world, tenant, 300, 35.0)
    outcome, statements = _evaluate_counting(world, tenant, batch)
    assert outcome.raised == 300
    found = alarms_of(world.database, tenant)
    assert {a.entity_urn for a in found} == {r.entity for r in batch}
    assert all(a.raised_at == at(1) for a in found)
    # One alarm at a time would cost at least one entity read and one insert each.
    # Each new alarm is inserted with its "raised" event (the ORM writes them one by one);
    # nothing else is per alarm: no savepoint, no entity read, no active-alarm lookup.
    per_alarm = [
        s for s in statements if s.startswith(("INSERT INTO alarm ", "INSERT INTO alarm_event"))
    ]
    assert len(per_alarm) <= 2 * 300
    assert len(statements) - len(per_alarm) <= 20, statements


def test_a_refused_alarm_stays_with_its_subject_and_the_others_are_raised(
    world: World,
) -> None:
    """A reading of a series whose entity left the registry: its alarm is refused (no such
    entity), the batch falls back to one subject at a time, the others are raised."""
    tenant = world.tenant("ville-a").id
    stations = [f"urn:ngsi-ld:WeatherObserved:m{i}" for i in range(5)]
    for urn in stations:
        entity(world.database, tenant, urn)
    rule(world.database, tenant, "hot", HOT)
    send(world.database, tenant, [Reading(u, "temperature", at(0), 10.0) for u in stations])
    with world.database.session() as session:
        ids = dict(session.execute(select(Series.entity, Series.id)).all())
    ghost = "urn:ngsi-ld:WeatherObserved:gone"
    batch = [StoredReading(ids[u], u, "temperature", at(1), 35.0) for u in stations]
    batch.append(StoredReading(ids[stations[0]], ghost, "temperature", at(1), 36.0))
    outcome = engine.evaluate_batch(world.database, tenant, batch)
    assert {a.entity_urn for a in alarms_of(world.database, tenant)} == set(stations)
    assert outcome.raised == 5 and outcome.errors == 1
    with world.database.session() as session:
        failed = session.scalar(select(Rule).where(Rule.key == "hot"))
        assert failed is not None and failed.last_error is not None
        assert ghost in failed.last_error
        ghost_state = session.scalar(select(RuleState.state).where(RuleState.subject == ghost))
    assert ghost_state == {}, "the refused subject's state was not saved"
