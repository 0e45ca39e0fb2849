"""Parking: on-street spots with a presence sensor each, and car parks with counters.

A spot is a two-state chain: an occupied spot frees with a probability set by the mean
stay; a free spot fills so that the long-run occupancy matches the hour's target (busy
centre by day, busy residential streets by night). A car park counts cars in and out:
departures after an exponential stay, arrivals turned away when it is full, so its
count always stays within [0, capacity].
"""

from __future__ import annotations

import numpy as np

from territoire.simulator.clock import (
    Floats,
    Ints,
    is_public_holiday,
    local_days,
    local_hours,
    weekdays,
)
from territoire.simulator.context import DayContext, Frame
from territoire.simulator.faults import FaultKind
from territoire.simulator.territory import Territory

CAR_PARK_STAYS = {"commercial": 0.75, "station": 9.0, "centre": 2.0}  # hours


def _bump(hours: Floats, start: float, end: float) -> Floats:
    """Smooth 0→1→0 plateau between two hours (half-hour ramps)."""
    rise = np.clip((hours - start) / 0.5 + 0.5, 0, 1)
    fall = np.clip((end - hours) / 0.5 + 0.5, 0, 1)
    return np.asarray(np.minimum(rise, fall), dtype=np.float64)


def spot_target(
    hours: Floats, weekday: Ints, holiday: np.ndarray, commercial: np.ndarray
) -> Floats:
    sunday = (weekday == 6) | holiday
    saturday = weekday == 5
    shops = 0.2 + 0.65 * _bump(hours, 8.5, 19.0) - 0.12 * _bump(hours, 12.2, 13.8)
    shops = np.where(saturday, 0.2 + 0.75 * _bump(hours, 8.0, 18.5), shops)
    shops = np.where(sunday, 0.15 + 0.25 * _bump(hours, 10.0, 13.0), shops)
    homes = 0.85 - 0.4 * _bump(hours, 8.0, 17.5)
    homes = np.where(saturday | sunday, 0.8 - 0.15 * _bump(hours, 10.0, 18.0), homes)
    return np.asarray(np.where(commercial, shops, homes), dtype=np.float64)


def spot_stay(hours: Floats, commercial: np.ndarray) -> Floats:
    night = (hours < 7) | (hours >= 20)
    return np.asarray(
        np.where(commercial, np.where(night, 6.0, 1.5), np.where(night, 10.0, 4.0)),
        dtype=np.float64,
    )


def car_park_target(kind: str, hours: Floats, weekday: Ints, holiday: np.ndarray) -> Floats:
    closed = (weekday == 6) | holiday
    if kind == "commercial":
        level = np.where(weekday == 5, 0.9, 0.65) * _bump(hours, 8.5, 20.0)
    elif kind == "station":
        level = np.where(weekday >= 5, 0.15, 0.9 * _bump(hours, 6.5, 19.0))
    else:
        level = 0.15 + 0.65 * _bump(hours, 8.0, 19.5)
    return np.asarray(np.where(closed & (kind != "centre"), 0.03, level), dtype=np.float64)


class Parking:
    def __init__(self, territory: Territory) -> None:
        self.territory = territory
        self.commercial = np.array([s.extra["commercial"] for s in territory.spots], dtype=bool)
        self.occupied = np.zeros(len(territory.spots), dtype=bool)
        self.counts = np.zeros(len(territory.car_parks), dtype=np.int64)
        self.started = False

    def simulate(self, ctx: DayContext) -> list[Frame]:
        return [self._spots(ctx), self._car_parks(ctx)]

    def _spots(self, ctx: DayContext) -> Frame:
        stream = self.territory.streams["spot"]
        rng = ctx.rng("parking")
        times = ctx.times(stream)
        n, steps = times.shape
        days = local_days(times)
        hours = local_hours(times)
        target = np.clip(
            spot_target(hours, weekdays(days), is_public_holiday(days), self.commercial[:, None]),
            0.02,
            0.97,
        )
        leave = 1 - np.exp(-(stream.cadence / 3600) / spot_stay(hours, self.commercial[:, None]))
        arrive = np.clip(leave * target / (1 - target), 0, 1)
        draws = rng.random((n, steps))
        if not self.started:
            self.occupied = rng.random(n) < target[:, 0]
            self.started = True
        states = np.empty((n, steps))
        for k in range(steps):
            self.occupied = np.where(
                self.occupied, draws[:, k] >= leave[:, k], draws[:, k] < arrive[:, k]
            )
            states[:, k] = self.occupied
        for fault in ctx.of(FaultKind.PARKING_STUCK_OCCUPIED):
            states[fault.index, fault.active(times[fault.index])] = 1.0
        return Frame(stream, times, {"occupancy": states})

    def _car_parks(self, ctx: DayContext) -> Frame:
        stream = self.territory.streams["car_park"]
        rng = ctx.rng("car_parks")
        times = ctx.times(stream)
        n, steps = times.shape
        days = local_days(times)
        hours, weekday, holiday = local_hours(times), weekdays(days), is_public_holiday(days)
        counts = np.empty((n, steps))
        dt = stream.cadence / 3600
        for i, car_park in enumerate(self.territory.car_parks):
            capacity = int(car_park.extra["capacity"])
            stay = CAR_PARK_STAYS[car_park.extra["kind"]]
            target = car_park_target(car_park.extra["kind"], hours[i], weekday[i], holiday[i])
            count = int(self.counts[i])
            for k in range(steps):
                leaving = int(rng.binomial(count, 1 - np.exp(-dt / stay)))
                arriving = int(rng.poisson(capacity * target[k] / stay * dt))
                count = min(capacity, count - leaving + arriving)
                counts[i, k] = count
            self.counts[i] = count
        return Frame(stream, times, {"occupiedSpotNumber": counts})
