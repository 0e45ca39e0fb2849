"""Running a simulation: a batch of days as fast as the output takes them, or real time.

In real time the simulated clock advances `speed` times faster than the wall clock but
never passes the real present (the platform refuses readings from the future): at ×1 a
run that starts in the past sends the gap at once, faster it replays the gap at `speed`;
then it goes on at the pace of the world.
Each day is generated whole when the clock enters it, and its readings leave as their
time comes, so a real-time run sends exactly what a batch run of the same days sends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from territoire.simulator.clock import DAY
from territoire.simulator.engine import DayResult, Simulation
from territoire.simulator.service import Sink

Progress = Callable[[DayResult, int], None]


@dataclass
class RunStats:
    days: int = 0
    generated: int = 0
    sent: int = 0
    generation_seconds: float = 0.0
    output_seconds: float = 0.0
    faults: int = 0
    per_day: list[int] = field(default_factory=list)


def run_batch(
    simulation: Simulation,
    days: int,
    sink: Sink,
    progress: Progress | None = None,
    after_day: Callable[[Simulation], None] | None = None,
) -> RunStats:
    stats = RunStats()
    for _ in range(days):
        started = time.perf_counter()
        day = simulation.next_day()
        generated = time.perf_counter()
        sent = sink.send(day, day.start, day.start + DAY)
        stats.output_seconds += time.perf_counter() - generated
        stats.generation_seconds += generated - started
        stats.days += 1
        stats.generated += day.count
        stats.sent += sent
        stats.faults += len(day.faults)
        stats.per_day.append(day.count)
        if after_day is not None:
            after_day(simulation)
        if progress is not None:
            progress(day, sent)
    return stats


@dataclass
class RealTime:
    """The simulated clock: `anchor_sim` at wall time `anchor_wall`, running `speed`× faster."""

    anchor_sim: float
    anchor_wall: float
    speed: float = 1.0
    wall: Callable[[], float] = time.time

    def now(self) -> int:
        real = self.wall()
        return int(min(self.anchor_sim + (real - self.anchor_wall) * self.speed, real))

    @classmethod
    def following(cls, simulation: Simulation, speed: float) -> RealTime:
        """At ×1, the present at once (a gap is sent in one go); faster, a replay of the gap
        from the simulation's next day until it reaches the present."""
        wall = time.time()
        return cls(anchor_sim=wall if speed <= 1 else simulation.now, anchor_wall=wall, speed=speed)


def run_realtime(
    simulation: Simulation,
    sink: Sink,
    clock: RealTime,
    stop: threading.Event,
    *,
    tick: float = 1.0,
    sent_until: int | None = None,
    progress: Progress | None = None,
    after_day: Callable[[Simulation], None] | None = None,
) -> RunStats:
    """Send readings as the simulated clock reaches them, until `stop` is set.

    `sent_until` says what an earlier batch already sent (readings before it are not
    sent again); by default the run starts at the simulation's next day.
    """
    stats = RunStats()
    day: DayResult | None = None
    cursor = simulation.now if sent_until is None else sent_until
    while not stop.is_set():
        target = clock.now()
        while cursor < target:
            if day is None or cursor >= day.start + DAY:
                day = _day_containing(simulation, cursor, stats)
                if after_day is not None:
                    after_day(simulation)
            upto = min(target, day.start + DAY)
            sent = sink.send(day, cursor, upto)
            stats.sent += sent
            if progress is not None and sent:
                progress(day, sent)
            cursor = upto
        stop.wait(tick)
    return stats


def _day_containing(simulation: Simulation, moment: int, stats: RunStats) -> DayResult:
    while True:
        started = time.perf_counter()
        day = simulation.next_day()
        stats.generation_seconds += time.perf_counter() - started
        stats.days += 1
        stats.generated += day.count
        stats.faults += len(day.faults)
        if day.start <= moment < day.start + DAY:
            return day
