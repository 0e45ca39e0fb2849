"""Same seed ⇒ same readings and truth, whatever the batching; another seed ⇒ other ones."""

from __future__ import annotations

import threading
from datetime import date

import numpy as np

from territoire.simulator.clock import DAY
from territoire.simulator.engine import DayResult
from territoire.simulator.runner import RealTime, run_realtime
from territoire.simulator.service import Sink, readings
from territoire.simulator.sizes import DIMENSIONS, Size
from territoire.simulator.territory import build_territory
from tests.simulator.helpers import run, same


def _fingerprint(days: list[DayResult]) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    return [
        (key, name, frame.times, values)
        for day in days
        for key, frame in sorted(day.frames.items())
        for name, values in sorted(frame.values.items())
    ]


def _identical(a: list[DayResult], b: list[DayResult]) -> bool:
    left, right = _fingerprint(a), _fingerprint(b)
    return len(left) == len(right) and all(
        x[0] == y[0] and x[1] == y[1] and same(x[2], y[2]) and same(x[3], y[3])
        for x, y in zip(left, right, strict=True)
    )


def test_same_seed_gives_identical_readings_and_truth() -> None:
    first, first_days = run(7, 3)
    second, second_days = run(7, 3)
    assert _identical(first_days, second_days)
    assert [f.record() for f in first.truth()] == [f.record() for f in second.truth()]
    assert len(first.truth()) > 0, "the default rates place faults even in three small days"


def test_another_seed_gives_other_readings_and_truth() -> None:
    first, first_days = run(7, 3)
    other, other_days = run(8, 3)
    assert not _identical(first_days, other_days)
    lamps = first_days[0].frames["streetlight"].values["powerConsumption"]
    assert not same(lamps, other_days[0].frames["streetlight"].values["powerConsumption"])
    assert [f.record() for f in first.truth()] != [f.record() for f in other.truth()]


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    short, short_days = run(11, 2)
    long, long_days = run(11, 4)
    assert _identical(short_days, long_days[:2])
    assert [f.record() for f in short.truth()] == [f.record() for f in long.truth(short.now)]


def test_the_town_depends_on_the_size_not_on_the_seed() -> None:
    one, two = build_territory(1, Size.SMALL), build_territory(99, Size.SMALL)
    assert [a.urn for a in one.lamps] == [a.urn for a in two.lamps]
    assert [(a.lon, a.lat) for a in one.containers] == [(a.lon, a.lat) for a in two.containers]
    assert one.streams["spot"].devices == two.streams["spot"].devices


def test_sizes_have_the_announced_assets() -> None:
    medium = build_territory(1, Size.MEDIUM)
    assert len(medium.lamps) == 2000
    assert 35 <= len(medium.cabinets) <= 45
    assert len(medium.districts) == 12
    assert len(medium.containers) == 300
    assert len(medium.spots) + sum(c.extra["capacity"] for c in medium.car_parks) == 800
    assert len(medium.buildings) == 25
    assert len(medium.air_stations) == 6 and len(medium.weather_stations) == 1
    assert len({s.key for s in medium.streets}) == len(medium.streets) > 20
    large = build_territory(1, Size.LARGE)
    assert large.series_count >= 50_000
    assert len(large.lamps) == DIMENSIONS[Size.LARGE].lamps


class Recorder(Sink):
    def __init__(self, stop: threading.Event, until: int) -> None:
        self.seen: list[tuple[str, str, int, float]] = []
        self.windows = 0
        self.stop = stop
        self.until = until

    def send(self, day: DayResult, first: int, last: int) -> int:
        self.windows += 1
        found = [
            (r.entity, r.attribute, int(r.ts.timestamp()), r.value)
            for r in readings(day, first, last)
        ]
        self.seen.extend(found)
        if last >= self.until:
            self.stop.set()
        return len(found)


def test_real_time_sends_what_a_batch_run_generates() -> None:
    start = date(2026, 3, 28)  # the night of the change to summer time is inside the run
    simulation, _ = run(5, 0, start=start)
    stop = threading.Event()
    until = simulation.start + 2 * DAY
    recorder = Recorder(stop, until)
    fake_now = [simulation.start + 30 * DAY]

    def wall() -> float:
        fake_now[0] += 7 * 3600 + 17  # the clock jumps by uneven steps
        return fake_now[0]

    clock = RealTime(anchor_sim=simulation.start, anchor_wall=fake_now[0], speed=1.0, wall=wall)
    run_realtime(simulation, recorder, clock, stop, tick=0.0)
    _, batch_days = run(5, 2, start=start)
    expected = [
        (r.entity, r.attribute, int(r.ts.timestamp()), r.value)
        for day in batch_days
        for r in readings(day, day.start, day.start + DAY)
    ]
    sent = [item for item in recorder.seen if item[2] < until]
    assert recorder.windows > 4, "the run went through several real-time windows"
    assert sorted(sent) == sorted(expected)
    assert len(expected) > 20_000
