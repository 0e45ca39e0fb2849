"""Lighting rules on hand-made series: lamp out, day burner, cycling, cabinet fault."""

from __future__ import annotations

from sqlalchemy import select

from territoire.alarms.models import AlarmStatus
from territoire.rules.models import RuleState
from tests.conftest import World
from tests.rules.helpers import (
    CABINET,
    LAMPS,
    NOMINAL,
    alarms_of,
    at,
    healthy,
    lamp_readings,
    lighting,
    rule,
    send,
    send_hourly,
)


def _setup(world: World, *kinds: str) -> int:
    tenant = world.tenant("ville-lumiere")
    lighting(world.database, tenant.id)
    for kind in kinds:
        rule(world.database, tenant.id, kind.replace("_", "-"), {"kind": kind})
    return tenant.id


def test_a_dark_lamp_raises_one_alarm_and_clears_when_it_lights_again(world: World) -> None:
    tenant = _setup(world, "lamp_out")

    def power(lamp: str, hour: float, on: bool) -> float:
        broken = lamp == LAMPS[0] and 18 <= hour < 40
        return (0.5 if broken else NOMINAL) if on else 0.4

    send_hourly(world.database, tenant, lamp_readings(18, power, start=12))
    found = alarms_of(world.database, tenant, "lamp-out")
    assert [a.entity_urn for a in found] == [LAMPS[0]]
    alarm = found[0]
    # Twelve dark readings while commanded on: three hours after 18:00.
    assert at(20.75) <= alarm.raised_at <= at(21.25)
    assert alarm.group_key == CABINET
    assert alarm.status is AlarmStatus.UNACKNOWLEDGED
    # Repaired by day (16:00): the first lit reading of the evening clears the alarm.
    send_hourly(world.database, tenant, lamp_readings(14, power, start=30))
    (cleared,) = alarms_of(world.database, tenant, "lamp-out")
    assert cleared.status is AlarmStatus.CLEARED
    assert at(41) <= cleared.cleared_at <= at(41.25)  # type: ignore[operator]


def test_healthy_lamps_and_part_night_switch_off_raise_nothing(world: World) -> None:
    tenant = _setup(world, "lamp_out", "day_burner", "lamp_cycling", "cabinet_fault")
    send_hourly(world.database, tenant, lamp_readings(30, healthy, start=12))
    assert alarms_of(world.database, tenant) == []


def test_a_lamp_lit_by_day_is_a_day_burner(world: World) -> None:
    tenant = _setup(world, "day_burner", "lamp_out")

    def power(lamp: str, hour: float, on: bool) -> float:
        return NOMINAL if on or lamp == LAMPS[1] else 0.4

    send_hourly(world.database, tenant, lamp_readings(4, power, start=8))
    found = alarms_of(world.database, tenant)
    assert [(a.rule_key, a.entity_urn) for a in found] == [("day-burner", LAMPS[1])]
    assert found[0].raised_at <= at(9.25), "four readings lit while commanded off"


def test_a_lamp_going_on_and_off_all_night_is_cycling_not_out(world: World) -> None:
    tenant = _setup(world, "lamp_cycling", "lamp_out")

    def power(lamp: str, hour: float, on: bool) -> float:
        if not on:
            return 0.4
        if lamp == LAMPS[2] and int(hour * 4) % 3 == 0:
            return 0.4
        return NOMINAL

    send_hourly(world.database, tenant, lamp_readings(8, power, start=16))
    found = alarms_of(world.database, tenant)
    assert [(a.rule_key, a.entity_urn) for a in found] == [("lamp-cycling", LAMPS[2])]


def test_a_cabinet_fault_is_one_alarm_on_the_cabinet_not_one_per_lamp(world: World) -> None:
    tenant = _setup(world, "cabinet_fault", "lamp_out", "lamp_cycling")

    def power(lamp: str, hour: float, on: bool) -> float:
        if 20 <= hour < 25:
            return 0.0  # the feeder tripped: no lamp draws anything, day or night
        return NOMINAL if on else 0.4

    send_hourly(world.database, tenant, lamp_readings(16, power, start=12))
    found = alarms_of(world.database, tenant)
    assert [(a.rule_key, a.entity_urn) for a in found] == [("cabinet-fault", CABINET)]
    alarm = found[0]
    assert at(20) < alarm.raised_at <= at(20.5)
    assert alarm.status is AlarmStatus.CLEARED, "the lamps lit again at 01:00"
    assert at(25) <= alarm.cleared_at <= at(25.5)  # type: ignore[operator]


def test_a_cabinet_fault_by_day_is_seen_through_the_lamps_lost_supply(world: World) -> None:
    tenant = _setup(world, "cabinet_fault")

    def power(lamp: str, hour: float, on: bool) -> float:
        return 0.0 if 9 <= hour < 12 else (NOMINAL if on else 0.4)

    send_hourly(world.database, tenant, lamp_readings(6, power, start=8))
    (alarm,) = alarms_of(world.database, tenant, "cabinet-fault")
    assert alarm.entity_urn == CABINET
    assert alarm.status is AlarmStatus.CLEARED


def test_lamp_readings_sent_before_their_cabinet_wait_for_it(world: World) -> None:
    """Each hour the lamps' batch arrives before the cabinet's: judging waits for it."""
    tenant = _setup(world, "lamp_out")

    def power(lamp: str, hour: float, on: bool) -> float:
        return 0.5 if on and lamp == LAMPS[0] else (NOMINAL if on else 0.4)

    first = lamp_readings(1, power, start=18)
    send(world.database, tenant, [r for r in first if r.entity != CABINET])
    with world.database.session() as session:
        (state,) = session.scalars(select(RuleState.state)).all()
    assert len(state["p"]) == 40, "no command known yet: the readings wait"
    send(world.database, tenant, [r for r in first if r.entity == CABINET])
    for hour in range(19, 24):
        readings = lamp_readings(1, power, start=hour)
        send(world.database, tenant, [r for r in readings if r.entity != CABINET])
        send(world.database, tenant, [r for r in readings if r.entity == CABINET])
    assert [a.entity_urn for a in alarms_of(world.database, tenant)] == [LAMPS[0]]
