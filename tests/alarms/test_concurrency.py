"""Concurrent operators and workers on one alarm end in one consistent state.

On PostgreSQL the row lock makes every loser see the winner's change and get a clean
409. SQLite has one writer at a time: a loser may instead be told the database is busy;
either way exactly one change is stored, which is what these tests check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from territoire.alarms import service as alarms
from territoire.alarms.models import Alarm, AlarmEvent, AlarmStatus, Severity
from territoire.db import Database
from territoire.errors import Conflict
from territoire.tenancy.models import Role
from tests.conftest import TEST_DB, World
from tests.interventions.helpers import LAMPS, at, territory, user_id

THREADS = 4
# How long each thread keeps its transaction open after its change, so that the others
# really run into it rather than one after the other.
HOLD_SECONDS = 0.2


def run_together(database: Database, count: int, action: Callable[[Any, int], Any]) -> list[Any]:
    """Run `action(session, index)` in `count` threads released at once; each commits
    its own transaction. Returns each thread's result or exception."""
    barrier = threading.Barrier(count)
    outcomes: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            with database.session() as session:
                outcomes[index] = action(session, index)
                time.sleep(HOLD_SECONDS)
        except Exception as error:  # the outcome under test
            outcomes[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def allowed_losses() -> tuple[type[Exception], ...]:
    return (Conflict,) if TEST_DB == "postgresql" else (Conflict, OperationalError)


def test_concurrent_acknowledgements_leave_one_winner(world: World) -> None:
    place = territory(world, "ville-a")
    operators = [
        world.account(place.tenant, Role.OPERATOR, email=f"op{i}@example.test")
        for i in range(THREADS)
    ]
    with world.database.session() as session:
        alarm = alarms.raise_alarm(
            session,
            place.id,
            alarms.AlarmSignal("lamp_out", LAMPS[0], Severity.MAJOR, "Lampe éteinte", at(0)),
        )
        alarm_id = alarm.public_id
        ids = [user_id(session, account) for account in operators]

    outcomes = run_together(
        world.database,
        THREADS,
        lambda session, i: alarms.acknowledge(session, place.id, alarm_id, by_user=ids[i]).id,
    )

    winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, int)]
    losers = [outcome for outcome in outcomes if not isinstance(outcome, int)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(loss, allowed_losses()) for loss in losers), outcomes
    with world.database.session() as session:
        stored = alarms.get_alarm(session, place.id, alarm_id)
        assert stored.status is AlarmStatus.ACKNOWLEDGED
        assert stored.acknowledged_by == ids[winners[0]]
        acknowledgements = session.scalar(
            select(func.count())
            .select_from(AlarmEvent)
            .where(AlarmEvent.alarm_id == stored.id, AlarmEvent.kind == "acknowledged")
        )
        assert acknowledgements == 1
        assert stored.version == 2, "one update only"


def test_concurrent_raises_of_a_new_condition_make_one_alarm(world: World) -> None:
    place = territory(world, "ville-a")

    def raise_once(session: Any, index: int) -> int:
        signal = alarms.AlarmSignal(
            "lamp_out", LAMPS[1], Severity.MAJOR, "Lampe éteinte", at(index)
        )
        return alarms.raise_alarm(session, place.id, signal).id

    outcomes = run_together(world.database, THREADS, raise_once)

    succeeded = [outcome for outcome in outcomes if isinstance(outcome, int)]
    if TEST_DB == "postgresql":
        assert len(succeeded) == THREADS, outcomes
    else:
        assert all(isinstance(o, (int, *allowed_losses())) for o in outcomes), outcomes
    with world.database.session() as session:
        rows = list(session.scalars(select(Alarm).where(Alarm.entity_urn == LAMPS[1])))
        assert len(rows) == 1, "never two active alarms for one rule and entity"
        assert rows[0].occurrences == len(succeeded)
        assert {row_id for row_id in succeeded} == {rows[0].id}


def test_concurrent_acknowledgements_over_http(world: World) -> None:
    place = territory(world, "ville-a")
    second = world.account(place.tenant, Role.OPERATOR, email="op.bis@example.test")
    clients = [world.browser(place.operator).client, world.browser(second).client]
    with world.database.session() as session:
        alarm = alarms.raise_alarm(
            session,
            place.id,
            alarms.AlarmSignal("lamp_out", LAMPS[2], Severity.CRITICAL, "Lampe éteinte", at(0)),
        )
        url = f"/api/v1/alarms/{alarm.public_id}/acknowledge"
    barrier = threading.Barrier(2)
    statuses: list[int] = [0, 0]

    def press(index: int) -> None:
        barrier.wait()
        statuses[index] = clients[index].post(url).status_code

    threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 409], statuses
    detail = clients[0].get(f"/api/v1/alarms/{alarm.public_id}").json()
    assert detail["status"] == "active_acknowledged"
    assert [event["kind"] for event in detail["history"]].count("acknowledged") == 1
