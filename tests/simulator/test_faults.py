"""Injected faults show in the readings exactly where the ground truth says, and nowhere else.

A run with faults is compared with the same seed's run without any: the physical noise
does not depend on the faults, so every difference must be explained by a record.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import numpy as np
import orjson
import pytest

from territoire.simulator import truth
from territoire.simulator.clock import DAY
from territoire.simulator.faults import FaultKind, parse_rate_overrides
from territoire.simulator.sizes import Size
from territoire.simulator.territory import build_territory
from tests.simulator.helpers import NO_FAULTS, joined, only, run

SEED, DAYS = 4, 5
RATES = only(
    lamp_out=2.0,
    lamp_cycling=2.0,
    day_burner=2.0,
    cabinet_failure=150.0,
    sensor_silent=2.0,
    sensor_stuck=8.0,
    sensor_drift=8.0,
    parking_stuck_occupied=20.0,
    water_leak=60.0,
    water_burst=60.0,
)


@pytest.fixture(scope="module")
def pair() -> tuple:  # type: ignore[type-arg]
    clean = run(SEED, DAYS, rates=NO_FAULTS)
    faulty = run(SEED, DAYS, rates=RATES)
    return clean, faulty


def _series_faults(simulation, stream: str, attribute: str) -> dict[int, list]:  # type: ignore[no-untyped-def,type-arg]
    found: dict[int, list] = {}  # type: ignore[type-arg]
    for fault in simulation.truth():
        if fault.stream == stream and attribute in fault.attributes:
            found.setdefault(fault.index, []).append(fault)
    return found


def test_a_run_without_faults_has_no_truth(pair: tuple) -> None:  # type: ignore[type-arg]
    (clean, _), (faulty, _) = pair
    assert clean.truth() == []
    kinds = {f.kind for f in faulty.truth()}
    assert {FaultKind.LAMP_OUT, FaultKind.SENSOR_SILENT, FaultKind.WATER_LEAK} <= kinds


def test_lamp_series_change_only_inside_their_faults(pair: tuple) -> None:  # type: ignore[type-arg]
    (_, clean_days), (faulty, faulty_days) = pair
    times, before = joined(clean_days, "streetlight", "powerConsumption")
    _, after = joined(faulty_days, "streetlight", "powerConsumption")
    explained = np.zeros(before.shape, dtype=bool)
    for fault in faulty.truth():
        if fault.kind is FaultKind.CABINET_FAILURE:
            for lamp in faulty.territory.cabinets[fault.index].extra["lamps"]:
                explained[lamp] |= fault.active(times[lamp])
        elif fault.stream == "streetlight":
            explained[fault.index] |= fault.active(times[fault.index])
    changed = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    assert changed.any()
    assert not (changed & ~explained).any(), "a lamp reading changed outside any fault"


def test_each_lamp_fault_has_its_signature(pair: tuple) -> None:  # type: ignore[type-arg]
    (_, clean_days), (faulty, faulty_days) = pair
    times, before = joined(clean_days, "streetlight", "powerConsumption")
    _, after = joined(faulty_days, "streetlight", "powerConsumption")
    lamps = faulty.territory.lamps
    seen: set[FaultKind] = set()
    for fault in faulty.truth():
        if fault.kind is FaultKind.CABINET_FAILURE:
            for lamp in faulty.territory.cabinets[fault.index].extra["lamps"]:
                active = fault.active(times[lamp])
                assert (after[lamp, active] == 0).all(), "a failed cabinet's lamps are dark"
            seen.add(fault.kind)
            continue
        if fault.stream != "streetlight" or fault.kind is FaultKind.SENSOR_SILENT:
            continue
        row, active = fault.index, fault.active(times[fault.index])
        commanded = before[row] > 2.0
        nominal = lamps[row].extra["nominal_w"]
        if fault.kind is FaultKind.LAMP_OUT:
            assert (after[row, active & commanded] < 0.1 * nominal + 1).all()
        elif fault.kind is FaultKind.DAY_BURNER:
            assert (after[row, active & ~commanded] > 0.8 * nominal).all()
        elif fault.kind is FaultKind.LAMP_CYCLING and (active & commanded).sum() >= 8:
            dark = after[row, active & commanded] < 2.0
            assert 0 < dark.mean() < 1, "a cycling lamp goes on and off"
        seen.add(fault.kind)
    assert {FaultKind.LAMP_OUT, FaultKind.DAY_BURNER, FaultKind.CABINET_FAILURE} <= seen


def test_sensor_faults_silence_freeze_or_drift_their_series(pair: tuple) -> None:  # type: ignore[type-arg]
    (_, clean_days), (faulty, faulty_days) = pair
    checked: dict[FaultKind, int] = {}
    for fault in faulty.truth():
        if fault.kind not in (
            FaultKind.SENSOR_SILENT,
            FaultKind.SENSOR_STUCK,
            FaultKind.SENSOR_DRIFT,
        ):
            continue
        for name in fault.attributes:
            times, before = joined(clean_days, fault.stream, name)
            _, after = joined(faulty_days, fault.stream, name)
            row = fault.index
            active = fault.active(times[row])
            if not active.any():
                continue
            assert np.array_equal(before[row, ~active], after[row, ~active], equal_nan=True)
            if fault.kind is FaultKind.SENSOR_SILENT:
                assert (
                    np.isnan(after[row, active]).all() and not np.isnan(before[row, active]).any()
                )
            elif fault.kind is FaultKind.SENSOR_STUCK:
                assert (after[row, active] == fault.magnitude).all()
            else:
                elapsed = (times[row, active] - fault.start) / DAY
                expected = before[row, active] + fault.magnitude * elapsed
                low = 0.0 if name in ("fillingLevel", "relativeHumidity", "flow", "level") else None
                high = 1.0 if name in ("fillingLevel", "relativeHumidity") else None
                expected = np.clip(expected, low, high)
                assert np.allclose(after[row, active], expected, atol=0.06)
        checked[fault.kind] = checked.get(fault.kind, 0) + 1
    assert all(
        checked.get(kind, 0) >= 2
        for kind in (FaultKind.SENSOR_SILENT, FaultKind.SENSOR_STUCK, FaultKind.SENSOR_DRIFT)
    )


def test_leaks_and_bursts_add_their_magnitude_to_the_district_flow(pair: tuple) -> None:  # type: ignore[type-arg]
    (_, clean_days), (faulty, faulty_days) = pair
    times, before = joined(clean_days, "district", "flow")
    _, after = joined(faulty_days, "district", "flow")
    explained = np.zeros(before.shape, dtype=bool)
    checked = 0
    for fault in faulty.truth():
        if fault.stream != "district":
            continue
        active = fault.active(times[fault.index])
        explained[fault.index] |= active
        if fault.kind in (FaultKind.WATER_LEAK, FaultKind.WATER_BURST) and active.any():
            excess = after[fault.index, active] - before[fault.index, active]
            assert np.allclose(excess, fault.magnitude, rtol=0.03, atol=0.02)
            checked += 1
    changed = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    assert not (changed & ~explained).any()
    assert checked >= 4


def test_a_stuck_parking_sensor_says_occupied_for_the_whole_fault(pair: tuple) -> None:  # type: ignore[type-arg]
    (_, clean_days), (faulty, faulty_days) = pair
    times, before = joined(clean_days, "spot", "occupancy")
    _, after = joined(faulty_days, "spot", "occupancy")
    stuck = [f for f in faulty.truth() if f.kind is FaultKind.PARKING_STUCK_OCCUPIED]
    assert stuck
    for fault in stuck:
        active = fault.active(times[fault.index])
        assert (after[fault.index, active] == 1.0).all()
        assert (before[fault.index, active] == 0.0).any(), "the real spot was free at times"


def test_overflows_are_labelled_where_the_sensor_reads_full() -> None:
    simulation, days = run(21, 6, rates=only(container_overflow=40.0))
    times, level = joined(days, "container", "fillingLevel")
    overflows = [f for f in simulation.truth() if f.kind is FaultKind.CONTAINER_OVERFLOW]
    assert len(overflows) >= 5
    for fault in overflows:
        active = fault.active(times[fault.index])
        assert fault.end > fault.start and fault.magnitude >= 1.0
        assert (level[fault.index, active] >= 0.97).all(), "an overflowing container reads full"
        after = times[fault.index] >= fault.end
        if after.any():
            assert level[fault.index, after][0] < 0.2, "it overflows until the truck empties it"


def test_buildings_left_heated_or_lit_when_closed() -> None:
    _, clean_days = run(30, 7, rates=NO_FAULTS)
    faulty, faulty_days = run(
        30, 7, rates=only(building_heated_unoccupied=150.0, building_lit_unoccupied=150.0)
    )
    heated = [f for f in faulty.truth() if f.kind is FaultKind.BUILDING_HEATED_UNOCCUPIED]
    lit = [f for f in faulty.truth() if f.kind is FaultKind.BUILDING_LIT_UNOCCUPIED]
    assert heated and lit
    times, occupancy = joined(faulty_days, "building_ambient", "occupancy")
    _, warm = joined(faulty_days, "building_ambient", "temperature")
    _, cold = joined(clean_days, "building_ambient", "temperature")
    _, power_on = joined(faulty_days, "building_power", "activePower")
    _, power_off = joined(clean_days, "building_power", "activePower")
    for fault in heated + lit:
        active = fault.active(times[fault.index])
        assert active.any() and (occupancy[fault.index, active] == 0).all(), (
            "faults happen when closed"
        )
    for fault in heated:
        active = fault.active(times[fault.index])
        assert warm[fault.index, active].mean() > cold[fault.index, active].mean() + 1.0
    for fault in lit:
        active = fault.active(times[fault.index])
        extra = power_on[fault.index, active] - power_off[fault.index, active]
        assert abs(float(np.median(extra)) - fault.magnitude) < 0.1 * fault.magnitude + 0.1


def test_default_rates_give_ten_faults_of_each_kind_in_a_medium_month() -> None:
    simulation, _ = run(1, 30, size=Size.MEDIUM, start=date(2026, 10, 20))
    counts = {kind: 0 for kind in FaultKind}
    for fault in simulation.truth():
        counts[fault.kind] += 1
    assert all(count >= 10 for count in counts.values()), counts


def test_truth_files_in_json_and_csv(pair: tuple) -> None:  # type: ignore[type-arg]
    (_, _), (faulty, _) = pair
    document = orjson.loads(truth.to_json(faulty))
    assert document["seed"] == SEED and document["size"] == "small"
    records = document["faults"]
    assert len(records) == len(faulty.truth()) > 10
    urns = {e for s in build_territory(SEED, Size.SMALL).streams.values() for e in s.entities}
    urns |= {c.urn for c in faulty.territory.cabinets}
    for record in records:
        assert record["entity"] in urns and record["start"] < record["end"] and record["attributes"]
    cabinet = next(r for r in records if r["kind"] == "cabinet_failure")
    assert (
        cabinet["group"] == cabinet["entity"] and len(cabinet["affected"]) == cabinet["magnitude"]
    )
    rows = list(csv.DictReader(io.StringIO(truth.to_csv(faulty))))
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    assert rows[0]["kind"] == records[0]["kind"] and rows[0]["start"] == records[0]["start"]


def test_rate_overrides_are_checked() -> None:
    assert parse_rate_overrides(["lamp_out=0.5", "water_leak=3"]) == {
        FaultKind.LAMP_OUT: 0.5,
        FaultKind.WATER_LEAK: 3.0,
    }
    with pytest.raises(ValueError, match=r"unknown fault kind 'lamp_off'.*lamp_out"):
        parse_rate_overrides(["lamp_off=1"])
    with pytest.raises(ValueError, match="must be a number"):
        parse_rate_overrides(["lamp_out=lots"])
    with pytest.raises(ValueError, match="between 0 and"):
        parse_rate_overrides(["lamp_out=-1"])
