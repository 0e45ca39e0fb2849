"""Small runs of the simulator shared by the tests."""

from __future__ import annotations

from datetime import date

import numpy as np

from territoire.simulator.engine import DayResult, Simulation
from territoire.simulator.faults import FaultKind
from territoire.simulator.sizes import Size

# A Monday in January: school term, heating season, long nights.
WINTER = date(2026, 1, 12)
NO_FAULTS = {kind: 0.0 for kind in FaultKind}


def run(
    seed: int,
    days: int,
    *,
    size: Size = Size.SMALL,
    start: date = WINTER,
    rates: dict[FaultKind, float] | None = None,
) -> tuple[Simulation, list[DayResult]]:
    simulation = Simulation(seed, size, start, rates)
    return simulation, [simulation.next_day() for _ in range(days)]


def only(**rates: float) -> dict[FaultKind, float]:
    """Every fault rate at zero except the ones named."""
    return {**NO_FAULTS, **{FaultKind(name): value for name, value in rates.items()}}


def joined(days: list[DayResult], stream: str, attribute: str) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) of one stream's attribute over several days, side by side."""
    times = np.concatenate([d.frames[stream].times for d in days], axis=1)
    values = np.concatenate([d.frames[stream].values[attribute] for d in days], axis=1)
    return times, values


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))
