"""Fault kinds, their default rates and the ground-truth record of each injected fault.

A fault is defined on the *physical* world (the lamp is dark from `start` to `end`) or
on the *sensor* (the device says nothing, repeats a value, drifts); the record says
which entity, which attribute(s) and which device, so a detector can be scored on it.
`docs/simulator.md` gives the exact definition of each kind.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from territoire.simulator.clock import Bools, Ints, to_datetime


class FaultKind(enum.StrEnum):
    LAMP_OUT = "lamp_out"
    DAY_BURNER = "day_burner"
    LAMP_CYCLING = "lamp_cycling"
    CABINET_FAILURE = "cabinet_failure"
    WATER_LEAK = "water_leak"
    WATER_BURST = "water_burst"
    CONTAINER_OVERFLOW = "container_overflow"
    SENSOR_SILENT = "sensor_silent"
    SENSOR_STUCK = "sensor_stuck"
    SENSOR_DRIFT = "sensor_drift"
    BUILDING_HEATED_UNOCCUPIED = "building_heated_unoccupied"
    BUILDING_LIT_UNOCCUPIED = "building_lit_unoccupied"
    PARKING_STUCK_OCCUPIED = "parking_stuck_occupied"


@dataclass(frozen=True)
class FaultSpec:
    rate: float  # expected new faults per eligible asset (or series, or device) per year
    hours: tuple[float, float]  # duration drawn uniformly in this range
    eligible: str  # what the rate counts, for the documentation
    magnitude_unit: str


# Rates are far above real failure rates on purpose: 30 days of the medium territory must
# hold at least ten faults of each kind for precision and recall to mean something.
FAULT_SPECS: dict[FaultKind, FaultSpec] = {
    FaultKind.LAMP_OUT: FaultSpec(0.13, (48, 240), "street light", "ratio of nominal power"),
    FaultKind.DAY_BURNER: FaultSpec(0.12, (24, 168), "street light", "W"),
    FaultKind.LAMP_CYCLING: FaultSpec(0.12, (48, 240), "street light", "ratio of samples dark"),
    FaultKind.CABINET_FAILURE: FaultSpec(8.0, (6, 36), "control cabinet", "lamps"),
    FaultKind.WATER_LEAK: FaultSpec(20.0, (48, 168), "district meter", "m3/h"),
    FaultKind.WATER_BURST: FaultSpec(26.0, (2, 8), "district meter", "m3/h"),
    FaultKind.CONTAINER_OVERFLOW: FaultSpec(
        1.0, (12, 48), "container (deposit surge)", "ratio of capacity"
    ),
    FaultKind.SENSOR_SILENT: FaultSpec(0.09, (6, 96), "device", "h"),
    FaultKind.SENSOR_STUCK: FaultSpec(0.5, (24, 168), "analogue series", "value"),
    FaultKind.SENSOR_DRIFT: FaultSpec(0.65, (120, 480), "analogue series", "unit per day"),
    FaultKind.BUILDING_HEATED_UNOCCUPIED: FaultSpec(
        10.0, (0, 0), "building (heating season)", "°C"
    ),
    FaultKind.BUILDING_LIT_UNOCCUPIED: FaultSpec(9.0, (0, 0), "building", "kW"),
    FaultKind.PARKING_STUCK_OCCUPIED: FaultSpec(0.45, (24, 168), "parking spot sensor", "state"),
}

DEFAULT_RATES: dict[FaultKind, float] = {kind: spec.rate for kind, spec in FAULT_SPECS.items()}

PHYSICAL = frozenset(
    {
        FaultKind.LAMP_OUT,
        FaultKind.DAY_BURNER,
        FaultKind.LAMP_CYCLING,
        FaultKind.CABINET_FAILURE,
        FaultKind.WATER_LEAK,
        FaultKind.WATER_BURST,
        FaultKind.CONTAINER_OVERFLOW,
        FaultKind.BUILDING_HEATED_UNOCCUPIED,
        FaultKind.BUILDING_LIT_UNOCCUPIED,
    }
)


@dataclass
class Fault:
    """One injected fault. `stream`/`index` locate the series in the generator."""

    kind: FaultKind
    stream: str
    index: int
    attributes: tuple[str, ...]
    start: int  # UTC epoch seconds, inclusive
    end: int  # exclusive
    magnitude: float
    unit: str
    entity: str
    device: str | None = None
    group: str | None = None
    affected: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    labelled: bool = True  # False for causes that are not faults themselves (a surge)
    state: dict[str, float] = field(default_factory=dict)  # run-time memory (stuck value)

    def overlaps(self, first: int, last: int) -> bool:
        return self.start < last and self.end > first

    def active(self, times: Ints) -> Bools:
        return np.asarray((times >= self.start) & (times < self.end), dtype=np.bool_)

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "entity": self.entity,
            "group": self.group,
            "device": self.device,
            "attributes": list(self.attributes),
            "start": to_datetime(self.start).isoformat().replace("+00:00", "Z"),
            "end": to_datetime(self.end).isoformat().replace("+00:00", "Z"),
            "magnitude": round(self.magnitude, 4),
            "unit": self.unit,
            "affected": list(self.affected),
            "detail": self.detail,
        }


def parse_rate_overrides(items: list[str]) -> dict[FaultKind, float]:
    """`kind=rate` pairs from the command line; unknown kinds and bad numbers are refused."""
    rates: dict[FaultKind, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            kind = FaultKind(name.strip())
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"unknown fault kind {name!r}; known kinds: {known}") from None
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"rate for {name} must be a number, not {value!r}") from None
        if not 0 <= rate <= 10_000:
            raise ValueError(f"rate for {name} must be between 0 and 10000 per asset-year")
        rates[kind] = rate
    return rates
