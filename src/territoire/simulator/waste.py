"""Waste containers: fill levels that grow with deposits and drop only when the truck passes.

Deposits follow the day (mornings and evenings, more at weekends) with random sizes.
The truck of a round leaves at a fixed local hour on its weekdays and empties its
containers in order, a few minutes apart. The true content may exceed the capacity
(bags left beside the container): that is an overflow, labelled whenever it happens,
whether a deposit surge caused it or not. The ultrasonic sensor reads at most 100 %.
"""

from __future__ import annotations

import numpy as np

from territoire.simulator.clock import (
    DAY,
    Floats,
    Ints,
    local_days,
    local_hours,
    utc_offset,
    weekdays,
)
from territoire.simulator.context import DayContext, Frame
from territoire.simulator.faults import Fault, FaultKind
from territoire.simulator.territory import Round, Territory


def _deposit_curve(hours: Floats) -> Floats:
    curve = (
        0.25
        + np.exp(-0.5 * ((hours - 8) / 1.5) ** 2)
        + 0.6 * np.exp(-0.5 * ((hours - 13) / 1.5) ** 2)
    )
    curve = curve + 1.1 * np.exp(-0.5 * ((hours - 19) / 2.0) ** 2)
    return np.asarray(curve / 0.8417, dtype=np.float64)  # mean 1 over a day


def pass_times(round_: Round, stop: int, first: int, last: int) -> list[int]:
    """Instants (UTC epoch seconds) in [first, last) at which the round empties its stop."""
    found: list[int] = []
    for local_day in range((first - 14 * 3600) // DAY, (last + 14 * 3600) // DAY + 1):
        if (local_day + 3) % 7 not in round_.weekdays:
            continue
        local_seconds = local_day * DAY + round(
            round_.start_hour * 3600 + stop * round_.minutes_per_stop * 60
        )
        instant = local_seconds - utc_offset(local_seconds - 3600)
        if first <= instant < last:
            found.append(instant)
    return found


def next_pass(round_: Round, stop: int, after: int) -> int:
    """First emptying strictly after `after` (rounds pass at least weekly)."""
    found = pass_times(round_, stop, after + 1, after + 15 * DAY)
    return found[0]


class Waste:
    def __init__(self, territory: Territory) -> None:
        self.territory = territory
        containers = territory.containers
        self.fill_per_day = np.array([c.extra["fill_per_day"] for c in containers])
        # Start between two rounds: a third of the way to a typical pre-collection level.
        self.level = np.array([0.3 * c.extra["fill_per_day"] * 3 for c in containers])
        self.overflowing: dict[int, Fault] = {}  # container → its open overflow
        self.surged = np.zeros(len(containers), dtype=bool)

    def simulate(self, ctx: DayContext) -> tuple[list[Frame], list[Fault]]:
        stream = self.territory.streams["container"]
        rng = ctx.rng("waste")
        times = ctx.times(stream)
        n, steps = times.shape
        weekend = weekdays(local_days(times)) >= 5
        rate = (
            self.fill_per_day[:, None]
            / 24
            * _deposit_curve(local_hours(times))
            * np.where(weekend, 1.2, 1.0)
        )
        surge = np.ones((n, steps))
        for fault in ctx.of(FaultKind.CONTAINER_OVERFLOW):
            if not fault.labelled:  # the surge behind an overflow
                surge[fault.index] = np.where(
                    fault.active(times[fault.index]), fault.magnitude, surge[fault.index]
                )
        deposits = rate * surge * rng.gamma(2.0, 0.5, (n, steps))
        passes = self._passes(times)
        residue = rng.uniform(0.0, 0.03, (n, steps))
        truth: list[Fault] = []
        reported = np.empty((n, steps))
        for k in range(steps):
            previous = times[:, k] - stream.cadence
            self.level += deposits[:, k]
            for index, instant in passes.get(k, []):
                if previous[index] < instant <= times[index, k]:
                    self._empty(
                        index, instant, residue[index, k], deposits[index, k], times[index, k]
                    )
            self.surged |= surge[:, k] > 1
            for full in np.flatnonzero(self.level >= 1.0).tolist():
                if full not in self.overflowing:
                    truth.append(self._overflow(full, int(times[full, k])))
            reported[:, k] = self.level
        measured = np.clip(reported + rng.normal(0, 0.01, reported.shape), 0.0, 1.0)
        return [Frame(stream, times, {"fillingLevel": measured})], truth

    def _passes(self, times: Ints) -> dict[int, list[tuple[int, int]]]:
        """Emptyings of the day, by reading step: {k: [(container, instant)]}."""
        first, last = int(times.min()) - 3600, int(times.max()) + 1
        found: dict[int, list[tuple[int, int]]] = {}
        for round_ in self.territory.rounds:
            for stop, index in enumerate(round_.containers):
                for instant in pass_times(round_, stop, first, last):
                    k = int(np.searchsorted(times[index], instant))
                    if k < times.shape[1]:
                        found.setdefault(k, []).append((index, instant))
        return found

    def _empty(
        self, index: int, instant: int, residue: float, deposit: float, reading: int
    ) -> None:
        fault = self.overflowing.pop(index, None)
        if fault is not None:
            fault.magnitude = float(self.level[index])
        after = (reading - instant) / self.territory.streams["container"].cadence
        self.level[index] = residue + deposit * after
        self.surged[index] = False

    def _overflow(self, index: int, instant: int) -> Fault:
        container = self.territory.containers[index]
        round_ = self.territory.rounds[container.extra["round"]]
        fault = Fault(
            kind=FaultKind.CONTAINER_OVERFLOW,
            stream="container",
            index=index,
            attributes=("fillingLevel",),
            start=instant,
            end=next_pass(round_, container.extra["stop"], instant),
            magnitude=float(self.level[index]),
            unit="ratio of capacity",
            entity=container.urn,
            device=self.territory.streams["container"].devices[index],
            detail={"cause": "surge" if self.surged[index] else "natural", "round": round_.key},
        )
        self.overflowing[index] = fault
        return fault
