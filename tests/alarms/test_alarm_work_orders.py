"""Alarms dispatched as work orders, and work orders that close their alarm once data
confirms the fix."""

from __future__ import annotations

import pytest

from territoire import events
from territoire.alarms import service as alarms
from territoire.alarms.models import AlarmStatus, Severity
from territoire.errors import Conflict
from territoire.interventions import service as interventions
from territoire.interventions.models import Priority, Skill, SourceKind, WorkOrderStatus
from tests.conftest import World
from tests.interventions.helpers import BIN, LAMPS, at, territory


@pytest.fixture(autouse=True)
def _listeners() -> None:
    events.install_listeners()


def raise_lamp(session, place_id: int, severity: Severity = Severity.CRITICAL):  # type: ignore[no-untyped-def]
    return alarms.raise_alarm(
        session,
        place_id,
        alarms.AlarmSignal("lamp_out", LAMPS[0], severity, "Lampe éteinte rue Haute", at(0)),
    )


def finish(session, place_id: int, order_id: str) -> None:  # type: ignore[no-untyped-def]
    for action in ("start", "done", "close"):
        interventions.transition(session, place_id, order_id, action, by_user=None)


def test_work_order_from_alarm_takes_priority_skill_and_place(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        team = interventions.create_team(session, place.id, name="Éclairage", skills=["lighting"])
        alarm = raise_lamp(session, place.id)
        order = alarms.create_work_order(
            session,
            place.id,
            alarm.public_id,
            alarms.WorkOrderOptions(team_id=team.public_id),
            by_user=None,
        )
        assert (order.priority, order.skill) == (Priority.URGENT, Skill.LIGHTING)
        assert (order.source_kind, order.source_ref) == (SourceKind.ALARM, alarm.public_id)
        assert order.entity_urn == LAMPS[0] and order.location is not None
        assert order.status is WorkOrderStatus.ASSIGNED
        assert alarm.work_order_id == order.public_id
        with pytest.raises(Conflict, match="already under way"):
            alarms.create_work_order(session, place.id, alarm.public_id, by_user=None)
        bin_alarm = alarms.raise_alarm(
            session,
            place.id,
            alarms.AlarmSignal("overflow", BIN, Severity.MINOR, "Conteneur plein", at(1)),
        )
        chosen = alarms.WorkOrderOptions(title="Vider le conteneur", priority=Priority.HIGH)
        bin_order = alarms.create_work_order(
            session, place.id, bin_alarm.public_id, chosen, by_user=None
        )
        assert (bin_order.title, bin_order.priority, bin_order.skill) == (
            "Vider le conteneur",
            Priority.HIGH,
            Skill.WASTE,
        )


def test_closing_the_work_order_waits_for_data_to_close_the_alarm(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        alarm = raise_lamp(session, place.id)
        order = alarms.create_work_order(session, place.id, alarm.public_id, by_user=None)
        assert order.status is WorkOrderStatus.NEW, "no team chosen yet"
        team = interventions.create_team(session, place.id, name="Éclairage")
        interventions.dispatch(
            session,
            place.id,
            order.public_id,
            team_id=team.public_id,
            assignee_id=None,
            by_user=None,
        )
        finish(session, place.id, order.public_id)
        assert alarm.status is AlarmStatus.UNACKNOWLEDGED, "no data yet: still active"
        assert alarm.fix_reported_at is not None
        alarms.clear_alarm_condition(session, place.id, "lamp_out", LAMPS[0], at(90))
        assert alarm.status is AlarmStatus.CLOSED
        kinds = [event.kind for event in alarms.history(session, alarm)]
        assert kinds[-3:] == ["fix_reported", "cleared", "closed"]


def test_closing_the_work_order_of_a_cleared_alarm_closes_it(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        team = interventions.create_team(session, place.id, name="Éclairage")
        alarm = raise_lamp(session, place.id)
        order = alarms.create_work_order(
            session,
            place.id,
            alarm.public_id,
            alarms.WorkOrderOptions(team_id=team.public_id),
            by_user=None,
        )
        alarms.clear_alarm_condition(session, place.id, "lamp_out", LAMPS[0], at(30))
        assert alarm.status is AlarmStatus.CLEARED
        finish(session, place.id, order.public_id)
        assert alarm.status is AlarmStatus.CLOSED


def test_reopening_cancels_the_wait_and_a_cancelled_order_can_be_replaced(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        team = interventions.create_team(session, place.id, name="Éclairage")
        alarm = raise_lamp(session, place.id)
        options = alarms.WorkOrderOptions(team_id=team.public_id)
        order = alarms.create_work_order(session, place.id, alarm.public_id, options, by_user=None)
        finish(session, place.id, order.public_id)
        assert alarm.fix_reported_at is not None
        interventions.transition(session, place.id, order.public_id, "reopen", by_user=None)
        assert alarm.fix_reported_at is None
        alarms.clear_alarm_condition(session, place.id, "lamp_out", LAMPS[0], at(60))
        assert alarm.status is AlarmStatus.CLEARED, "cleared by data, but the work goes on"
        interventions.transition(session, place.id, order.public_id, "cancel", by_user=None)
        second = alarms.create_work_order(session, place.id, alarm.public_id, options, by_user=None)
        assert second.public_id != order.public_id
        assert alarm.work_order_id == second.public_id
