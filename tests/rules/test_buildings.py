"""Building rules fed reading by reading: drifting and frozen sensors, meters stuck at 0."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from territoire.errors import InvalidInput
from territoire.rules.definitions import (
    OccupiedZero,
    ThermometerDrift,
    UnoccupiedConsumption,
    UnoccupiedHeating,
    parse_definition,
)
from territoire.rules.evaluators import evaluator_for
from territoire.rules.evaluators.base import Context, Entities, EntityInfo, Point, Scope
from territoire.telemetry.records import Reading
from tests.conftest import World
from tests.rules.helpers import BASE, alarms_of, at, entity, rule, send

SCHOOL = "urn:ngsi-ld:Building:school"
HOURS = "Mo-Fr 08:00-18:00"  # local time; UTC+1 in January, BASE is a Monday
START = BASE.timestamp()
Series = dict[str, Callable[[float], float | None]]


class _Registry(Entities):
    def get(self, urn: str) -> EntityInfo | None:
        return EntityInfo(urn, "Building", None, {"openingHours": [HOURS]}, {})


def _open(hour: float) -> bool:
    local = (hour + 1) % 24
    return (hour + 1) // 24 % 7 < 5 and 8 <= local < 18


def _run(definition: Any, series: Series, days: int) -> list[tuple[bool, float]]:
    """Feeds a building's series quarter by quarter, hour by hour as ingest does; returns
    (raised?, hour) for each signal."""
    evaluator = evaluator_for(definition)
    ctx = Context(1, _Registry(), Scope(frozenset({"Building"}), frozenset()))
    state: dict[str, Any] = {}
    signals = []
    for hour in range(days * 24):
        points = []
        for quarter in range(4):
            time = hour + quarter / 4
            for attribute, value in series.items():
                found = value(time)
                if found is not None:
                    points.append(Point(START + time * 3600, found, SCHOOL, attribute))
        for signal in evaluator.evaluate(SCHOOL, state, points, ctx):
            signals.append((signal.raise_alarm, (signal.at - START) / 3600))
    return signals


def _wobble(hour: float, size: float = 0.1) -> float:
    return size * math.sin(hour * 7.3) * math.cos(hour * 1.7)


def _true_temperature(hour: float, heated_nights: tuple[int, ...] = ()) -> float:
    """20 °C in use, a set-back to 16 °C reached 4 h after closing."""
    if _open(hour) or (int(hour // 24) in heated_nights and not _open(hour)):
        return 20.0
    since_closing = (hour + 1 - 18) % 24
    return max(16.0, 20.0 - since_closing)


def _gas(hour: float) -> float:
    """The boiler regulates in use and at the set-back, is off while the room cools down,
    and runs flat out for the morning boost."""
    if _open(hour + 1) and not _open(hour):
        return 5.0
    if _open(hour) or _true_temperature(hour) <= 16.0:
        return 2.0 + _wobble(hour + 0.3, 0.3)
    return 0.0


def _building(
    drift_per_day: float = 0.0, drift_from: float = 0.0, drift_until: float = 1e9, **kw: Any
) -> Series:
    def temperature(hour: float) -> float:
        drift = drift_per_day * max(0.0, hour - drift_from) / 24 if hour < drift_until else 0.0
        return round(_true_temperature(hour, **kw) + drift + _wobble(hour), 1)

    return {
        "temperature": temperature,
        "gasConsumption": _gas,
        "occupancy": lambda h: 0.8 if _open(h) else 0.0,
    }


# --- thermometer drift ------------------------------------------------------------------


def test_a_thermometer_walking_away_from_the_comfort_level_is_a_drift() -> None:
    drift_from = 14 * 24.0
    signals = _run(ThermometerDrift(), _building(0.4, drift_from), days=28)
    raised = [hour for up, hour in signals if up]
    assert len(raised) == 1, signals
    # 0.6 °C is passed after 1.5 days; the judgement comes at the next noon.
    assert drift_from + 24 <= raised[0] <= drift_from + 3 * 24


def test_a_steady_thermometer_and_a_night_heated_at_comfort_are_no_drift() -> None:
    assert _run(ThermometerDrift(), _building(), days=28) == []
    # Heating left at comfort two nights in a row: the set-back jumps by 4 °C, not a drift.
    assert _run(ThermometerDrift(), _building(heated_nights=(16, 17)), days=28) == []


def test_a_drift_from_the_start_is_not_learnt_as_the_usual_level() -> None:
    # Drifting from the first day: no level is ever steady enough to be learnt as normal.
    assert _run(ThermometerDrift(), _building(0.4), days=10) == []
    series = _building(0.4)
    after = _building()
    # Back to the truth from day 10: the true level is learnt, and no alarm follows.
    series["temperature"] = lambda h: (
        after["temperature"](h) if h >= 240 else _building(0.4)["temperature"](h)
    )
    assert _run(ThermometerDrift(), series, days=28) == []


def test_a_frozen_thermometer_is_not_judged_as_drifting() -> None:
    series = _building()
    live = series["temperature"]
    series["temperature"] = lambda h: 18.3 if 14 * 24 <= h < 21 * 24 else live(h)
    assert _run(ThermometerDrift(), series, days=28) == []


def test_the_drift_rule_through_the_engine(world: World) -> None:
    tenant = world.tenant("ville-thermo").id
    entity(world.database, tenant, SCHOOL, {"openingHours": [HOURS]})
    rule(world.database, tenant, "thermo", {"kind": "thermometer_drift", "learn_days": 3})
    series = _building(-0.5, 8 * 24.0)
    for day in range(14):
        send(
            world.database,
            tenant,
            [
                Reading(SCHOOL, attribute, at(day * 24 + k / 4), value(day * 24 + k / 4))
                for k in range(96)
                for attribute, value in series.items()
            ],
        )
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.entity_urn == SCHOOL
    assert at(9 * 24) <= alarm.raised_at <= at(11 * 24)


# --- heating while unoccupied with a drifting thermometer --------------------------------


def test_heating_is_not_judged_while_the_thermometer_drifts() -> None:
    # Reading low by up to 4 °C, then back to the truth in the night of day 18: the
    # set-back learnt meanwhile is too low, and every night would look heated.
    series = _building(-0.5, 10 * 24.0, 18 * 24 + 1.0)
    raised = [hour for up, hour in _run(UnoccupiedHeating(), series, days=24) if up]
    assert raised == [], "the drift is seen on the comfort level: nights are not judged"
    blind = UnoccupiedHeating(suspect_tolerance=None)
    assert [hour for up, hour in _run(blind, series, days=24) if up], "without the check"


def test_heating_left_on_is_still_seen_with_a_steady_thermometer() -> None:
    series = _building(heated_nights=(15,))
    raised = [hour for up, hour in _run(UnoccupiedHeating(), series, days=18) if up]
    assert len(raised) == 1 and 15 * 24 <= raised[0] <= 16 * 24


# --- lit while unoccupied with a frozen power meter ----------------------------------------


def _power(frozen: bool) -> Series:
    def power(hour: float) -> float:
        if frozen and hour >= 3 * 24 + 15:
            return 50.0  # stuck at the afternoon's load
        return round((50.0 if _open(hour) else 10.0) * (1 + _wobble(hour, 0.3)), 2)

    return {"activePower": power, "occupancy": lambda h: 0.8 if _open(h) else 0.0}


def test_a_power_meter_frozen_at_a_daytime_load_is_no_consumption_alarm() -> None:
    assert _run(UnoccupiedConsumption(), _power(frozen=True), days=6) == []
    lit = _power(frozen=False)
    live = lit["activePower"]
    lit["activePower"] = lambda h: live(h) + (40.0 if 3 * 24 + 18 <= h < 4 * 24 + 5 else 0.0)
    raised = [hour for up, hour in _run(UnoccupiedConsumption(), lit, days=6) if up]
    assert len(raised) == 1, "a live meter reading high while closed still raises"


# --- meter at zero while the building is in use --------------------------------------------


def _water(stuck_from: float | None) -> Series:
    def water(hour: float) -> float:
        if stuck_from is not None and hour >= stuck_from:
            return 0.0
        # Some quarters of use draw nothing (one at a time); closed: always 0.
        return round(max(0.0, 20 * _wobble(hour, 1.0) + 5), 0) if _open(hour) else 0.0

    return {"waterConsumption": water, "occupancy": lambda h: 0.8 if _open(h) else 0.0}


def test_a_water_meter_at_zero_while_in_use_is_stuck() -> None:
    # Stuck from Friday evening: the weekend says nothing, Monday's use does.
    stuck_from = 7 * 24 + 4 * 24 + 17.5
    signals = _run(OccupiedZero(), _water(stuck_from), days=16)
    raised = [hour for up, hour in signals if up]
    assert len(raised) == 1
    monday_opening = 14 * 24 + 7
    assert monday_opening + 2 <= raised[0] <= monday_opening + 5, "8 in-use quarters at 0"
    assert _run(OccupiedZero(), _water(None), days=16) == [], "closed nights and weekends"


def test_a_meter_at_zero_clears_with_the_first_reading() -> None:
    series = _water(None)
    live = series["waterConsumption"]
    series["waterConsumption"] = lambda h: 0.0 if 9 * 24 <= h < 10 * 24 + 10 else 7.0 + live(h)
    signals = _run(OccupiedZero(), series, days=12)
    assert [up for up, _ in signals] == [True, False]
    assert signals[1][1] == pytest.approx(10 * 24 + 10)


# --- parameters -------------------------------------------------------------------------


def test_building_rule_parameters_are_checked() -> None:
    with pytest.raises(InvalidInput, match="baseline_days must be at least learn_days"):
        parse_definition({"kind": "thermometer_drift", "learn_days": 10, "baseline_days": 5})
    with pytest.raises(InvalidInput, match=r"definition\.tolerance"):
        parse_definition({"kind": "thermometer_drift", "tolerance": 0})
    with pytest.raises(InvalidInput, match=r"definition\.readings"):
        parse_definition({"kind": "occupied_zero", "readings": 0})
    with pytest.raises(InvalidInput, match=r"definition\.suspect_tolerance"):
        parse_definition({"kind": "unoccupied_heating", "suspect_tolerance": -1})
    assert "0,6 °C" in ThermometerDrift().describe("fr")
    assert "frozen sensor" in ThermometerDrift().describe("en")
    assert "more than 8 consecutive" in OccupiedZero().describe("en")
    assert "drifting thermometer" in UnoccupiedHeating().describe("en")
    assert "frozen meter" in UnoccupiedConsumption().describe("en")


def test_a_gas_meter_at_zero_while_the_room_is_held_at_comfort_is_stuck() -> None:
    rule = OccupiedZero(attribute="gasConsumption", temperature_attribute="temperature")
    stuck = _building()
    stuck["gasConsumption"] = lambda h: 0.0 if h >= 15 * 24 else _gas(h)
    raised = [hour for up, hour in _run(rule, stuck, days=17) if up]
    assert len(raised) == 1 and 15 * 24 + 7 + 2 <= raised[0] <= 15 * 24 + 7 + 3

    # A mild Tuesday: people and equipment keep the room above comfort, the boiler is off.
    warm = _building()
    live_temperature, live_gas = warm["temperature"], warm["gasConsumption"]
    mild = (15 * 24, 16 * 24)
    warm["temperature"] = lambda h: 21.3 if mild[0] <= h < mild[1] else live_temperature(h)
    warm["gasConsumption"] = lambda h: 0.0 if mild[0] <= h < mild[1] else live_gas(h)
    assert _run(rule, warm, days=17) == []
    # Without the thermometer the same day would read as a stuck meter.
    assert _run(OccupiedZero(attribute="gasConsumption"), warm, days=17) != []
