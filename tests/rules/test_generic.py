"""Generic rules on hand-made series: each fires, stays quiet on normal data, and clears."""

from __future__ import annotations

from datetime import timedelta

import pytest

from territoire.alarms.models import AlarmStatus
from territoire.errors import InvalidInput
from territoire.rules import service as rules
from territoire.rules.definitions import parse_definition
from territoire.telemetry.records import Reading
from tests.conftest import World
from tests.rules.helpers import alarms_of, at, entity, rule, send

STATION = "urn:ngsi-ld:WeatherObserved:meteo"
OTHER = "urn:ngsi-ld:WeatherObserved:meteo-2"


def _series(values: list[float], *, start: float = 0, step: float = 0.25, who: str = STATION):
    return [
        Reading(who, "temperature", at(start + i * step), value) for i, value in enumerate(values)
    ]


def _tenant(world: World) -> int:
    tenant = world.tenant("ville-test")
    entity(world.database, tenant.id, STATION)
    entity(world.database, tenant.id, OTHER)
    return tenant.id


def test_threshold_needs_its_repeats_and_clears_below_its_clear_value(world: World) -> None:
    tenant = _tenant(world)
    rule(
        world.database,
        tenant,
        "hot",
        {"kind": "threshold", "attribute": "temperature", "value": 30, "repeats": 2,
         "clear_value": 25},
    )  # fmt: skip
    send(world.database, tenant, _series([20, 31, 20, 20]))
    assert alarms_of(world.database, tenant) == [], "one reading above is not enough"
    send(world.database, tenant, _series([32, 33, 28], start=1))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.raised_at == at(1.25) and alarm.value == 33
    assert alarm.status is AlarmStatus.UNACKNOWLEDGED, "28 is above the clear value"
    send(world.database, tenant, _series([24], start=2))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.status is AlarmStatus.CLEARED and alarm.cleared_at == at(2)


def test_threshold_with_a_duration(world: World) -> None:
    tenant = _tenant(world)
    rule(
        world.database,
        tenant,
        "cold",
        {"kind": "threshold", "attribute": "temperature", "operator": "below", "value": 0,
         "minutes": 60},
    )  # fmt: skip
    send(world.database, tenant, _series([-1, -2, -1, 3, -1, -1, -1, -1, -1]))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.raised_at == at(2), "below 0 from 01:00, for an hour at 02:00"


def test_stuck_value_is_longer_than_the_longest_healthy_repeat(world: World) -> None:
    tenant = _tenant(world)
    rule(
        world.database,
        tenant,
        "stuck",
        {"kind": "stuck", "attribute": "temperature", "learn_hours": 4, "min_hours": 1},
    )
    healthy = [10, 10, 11, 12, 12, 12, 13, 14, 15, 15, 14, 13, 12, 11, 10, 9, 8]  # 4 h
    send(world.database, tenant, _series(healthy))
    send(world.database, tenant, _series([7.5] * 5, start=4.25))
    assert alarms_of(world.database, tenant) == [], "an hour of one value is not stuck yet"
    send(world.database, tenant, _series([7.5] * 4, start=5.5))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.entity_urn == STATION
    assert alarm.raised_at == at(5.5), "more than an hour (and 1.5 × the 45 min seen before)"
    send(world.database, tenant, _series([8.0], start=6.5))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.status is AlarmStatus.CLEARED


def test_one_stuck_episode_while_learning_does_not_hide_the_next(world: World) -> None:
    tenant = _tenant(world)
    rule(
        world.database,
        tenant,
        "stuck",
        {"kind": "stuck", "attribute": "temperature", "learn_hours": 6, "min_hours": 1,
         "ignore_values": [0.0]},
    )  # fmt: skip
    # Learning (6 h): short repeats (30 min at most), a 3-hour stuck episode at 20 and four
    # hours at 0, an ignored value (a saturated or idle sensor): neither is learnt.
    learning = [10, 10, 11, 12, 12, 12, 13, *([20] * 13), 14, *([0] * 17), 15]
    send(world.database, tenant, _series(learning))
    assert alarms_of(world.database, tenant) == []
    send(world.database, tenant, _series([9.0] * 6, start=9.75))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.raised_at == at(11), "min_hours (1 h) rules, not the 3-hour episode"


def test_parking_spots_of_one_zone_learn_their_change_rates_together(world: World) -> None:
    tenant = world.tenant("ville-parking").id
    zone = "urn:ngsi-ld:OnStreetParking:z1"
    spots = [f"urn:ngsi-ld:ParkingSpot:p{i}" for i in range(5)]
    entity(world.database, tenant, zone)
    for spot in spots:
        entity(world.database, tenant, spot, relationships={"refParkingSite": zone})
    rule(
        world.database,
        tenant,
        "stuck",
        {"kind": "stuck", "attribute": "occupancy", "model": "changes", "expected_changes": 4,
         "group_by": "refParkingSite", "learn_hours": 24, "min_hours": 2},
    )  # fmt: skip

    def occupancy(i: int, quarter: int) -> float:
        if i == 0 and 30 * 4 <= quarter < 40 * 4:
            return 1.0  # stuck "occupied" from hour 30 to hour 40
        return float((quarter // 4 + i) % 2)  # a car comes or goes every hour

    for day in range(2):
        readings = [
            Reading(spot, "occupancy", at(q / 4), occupancy(i, q))
            for q in range(day * 96, day * 96 + 96)
            for i, spot in enumerate(spots)
        ]
        send(world.database, tenant, readings)
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.entity_urn == spots[0]
    assert at(32) < alarm.raised_at <= at(36), "4 changes due at the zone's rate of 1 an hour"
    assert alarm.status is AlarmStatus.CLEARED and alarm.cleared_at == at(40)


def test_rate_of_change(world: World) -> None:
    tenant = _tenant(world)
    rule(
        world.database,
        tenant,
        "jump",
        {"kind": "rate_of_change", "attribute": "temperature", "max_per_hour": 8,
         "direction": "rise"},
    )  # fmt: skip
    send(world.database, tenant, _series([10, 11, 12, 10, 6]))
    assert alarms_of(world.database, tenant) == [], "a fall of 16/h is not a rise"
    send(world.database, tenant, _series([9, 10], start=1.25))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.raised_at == at(1.25) and alarm.status is AlarmStatus.CLEARED


def test_out_of_range_vs_own_history(world: World) -> None:
    tenant = _tenant(world)
    rule(
        world.database,
        tenant,
        "drift",
        {"kind": "history_range", "attribute": "temperature", "window_hours": 1,
         "learn_windows": 4, "sigmas": 4, "min_deviation": 1},
    )  # fmt: skip
    normal = [10.0, 10.5, 9.5, 10.2] * 6  # six hours whose means are 10.05
    wobble = [10.2, 9.6, 10.4, 9.9, 10.1, 10.3]
    values = [v + wobble[i // 4] - 10 for i, v in enumerate(normal)]
    send(world.database, tenant, _series(values))
    send(world.database, tenant, _series([14, 14.5, 13.5, 14], start=6))
    assert alarms_of(world.database, tenant) == [], "judged when the hour closes"
    send(world.database, tenant, _series([10, 10.2, 10.1, 9.9], start=7))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.raised_at == at(7)
    send(world.database, tenant, _series([10.1], start=8))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.status is AlarmStatus.CLEARED, "the following hour was normal"


def test_silence_is_seen_by_the_timer_and_clears_when_data_returns(world: World) -> None:
    tenant = _tenant(world)
    rule(world.database, tenant, "silence", {"kind": "silence", "minutes": 60})
    send(world.database, tenant, _series([1, 2, 3, 4]) + _series([1, 2, 3, 4], who=OTHER))
    send(world.database, tenant, _series([5, 6, 7, 8, 9, 10], start=1, who=OTHER))
    rules.run_timers(world.database, at(2.5))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.entity_urn == STATION and alarm.raised_at == at(2.5)
    rules.run_timers(world.database, at(2.75))
    assert len(alarms_of(world.database, tenant)) == 1, "still silent: no second alarm"
    send(world.database, tenant, _series([5], start=3))
    rules.run_timers(world.database, at(3) + timedelta(minutes=5))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.status is AlarmStatus.CLEARED


def test_grouping_is_refused_without_the_changes_model() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_definition({"kind": "stuck", "attribute": "occupancy", "group_by": "refParkingSite"})
    assert "group_by needs model 'changes'" in str(refused.value)
