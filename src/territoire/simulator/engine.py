"""The simulation loop: one day at a time, every domain, then the sensors' own faults.

`Simulation.next_day()` returns the readings of the next UTC day as arrays (one Frame per
device stream). The day's values depend only on (seed, size, start date, fault rates)
and on the days before it, never on how the caller consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from territoire.simulator import weather
from territoire.simulator.buildings import Buildings
from territoire.simulator.clock import DAY, day_number, to_datetime
from territoire.simulator.context import DayContext, Frame
from territoire.simulator.environment import Environment
from territoire.simulator.faults import Fault, FaultKind
from territoire.simulator.lighting import Lighting
from territoire.simulator.parking import Parking
from territoire.simulator.planner import Planner
from territoire.simulator.sizes import Size
from territoire.simulator.territory import Territory, build_territory, rng_for
from territoire.simulator.waste import Waste
from territoire.simulator.water import Water

SENSOR_KINDS = (FaultKind.SENSOR_DRIFT, FaultKind.SENSOR_STUCK, FaultKind.SENSOR_SILENT)
RANGES: dict[str, tuple[float | None, float | None]] = {
    "fillingLevel": (0.0, 1.0),
    "relativeHumidity": (0.0, 1.0),
    "flow": (0.0, None),
    "level": (0.0, None),
    "no2": (0.0, None),
    "pm10": (0.0, None),
    "pm25": (0.0, None),
    "o3": (0.0, None),
    "activePower": (0.0, None),
    "windSpeed": (0.0, None),
}


@dataclass
class DayResult:
    index: int
    start: int
    frames: dict[str, Frame]
    faults: list[Fault]  # labelled faults first placed (or detected) on this day

    @property
    def count(self) -> int:
        return sum(frame.count for frame in self.frames.values())


class Simulation:
    def __init__(
        self,
        seed: int,
        size: Size,
        start: date,
        rates: dict[FaultKind, float] | None = None,
        territory: Territory | None = None,
    ) -> None:
        self.territory = territory or build_territory(seed, size)
        self.seed, self.size = seed, size
        self.start = day_number(start) * DAY
        self.planner = Planner(self.territory, rates)
        self.weather_state = weather.initial_state(rng_for(seed, size, "weather-initial"))
        self.lighting = Lighting(self.territory)
        self.water = Water(self.territory)
        self.waste = Waste(self.territory)
        self.parking = Parking(self.territory)
        self.buildings = Buildings(self.territory)
        self.environment = Environment(self.territory)
        self.planner.lit_load = self.buildings.lit_load_kw
        self.faults: list[Fault] = []
        self.day = 0

    @property
    def start_day(self) -> date:
        return to_datetime(self.start).date()

    @property
    def now(self) -> int:
        """Start of the next day to generate (UTC epoch seconds)."""
        return self.start + self.day * DAY

    def next_day(self) -> DayResult:
        index, start = self.day, self.now
        sky, self.weather_state = weather.simulate(
            rng_for(self.seed, self.size, "weather", index), start, self.weather_state
        )
        placed = self.planner.plan(index, start, sky.mean_temperature)
        self.faults.extend(placed)
        active = [f for f in self.faults if f.overlaps(start, start + DAY)]
        ctx = DayContext(self.territory, index, start, sky, active)
        frames = self.lighting.simulate(ctx) + self.water.simulate(ctx)
        waste_frames, overflows = self.waste.simulate(ctx)
        for fault in overflows:
            self.planner.label(fault)
        self.faults.extend(overflows)
        frames += waste_frames + self.parking.simulate(ctx) + self.buildings.simulate(ctx)
        frames += self.environment.simulate(ctx)
        by_key = {frame.stream.key: frame for frame in frames}
        _round(by_key)
        _sensor_faults(by_key, [f for f in active if f.kind in SENSOR_KINDS])
        self.day += 1
        labelled = [f for f in placed if f.labelled] + overflows
        return DayResult(index, start, by_key, labelled)

    def truth(self, until: int | None = None) -> list[Fault]:
        """Labelled faults that started before `until` (default: the end of the last day)."""
        limit = self.now if until is None else until
        chosen = [f for f in self.faults if f.labelled and f.start < limit]
        return sorted(chosen, key=lambda f: (f.start, f.id))


def _round(frames: dict[str, Frame]) -> None:
    for frame in frames.values():
        for attribute in frame.stream.attributes:
            frame.values[attribute.name] = np.round(
                frame.values[attribute.name], attribute.decimals
            )


def _sensor_faults(frames: dict[str, Frame], faults: list[Fault]) -> None:
    for fault in faults:
        frame = frames[fault.stream]
        row = fault.index
        mask = fault.active(frame.times[row])
        if not mask.any():
            continue
        for name in fault.attributes:
            values = frame.values[name]
            if fault.kind is FaultKind.SENSOR_SILENT:
                values[row, mask] = np.nan
            elif fault.kind is FaultKind.SENSOR_STUCK:
                if name not in fault.state:
                    fault.state[name] = float(values[row, int(np.argmax(mask))])
                    fault.magnitude = fault.state[name]
                values[row, mask] = fault.state[name]
            else:
                elapsed = (frame.times[row, mask] - fault.start) / DAY
                low, high = RANGES.get(name, (None, None))
                drifted = np.clip(values[row, mask] + fault.magnitude * elapsed, low, high)
                values[row, mask] = np.round(drifted, frame.stream.attribute(name).decimals)
