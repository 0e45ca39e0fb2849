"""What every domain model receives for one simulated day, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from territoire.simulator.clock import DAY, Floats, Ints
from territoire.simulator.faults import Fault, FaultKind
from territoire.simulator.territory import Stream, Territory, rng_for
from territoire.simulator.weather import WeatherDay


@dataclass
class Frame:
    """One stream's readings for one day: `values[attr][i, k]` at `times[i, k]`.

    NaN means "no reading" (a silent device).
    """

    stream: Stream
    times: Ints
    values: dict[str, Floats]

    @property
    def count(self) -> int:
        return int(sum(np.count_nonzero(~np.isnan(v)) for v in self.values.values()))


@dataclass
class DayContext:
    territory: Territory
    index: int  # days since the start of the run
    start: int  # UTC epoch seconds of the day's first second
    weather: WeatherDay
    faults: list[Fault]  # every fault overlapping the day

    @property
    def end(self) -> int:
        return self.start + DAY

    def rng(self, domain: str) -> np.random.Generator:
        return rng_for(self.territory.seed, self.territory.size, domain, self.index)

    def times(self, stream: Stream) -> Ints:
        steps = np.arange(DAY // stream.cadence, dtype=np.int64) * stream.cadence
        return (self.start + stream.phases[:, None] + steps[None, :]).astype(np.int64)

    def grid(self, seconds: int) -> Ints:
        return (self.start + np.arange(DAY // seconds, dtype=np.int64) * seconds).astype(np.int64)

    def of(self, *kinds: FaultKind) -> list[Fault]:
        return [f for f in self.faults if f.kind in kinds]
