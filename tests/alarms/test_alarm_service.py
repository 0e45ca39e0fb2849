"""Alarm lifecycle, repeats, auto-clear, correlation and bad signals, at the service level."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from territoire.alarms import service as alarms
from territoire.alarms.models import Alarm, AlarmEvent, AlarmStatus, ClearKind, Severity
from territoire.db.base import utcnow
from territoire.errors import Conflict, InvalidInput, NotFound
from tests.conftest import World
from tests.interventions.helpers import BIN, CABINET, LAMPS, at, territory, user_id


def signal(
    entity: str = LAMPS[0],
    *,
    rule: str = "lamp_out",
    severity: Severity | str = Severity.MAJOR,
    minutes: float = 0,
    group: str | None = None,
    message: str = "Lampe éteinte",
) -> alarms.AlarmSignal:
    return alarms.AlarmSignal(rule, entity, severity, message, at(minutes), 12.5, group)


def kinds(session, alarm: Alarm) -> list[str]:  # type: ignore[no-untyped-def]
    return [event.kind for event in alarms.history(session, alarm)]


def test_raise_then_repeat_updates_the_one_active_alarm(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        first = alarms.raise_alarm(session, place.id, signal(minutes=0))
        assert first.status is AlarmStatus.UNACKNOWLEDGED
        assert (first.entity_type, first.occurrences) == ("Streetlight", 1)
        assert first.commune_id is not None, "the commune comes from the registry entity"
        again = alarms.raise_alarm(session, place.id, signal(minutes=5, severity=Severity.CRITICAL))
        assert again.id == first.id
        assert again.occurrences == 2
        assert again.last_seen_at == at(5) and again.raised_at == at(0)
        assert again.severity is Severity.CRITICAL
        alarms.raise_alarm(session, place.id, signal(minutes=6, severity=Severity.CRITICAL))
        assert kinds(session, first) == ["raised", "severity_changed"], "repeats do not bloat it"
        other_rule = alarms.raise_alarm(session, place.id, signal(rule="lamp_cycling", minutes=7))
        assert other_rule.id != first.id
        count = session.scalar(select(func.count()).select_from(Alarm))
        assert count == 2


def test_lifecycle_acknowledge_clear_close_and_refusals(world: World) -> None:
    place = territory(world, "ville-a", "operator")
    with world.database.session() as session:
        operator = user_id(session, place.operator)
        alarm = alarms.raise_alarm(session, place.id, signal())
        with pytest.raises(Conflict):
            alarms.close(session, place.id, alarm.public_id, by_user=operator)
        alarms.acknowledge(session, place.id, alarm.public_id, by_user=operator, note="vu")
        assert alarm.status is AlarmStatus.ACKNOWLEDGED
        assert alarm.acknowledged_by == operator
        with pytest.raises(Conflict, match="already"):
            alarms.acknowledge(session, place.id, alarm.public_id, by_user=operator)
        alarms.clear(session, place.id, alarm.public_id, by_user=operator, note="réparé")
        assert (alarm.status, alarm.clear_kind) == (AlarmStatus.CLEARED, ClearKind.MANUAL)
        with pytest.raises(Conflict):
            alarms.clear(session, place.id, alarm.public_id, by_user=operator)
        alarms.close(session, place.id, alarm.public_id, by_user=operator)
        assert alarm.status is AlarmStatus.CLOSED
        for action in (alarms.acknowledge, alarms.clear, alarms.close):
            with pytest.raises(Conflict):
                action(session, place.id, alarm.public_id, by_user=operator)
        assert kinds(session, alarm) == ["raised", "acknowledged", "cleared", "closed"]
        texts = [event.text for event in alarms.history(session, alarm)]
        assert texts[1:3] == ["vu", "réparé"]


def test_auto_clear_then_a_new_occurrence_is_a_new_alarm(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        first = alarms.raise_alarm(session, place.id, signal(minutes=0))
        cleared = alarms.clear_alarm_condition(session, place.id, "lamp_out", LAMPS[0], at(30))
        assert cleared is not None and cleared.id == first.id
        assert (first.status, first.clear_kind, first.cleared_at) == (
            AlarmStatus.CLEARED,
            ClearKind.AUTO,
            at(30),
        )
        nothing = alarms.clear_alarm_condition(session, place.id, "lamp_out", LAMPS[0], at(31))
        assert nothing is None, "clearing a condition with no active alarm is a no-op"
        second = alarms.raise_alarm(session, place.id, signal(minutes=40))
        assert second.id != first.id and second.occurrences == 1
        # Nobody acknowledged the first one while it was active: it may still be.
        alarms.acknowledge(session, place.id, first.public_id, by_user=None)
        assert first.status is AlarmStatus.CLEARED and first.acknowledged_at is not None


def test_group_alarm_adopts_the_alarms_below_it_in_either_order(world: World) -> None:
    place = territory(world, "ville-a", "operator")
    with world.database.session() as session:
        operator = user_id(session, place.operator)
        early = [
            alarms.raise_alarm(session, place.id, signal(lamp, minutes=i, group=CABINET))
            for i, lamp in enumerate(LAMPS[:2])
        ]
        assert all(alarm.parent_id is None for alarm in early)
        cabinet = alarms.raise_alarm(
            session,
            place.id,
            signal(CABINET, rule="cabinet_fault", severity=Severity.CRITICAL, minutes=3),
        )
        late = alarms.raise_alarm(session, place.id, signal(LAMPS[2], minutes=4, group=CABINET))
        assert [a.parent_id for a in [*early, late]] == [cabinet.id] * 3
        assert [c.entity_urn for c in alarms.children_of(session, cabinet)] == sorted(
            LAMPS[:3], key=lambda urn: [a.entity_urn for a in [*early, late]].index(urn)
        )
        alarms.acknowledge(session, place.id, cabinet.public_id, by_user=operator)
        assert all(a.status is AlarmStatus.ACKNOWLEDGED for a in [*early, late])
        assert "grouped" in kinds(session, late)
        top = alarms.list_alarms(session, place.id, alarms.AlarmFilter(top_level=True))
        assert [a.id for a in top.items] == [cabinet.id]


def test_console_order_is_severity_then_recency(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        alarms.raise_alarm(session, place.id, signal(LAMPS[0], severity="warning", minutes=9))
        alarms.raise_alarm(session, place.id, signal(LAMPS[1], severity="critical", minutes=1))
        alarms.raise_alarm(session, place.id, signal(LAMPS[2], severity="critical", minutes=5))
        alarms.raise_alarm(session, place.id, signal(BIN, rule="overflow", severity="minor"))
        page = alarms.list_alarms(session, place.id, alarms.AlarmFilter())
        assert [a.entity_urn for a in page.items] == [LAMPS[2], LAMPS[1], BIN, LAMPS[0]]
        minor = alarms.list_alarms(
            session, place.id, alarms.AlarmFilter(severities=[Severity.MINOR, Severity.WARNING])
        )
        assert {a.entity_urn for a in minor.items} == {BIN, LAMPS[0]}


BAD_SIGNALS: list[tuple[dict[str, object], str]] = [
    ({"entity": "urn:ngsi-ld:Streetlight:unknown"}, "entity_urn"),
    ({"entity": "not-a-urn"}, "entity_urn"),
    ({"rule": "has spaces"}, "rule_key"),
    ({"severity": "apocalyptic"}, "severity"),
    ({"message": "   "}, "message"),
    ({"group": LAMPS[0]}, "group_key"),
    ({"group": "cabinet-1"}, "group_key"),
    ({"naive": True}, "observed_at"),
    ({"future": True}, "observed_at"),
    ({"value": float("nan")}, "value"),
]


def bad_signal(changes: dict[str, object]) -> alarms.AlarmSignal:
    observed: datetime = at(0)
    if changes.get("naive"):
        observed = datetime(2026, 1, 1, 12, 0)
    if changes.get("future"):
        observed = utcnow() + timedelta(hours=2)
    return alarms.AlarmSignal(
        str(changes.get("rule", "lamp_out")),
        str(changes.get("entity", LAMPS[0])),
        changes.get("severity", "major"),  # type: ignore[arg-type]
        str(changes.get("message", "Lampe éteinte")),
        observed,
        changes.get("value", 1.0),  # type: ignore[arg-type]
        changes.get("group"),  # type: ignore[arg-type]
    )


def test_bad_signals_are_refused_and_store_nothing(world: World) -> None:
    place = territory(world, "ville-a")
    for changes, field in BAD_SIGNALS:
        with world.database.session() as session:
            with pytest.raises(InvalidInput) as caught:
                alarms.raise_alarm(session, place.id, bad_signal(changes))
            assert caught.value.problems[0].field == field, changes
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Alarm)) == 0
        assert session.scalar(select(func.count()).select_from(AlarmEvent)) == 0


def test_another_tenant_never_sees_or_touches_an_alarm(world: World) -> None:
    place_a = territory(world, "ville-a")
    place_b = territory(world, "ville-b")
    with world.database.session() as session:
        alarm = alarms.raise_alarm(session, place_a.id, signal())
        with pytest.raises(NotFound):
            alarms.get_alarm(session, place_b.id, alarm.public_id)
        with pytest.raises(NotFound):
            alarms.acknowledge(session, place_b.id, alarm.public_id, by_user=None)
        assert (
            alarms.clear_alarm_condition(session, place_b.id, "lamp_out", LAMPS[0], at(5)) is None
        )
        assert alarms.list_alarms(session, place_b.id, alarms.AlarmFilter()).total == 0
        assert alarm.status is AlarmStatus.UNACKNOWLEDGED


def test_assignment_is_limited_to_operators_and_agents(world: World) -> None:
    place = territory(world, "ville-a", "agent", "viewer")
    with world.database.session() as session:
        alarm = alarms.raise_alarm(session, place.id, signal())
        agent = user_id(session, place.agent)
        alarms.assign(session, place.id, alarm.public_id, agent, by_user=None)
        assert alarm.assignee_id == agent
        with pytest.raises(InvalidInput):
            alarms.assign(
                session, place.id, alarm.public_id, user_id(session, place.viewer), by_user=None
            )
        alarms.assign(session, place.id, alarm.public_id, None, by_user=None)
        assert alarm.assignee_id is None
        assert kinds(session, alarm)[-2:] == ["assigned", "unassigned"]


def test_a_batch_of_signals_acts_like_one_by_one(world: World) -> None:
    place = territory(world, "ville-a")
    batch = [
        signal(LAMPS[0], minutes=1, group=CABINET),
        signal(LAMPS[1], minutes=2, group=CABINET),
        signal(CABINET, rule="cabinet_fault", severity=Severity.CRITICAL, minutes=3),
        signal(LAMPS[0], minutes=4, group=CABINET, severity=Severity.CRITICAL),
    ]
    with world.database.session() as session:
        results = alarms.raise_alarms(session, place.id, batch)
        assert results[0] is results[3], "a second signal in the batch is a repeat"
        assert results[0].occurrences == 2 and results[0].severity is Severity.CRITICAL
        assert results[0].last_seen_at == at(4)
        cabinet = results[2]
        assert [r.parent_id for r in results[:2]] == [cabinet.id, cabinet.id]
        assert cabinet.parent_id is None
        again = alarms.raise_alarms(session, place.id, batch[:2])
        assert [a.occurrences for a in again] == [3, 2]
        assert session.scalar(select(func.count()).select_from(Alarm)) == 3


def test_one_bad_signal_refuses_the_whole_batch(world: World) -> None:
    place = territory(world, "ville-a")
    batch = [signal(LAMPS[0]), signal(LAMPS[1]), signal("urn:ngsi-ld:Streetlight:ghost")]
    with world.database.session() as session:
        with pytest.raises(InvalidInput) as caught:
            alarms.raise_alarms(session, place.id, batch)
        assert caught.value.problems[0].field == "signals.2.entity_urn"
        with pytest.raises(InvalidInput) as caught:
            alarms.raise_alarms(session, place.id, [signal(), signal(severity="loud")])
        assert caught.value.problems[0].field == "signals.1.severity"
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Alarm)) == 0
