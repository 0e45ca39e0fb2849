"""What a domain expert would check in the readings."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from territoire.simulator import sun
from territoire.simulator.clock import local_days, local_hours, weekdays
from territoire.simulator.faults import FaultKind
from territoire.simulator.lighting import SWITCH_ELEVATION
from territoire.simulator.territory import LATITUDE, LONGITUDE
from territoire.simulator.waste import pass_times
from tests.simulator.helpers import NO_FAULTS, joined, only, run


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_sunrise_and_sunset_at_the_town() -> None:
    # Reference: NOAA solar calculator for 47.05 N, 5.51 E.
    rise, set_ = sun.sunrise_sunset(date(2026, 12, 21), LATITUDE, LONGITUDE)
    assert abs(_utc(rise).hour * 60 + _utc(rise).minute - (7 * 60 + 21)) <= 3
    assert abs(_utc(set_).hour * 60 + _utc(set_).minute - (15 * 60 + 51)) <= 3
    rise, set_ = sun.sunrise_sunset(date(2026, 6, 21), LATITUDE, LONGITUDE)
    assert 15.8 < (set_ - rise) / 3600 < 16.1
    assert abs(float(sun.elevation(np.array([rise]), LATITUDE, LONGITUDE)[0]) + 0.83) < 0.05


def test_lamps_draw_power_only_at_night_unless_burning_by_day() -> None:
    simulation, days = run(3, 4, rates=only(day_burner=25.0))
    burners = [f for f in simulation.truth() if f.kind is FaultKind.DAY_BURNER]
    assert burners, "the test needs some day burners"
    times, power = joined(days, "streetlight", "powerConsumption")
    night = (
        sun.elevation(times.ravel(), LATITUDE, LONGITUDE).reshape(times.shape) < SWITCH_ELEVATION
    )
    allowed = night.copy()
    for fault in burners:
        allowed[fault.index] |= fault.active(times[fault.index])
    lit = np.nan_to_num(power) > 2.0
    assert not (lit & ~allowed).any(), "a healthy lamp drew power by day"
    assert lit[night].mean() > 0.5, "lamps are lit most of the night (part-night lighting aside)"
    exposed = 0
    for fault in burners:
        by_day = fault.active(times[fault.index]) & ~night[fault.index]
        assert lit[fault.index, by_day].all(), "a day burner is lit all day long"
        exposed += int(by_day.any())
    assert exposed >= 3


def test_cabinets_command_nothing_by_day_and_meter_their_lamps() -> None:
    simulation, days = run(4, 2, rates=NO_FAULTS)
    for day in days:
        frame = day.frames["cabinet"]
        sky = sun.elevation(frame.times.ravel(), LATITUDE, LONGITUDE).reshape(frame.times.shape)
        level = frame.values["illuminanceLevel"]
        assert (level[sky >= SWITCH_ELEVATION] == 0).all()
        assert (level[sky < -6] > 0).mean() > 0.6
        kw = frame.values["activePower"]
        nominal = np.array(
            [
                sum(simulation.territory.lamps[i].extra["nominal_w"] for i in c.extra["lamps"])
                for c in simulation.territory.cabinets
            ]
        )
        assert (kw <= nominal[:, None] / 1000 * 1.1 + 0.05).all(), (
            "never more than the lamps' rating"
        )


def _local(times: np.ndarray) -> np.ndarray:
    return local_hours(times)


def test_night_flow_is_the_daily_minimum_except_during_leaks() -> None:
    simulation, days = run(5, 8, rates=only(water_leak=60.0))
    leaks = [f for f in simulation.truth() if f.kind is FaultKind.WATER_LEAK]
    assert leaks
    baseline = simulation.water.baseline_night_flow()
    checked_clean = checked_leak = 0
    for day in days:
        frame = day.frames["district"]
        hours = _local(frame.times)
        flow = frame.values["flow"]
        for i in range(flow.shape[0]):
            night = (hours[i] >= 2) & (hours[i] < 4)
            mnf = float(flow[i, night].mean())
            touching = [
                f for f in leaks if f.index == i and f.overlaps(day.start, day.start + 86_400)
            ]
            if not touching:
                assert abs(mnf - baseline[i]) < 0.15 * baseline[i], (day.index, i, mnf, baseline[i])
                assert hours[i][int(np.argmin(flow[i]))] < 5.5, "the day's minimum is at night"
                checked_clean += 1
            else:
                whole_night = [f for f in touching if f.active(frame.times[i][night]).all()]
                if whole_night:
                    excess = mnf - baseline[i]
                    assert abs(excess - whole_night[0].magnitude) < 0.12 * baseline[i] + 0.05
                    checked_leak += 1
    assert checked_clean >= 5 and checked_leak >= 3


def test_reservoir_stays_between_its_limits() -> None:
    simulation, days = run(6, 4, rates=only(water_burst=80.0))
    _, level = joined(days, "tank", "level")
    tank = simulation.territory.tanks[0].extra
    assert level.min() > 0.5 and level.max() <= tank["max"] + 0.05
    assert np.ptp(level) > 0.5, "pumps and demand move the level"


def test_containers_empty_only_when_their_round_passes() -> None:
    simulation, days = run(2, 8, rates=NO_FAULTS)
    territory = simulation.territory
    times, level = joined(days, "container", "fillingLevel")
    drops = passes_seen = 0
    for i, container in enumerate(territory.containers):
        round_ = territory.rounds[container.extra["round"]]
        passes = pass_times(
            round_, container.extra["stop"], int(times[i, 0]), int(times[i, -1]) + 1
        )
        change = np.diff(level[i])
        for k in np.flatnonzero(change < -0.08):
            before, after = times[i, k], times[i, k + 1]
            assert any(before < p <= after for p in passes), f"container {i} emptied with no truck"
            drops += 1
        for moment in passes:
            k = int(np.searchsorted(times[i], moment))
            if 0 < k < times.shape[1] and level[i, k - 1] > 0.2:
                assert level[i, k] < 0.12, "the truck empties what it passes"
                passes_seen += 1
        rises = change[change > -0.08]
        assert rises.max() < 0.25, "deposits add a little each hour, never a container-full"
    assert drops >= 20 and passes_seen >= 20
    assert np.nanmin(level) >= 0.0 and np.nanmax(level) <= 1.0


def test_parking_occupancy_stays_within_capacity_and_follows_the_day() -> None:
    simulation, days = run(9, 7, rates=NO_FAULTS)
    territory = simulation.territory
    _, counts = joined(days, "car_park", "occupiedSpotNumber")
    capacity = np.array([c.extra["capacity"] for c in territory.car_parks])[:, None]
    assert (counts >= 0).all() and (counts <= capacity).all()
    assert (counts == np.round(counts)).all()
    times, spots = joined(days, "spot", "occupancy")
    assert set(np.unique(spots)) <= {0.0, 1.0}
    hours, weekday = _local(times), weekdays(local_days(times))
    commercial = np.array([s.extra["commercial"] for s in territory.spots])
    workday = weekday < 5
    late_morning = spots[commercial][(workday & (hours >= 10) & (hours < 12))[commercial]].mean()
    small_hours = spots[commercial][((hours >= 2) & (hours < 4))[commercial]].mean()
    assert late_morning > small_hours + 0.3, "the centre fills by day and empties at night"
    _, present = joined(days, "building_ambient", "occupancy")
    assert (present >= 0).all() and (present <= 1).all()


def test_schools_are_warm_and_busy_in_class_hours_only() -> None:
    simulation, days = run(12, 7, rates=NO_FAULTS)
    territory = simulation.territory
    times, temperature = joined(days, "building_ambient", "temperature")
    _, gas = joined(days, "building_gas", "gasConsumption")
    _, occupancy = joined(days, "building_ambient", "occupancy")
    hours, weekday = _local(times), weekdays(local_days(times))
    schools = [i for i, b in enumerate(territory.buildings) if b.extra["usage"] == "school"]
    assert schools
    for i in schools:
        lessons = (weekday[i] < 5) & (weekday[i] != 2) & (hours[i] >= 10) & (hours[i] < 12)
        night = (hours[i] >= 1) & (hours[i] < 4)
        assert occupancy[i, lessons].min() > 0.5 and occupancy[i, night].max() == 0
        assert np.median(temperature[i, lessons]) > 18.0
        assert temperature[i, night & (weekday[i] == 6)].mean() < 17.0, "setback on Sunday nights"
        assert gas[i, lessons].sum() > 0
