"""Drinking water: district inflow meters and the reservoir that feeds them.

Inflow = consumers' demand (a daily curve with morning and evening peaks, flatter and
later at weekends, higher on hot days) + background leakage (constant). The minimum
night flow, between 2 and 4 a.m., is leakage plus a little night use. The reservoir
level follows a mass balance: pumps fill it between two levels (hysteresis), the
districts empty it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from territoire.simulator.clock import Floats, Ints, local_days, local_hours, weekdays
from territoire.simulator.context import DayContext, Frame
from territoire.simulator.faults import FaultKind
from territoire.simulator.territory import Territory


def _bump(hours: Floats, centre: float, width: float) -> Floats:
    return np.asarray(np.exp(-0.5 * ((hours - centre) / width) ** 2), dtype=np.float64)


def _raw_curve(hours: Floats, weekend: bool) -> Floats:
    day = ((hours >= 7) & (hours < 22.5)).astype(np.float64)
    if weekend:
        return (
            0.35
            + 0.3 * day
            + 1.1 * _bump(hours, 10.0, 2.0)
            + 0.7 * _bump(hours, 13.0, 1.5)
            + 0.9 * _bump(hours, 19.5, 2.0)
        )
    return (
        0.35
        + 0.3 * day
        + 1.25 * _bump(hours, 7.5, 1.2)
        + 0.75 * _bump(hours, 12.5, 1.5)
        + 1.0 * _bump(hours, 19.5, 1.8)
    )


_FINE = np.arange(0, 24, 1 / 60)
_NORMS = {weekend: float(_raw_curve(_FINE, weekend).mean()) for weekend in (False, True)}
# Night demand (2–4 a.m.) as a share of the mean: the same on weekdays and weekends.
NIGHT_USE = float(_raw_curve(np.array([3.0]), False)[0]) / _NORMS[False]


def demand_curve(times: Ints) -> Floats:
    """Demand relative to a weekday's mean at each instant (weekends use a little more)."""
    hours = local_hours(times)
    weekend = weekdays(local_days(times)) >= 5
    weekday_curve = _raw_curve(hours, False) / _NORMS[False]
    weekend_curve = _raw_curve(hours, True) / _NORMS[False]  # same nights, fuller days
    return np.where(weekend, weekend_curve, weekday_curve)


@dataclass
class WaterState:
    level: list[float] = field(default_factory=list)
    pumping: list[bool] = field(default_factory=list)
    noise: Floats = field(default_factory=lambda: np.zeros(0))


class Water:
    def __init__(self, territory: Territory) -> None:
        self.territory = territory
        districts = territory.districts
        self.mean_flow = np.array([d.extra["mean_flow"] for d in districts])
        self.leakage = np.array([d.extra["leakage"] for d in districts])
        self.state = WaterState(
            level=[0.5 * (t.extra["low"] + t.extra["high"]) for t in territory.tanks],
            pumping=[False for _ in territory.tanks],
            noise=np.zeros(len(districts)),
        )

    def baseline_night_flow(self) -> Floats:
        """Expected 2–4 a.m. flow of each district without fault (m³/h)."""
        return np.asarray(self.leakage + NIGHT_USE * self.mean_flow, dtype=np.float64)

    def simulate(self, ctx: DayContext) -> list[Frame]:
        streams = self.territory.streams
        district_stream, tank_stream = streams["district"], streams["tank"]
        rng = ctx.rng("water")
        times = ctx.times(district_stream)
        n, steps = times.shape
        day_factor = np.asarray(
            1 + 0.015 * (ctx.weather.mean_temperature - 12) + rng.normal(0, 0.04, n),
            dtype=np.float64,
        )
        shocks = rng.normal(0, 0.03, (n, steps))
        noise = np.empty((n, steps))
        previous = self.state.noise
        for k in range(steps):  # AR(1) relative noise: demand wanders smoothly
            previous = 0.8 * previous + shocks[:, k]
            noise[:, k] = previous
        self.state.noise = previous
        # Hot days raise daytime use (gardens, showers), not the few night-time uses.
        curve = demand_curve(times)
        shaped = NIGHT_USE + (curve - NIGHT_USE) * day_factor[:, None]
        demand = self.mean_flow[:, None] * shaped * (1 + noise)
        flow = np.clip(demand, 0, None) + self.leakage[:, None]
        for fault in ctx.of(FaultKind.WATER_LEAK, FaultKind.WATER_BURST):
            flow[fault.index] += np.where(fault.active(times[fault.index]), fault.magnitude, 0.0)
        metered = flow * (1 + rng.normal(0, 0.005, flow.shape))
        tank_times = ctx.times(tank_stream)
        levels = self._tanks(flow, tank_times.shape[1])
        levels = levels + rng.normal(0, 0.004, levels.shape)
        return [
            Frame(district_stream, times, {"flow": metered}),
            Frame(tank_stream, tank_times, {"level": levels}),
        ]

    def _tanks(self, flow: Floats, steps: int) -> Floats:
        """Reservoir levels at each quarter-hour, from the districts' flows (m³/h)."""
        tanks = self.territory.tanks
        levels = np.empty((len(tanks), steps))
        for t, tank in enumerate(tanks):
            served = flow[tank.extra["districts"]].sum(axis=0)
            level, pumping = self.state.level[t], self.state.pumping[t]
            for k in range(steps):
                inflow = tank.extra["pump"] if pumping else 0.0
                level = min(
                    max(level + (inflow - served[k]) * 0.25 / tank.extra["area"], 0.0),
                    tank.extra["max"],
                )
                if level < tank.extra["low"]:
                    pumping = True
                elif level > tank.extra["high"]:
                    pumping = False
                levels[t, k] = level
            self.state.level[t], self.state.pumping[t] = level, pumping
        return levels
