"""Draws the faults of each day: how many, where, when, how long, how large.

Each kind draws from its own generator keyed by (seed, size, kind, day), so changing one
kind's rate never moves another kind's faults, and the physical noise (drawn elsewhere)
does not move either. At most one fault affects a given series at a time: a draw that
would overlap a fault already placed on one of its series is dropped, which keeps each
reading explained by a single cause.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from territoire.simulator import buildings as building_model
from territoire.simulator.clock import DAY
from territoire.simulator.faults import DEFAULT_RATES, FAULT_SPECS, Fault, FaultKind
from territoire.simulator.territory import USAGES, Territory, rng_for
from territoire.simulator.water import NIGHT_USE

SeriesKey = tuple[str, int, str]

# Series whose sensors can stick or drift, with the drift scale (unit per day) of each.
STUCK_SERIES: tuple[tuple[str, str], ...] = (
    ("cabinet", "activePower"),
    ("district", "flow"),
    ("tank", "level"),
    ("container", "fillingLevel"),
    ("car_park", "occupiedSpotNumber"),
    ("building_power", "activePower"),
    ("building_gas", "gasConsumption"),
    ("building_water", "waterConsumption"),
    ("building_ambient", "temperature"),
    ("air", "no2"),
    ("air", "pm10"),
    ("air", "pm25"),
    ("air", "o3"),
    ("weather", "temperature"),
    ("weather", "relativeHumidity"),
    ("weather", "atmosphericPressure"),
    ("weather", "windSpeed"),
)
DRIFT_SCALE: dict[tuple[str, str], float] = {
    ("district", "flow"): 0.0,  # relative to the district's mean flow, see _drift_rate
    ("tank", "level"): 0.08,
    ("container", "fillingLevel"): 0.05,
    ("building_ambient", "temperature"): 0.4,
    ("air", "no2"): 2.0,
    ("air", "pm10"): 1.5,
    ("air", "pm25"): 1.0,
    ("air", "o3"): 2.5,
    ("weather", "temperature"): 0.3,
    ("weather", "relativeHumidity"): 0.015,
    ("weather", "atmosphericPressure"): 0.8,
}
SURGE_GUARD = 8 * DAY  # a surge keeps its container's series for the overflow that may follow


class Planner:
    def __init__(self, territory: Territory, rates: dict[FaultKind, float] | None = None) -> None:
        self.territory = territory
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        self.busy: dict[SeriesKey, list[tuple[int, int]]] = {}
        self.count = 0
        streams = territory.streams
        self.stuck = [(s, i, a) for s, a in STUCK_SERIES for i in range(streams[s].size)]
        self.drift = [(s, i, a) for s, a in DRIFT_SCALE for i in range(streams[s].size)]
        self.devices = [(key, i) for key, stream in streams.items() for i in range(stream.size)]
        self.lit_load: Callable[[int], float] = lambda index: 0.0

    def label(self, fault: Fault) -> Fault:
        self.count += 1
        fault.id = f"F{self.count:05d}"
        return fault

    def _free(self, keys: list[SeriesKey], start: int, end: int) -> bool:
        return not any(s < end and start < e for key in keys for s, e in self.busy.get(key, ()))

    def _take(self, fault: Fault, keys: list[SeriesKey], until: int | None = None) -> Fault | None:
        end = until or fault.end
        if not self._free(keys, fault.start, end):
            return None
        for key in keys:
            self.busy.setdefault(key, []).append((fault.start, end))
        return self.label(fault) if fault.labelled else fault

    def plan(self, day: int, start: int, mean_temperature: float) -> list[Fault]:
        placed: list[Fault] = []
        for kind in FaultKind:
            rng = rng_for(self.territory.seed, self.territory.size, "faults", kind.value, day)
            population = self._population(kind)
            rate = self.rates[kind]
            if population == 0 or rate <= 0:
                continue
            draws = self._arrivals(kind, day, population * rate / 365.0)
            for _ in range(draws):
                fault = self._draw(kind, rng, start, mean_temperature)
                if fault is not None:
                    placed.append(fault)
        return placed

    def _arrivals(self, kind: FaultKind, day: int, per_day: float) -> int:
        """Faults starting on `day`: systematic sampling of a steady rate.

        Over any run of days the count is within one of the expected number, so that an
        evaluation set has a predictable size (Poisson counts vary by ±30 % in a month).
        """
        phase = float(
            rng_for(self.territory.seed, self.territory.size, "phase", kind.value).random()
        )
        return math.floor((day + 1) * per_day + phase) - math.floor(day * per_day + phase)

    def _population(self, kind: FaultKind) -> int:
        t = self.territory
        return {
            FaultKind.LAMP_OUT: len(t.lamps),
            FaultKind.DAY_BURNER: len(t.lamps),
            FaultKind.LAMP_CYCLING: len(t.lamps),
            FaultKind.CABINET_FAILURE: len(t.cabinets),
            FaultKind.WATER_LEAK: len(t.districts),
            FaultKind.WATER_BURST: len(t.districts),
            FaultKind.CONTAINER_OVERFLOW: len(t.containers),
            FaultKind.SENSOR_SILENT: len(self.devices),
            FaultKind.SENSOR_STUCK: len(self.stuck),
            FaultKind.SENSOR_DRIFT: len(self.drift),
            FaultKind.BUILDING_HEATED_UNOCCUPIED: len(t.buildings),
            FaultKind.BUILDING_LIT_UNOCCUPIED: len(t.buildings),
            FaultKind.PARKING_STUCK_OCCUPIED: len(t.spots),
        }[kind]

    def _window(self, kind: FaultKind, rng: np.random.Generator, start: int) -> tuple[int, int]:
        low, high = FAULT_SPECS[kind].hours
        first = start + int(rng.integers(0, DAY // 60)) * 60
        return first, first + int(rng.uniform(low, high) * 60) * 60

    def _draw(
        self, kind: FaultKind, rng: np.random.Generator, start: int, mean_temperature: float
    ) -> Fault | None:
        if kind in (FaultKind.LAMP_OUT, FaultKind.DAY_BURNER, FaultKind.LAMP_CYCLING):
            return self._lamp(kind, rng, start)
        if kind is FaultKind.CABINET_FAILURE:
            return self._cabinet(rng, start)
        if kind in (FaultKind.WATER_LEAK, FaultKind.WATER_BURST):
            return self._water(kind, rng, start)
        if kind is FaultKind.CONTAINER_OVERFLOW:
            return self._surge(rng, start)
        if kind is FaultKind.SENSOR_SILENT:
            return self._silent(rng, start)
        if kind in (FaultKind.SENSOR_STUCK, FaultKind.SENSOR_DRIFT):
            return self._sensor(kind, rng, start)
        if kind is FaultKind.PARKING_STUCK_OCCUPIED:
            return self._parking(rng, start)
        if (
            kind is FaultKind.BUILDING_HEATED_UNOCCUPIED
            and mean_temperature >= building_model.HEATING_CUTOFF_C
        ):
            return None  # no heating outside the heating season, so nothing to leave on
        return self._building(kind, rng, start)

    def _lamp(self, kind: FaultKind, rng: np.random.Generator, start: int) -> Fault | None:
        index = int(rng.integers(len(self.territory.lamps)))
        first, last = self._window(kind, rng, start)
        lamp = self.territory.lamps[index]
        magnitude = {
            FaultKind.LAMP_OUT: float(rng.uniform(0.0, 0.08)),
            FaultKind.DAY_BURNER: lamp.extra["nominal_w"] * float(rng.uniform(0.9, 1.0)),
            FaultKind.LAMP_CYCLING: float(rng.uniform(0.3, 0.7)),
        }[kind]
        stream = self.territory.streams["streetlight"]
        fault = Fault(
            kind,
            "streetlight",
            index,
            ("powerConsumption",),
            first,
            last,
            magnitude,
            FAULT_SPECS[kind].magnitude_unit,
            lamp.urn,
            stream.devices[index],
            self.territory.cabinets[lamp.extra["cabinet"]].urn,
        )
        return self._take(fault, [("streetlight", index, "powerConsumption")])

    def _cabinet(self, rng: np.random.Generator, start: int) -> Fault | None:
        index = int(rng.integers(len(self.territory.cabinets)))
        first, last = self._window(FaultKind.CABINET_FAILURE, rng, start)
        cabinet = self.territory.cabinets[index]
        lamps = cabinet.extra["lamps"]
        fault = Fault(
            FaultKind.CABINET_FAILURE,
            "cabinet",
            index,
            ("activePower",),
            first,
            last,
            float(len(lamps)),
            "lamps",
            cabinet.urn,
            self.territory.streams["cabinet"].devices[index],
            cabinet.urn,
            tuple(self.territory.lamps[i].urn for i in lamps),
            {"affected_attribute": "powerConsumption"},
        )
        keys = [("cabinet", index, "activePower")] + [
            ("streetlight", i, "powerConsumption") for i in lamps
        ]
        return self._take(fault, keys)

    def _water(self, kind: FaultKind, rng: np.random.Generator, start: int) -> Fault | None:
        index = int(rng.integers(len(self.territory.districts)))
        first, last = self._window(kind, rng, start)
        district = self.territory.districts[index]
        night = district.extra["leakage"] + NIGHT_USE * district.extra["mean_flow"]
        if kind is FaultKind.WATER_LEAK:
            magnitude = night * float(rng.uniform(0.2, 0.6))
        else:
            magnitude = district.extra["mean_flow"] * float(rng.uniform(1.0, 3.0))
        fault = Fault(
            kind,
            "district",
            index,
            ("flow",),
            first,
            last,
            round(magnitude, 3),
            "m3/h",
            district.urn,
            self.territory.streams["district"].devices[index],
            None,
            (),
            {"baseline_night_flow": round(night, 3)},
        )
        return self._take(fault, [("district", index, "flow")])

    def _surge(self, rng: np.random.Generator, start: int) -> Fault | None:
        index = int(rng.integers(len(self.territory.containers)))
        first, last = self._window(FaultKind.CONTAINER_OVERFLOW, rng, start)
        container = self.territory.containers[index]
        fault = Fault(
            FaultKind.CONTAINER_OVERFLOW,
            "container",
            index,
            ("fillingLevel",),
            first,
            last,
            float(rng.uniform(5.0, 10.0)),
            "deposit multiplier",
            container.urn,
            labelled=False,
        )
        return self._take(fault, [("container", index, "fillingLevel")], last + SURGE_GUARD)

    def _silent(self, rng: np.random.Generator, start: int) -> Fault | None:
        key, index = self.devices[int(rng.integers(len(self.devices)))]
        first, last = self._window(FaultKind.SENSOR_SILENT, rng, start)
        stream = self.territory.streams[key]
        attributes = tuple(a.name for a in stream.attributes)
        fault = Fault(
            FaultKind.SENSOR_SILENT,
            key,
            index,
            attributes,
            first,
            last,
            round((last - first) / 3600, 2),
            "h",
            stream.entities[index],
            stream.devices[index],
        )
        return self._take(fault, [(key, index, a) for a in attributes])

    def _sensor(self, kind: FaultKind, rng: np.random.Generator, start: int) -> Fault | None:
        pool = self.stuck if kind is FaultKind.SENSOR_STUCK else self.drift
        key, index, attribute = pool[int(rng.integers(len(pool)))]
        first, last = self._window(kind, rng, start)
        stream = self.territory.streams[key]
        unit = stream.attribute(attribute).unit or ""
        magnitude = 0.0  # a stuck value is known when the first reading is frozen
        if kind is FaultKind.SENSOR_DRIFT:
            magnitude = self._drift_rate(rng, key, index, attribute)
            unit = f"{unit or 'unit'}/day"
        fault = Fault(
            kind,
            key,
            index,
            (attribute,),
            first,
            last,
            magnitude,
            unit,
            stream.entities[index],
            stream.devices[index],
        )
        return self._take(fault, [(key, index, attribute)])

    def _drift_rate(self, rng: np.random.Generator, key: str, index: int, attribute: str) -> float:
        scale = DRIFT_SCALE[(key, attribute)]
        if key == "district":
            scale = 0.04 * self.territory.districts[index].extra["mean_flow"]
        sign = 1.0 if rng.random() < 0.6 else -1.0
        return round(sign * scale * float(rng.uniform(0.5, 1.5)), 4)

    def _parking(self, rng: np.random.Generator, start: int) -> Fault | None:
        index = int(rng.integers(len(self.territory.spots)))
        first, last = self._window(FaultKind.PARKING_STUCK_OCCUPIED, rng, start)
        stream = self.territory.streams["spot"]
        fault = Fault(
            FaultKind.PARKING_STUCK_OCCUPIED,
            "spot",
            index,
            ("occupancy",),
            first,
            last,
            1.0,
            "state",
            stream.entities[index],
            stream.devices[index],
            self.territory.zones[self.territory.spots[index].extra["zone"]].urn,
        )
        return self._take(fault, [("spot", index, "occupancy")])

    def _building(self, kind: FaultKind, rng: np.random.Generator, start: int) -> Fault | None:
        index = int(rng.integers(len(self.territory.buildings)))
        after = start + int(rng.integers(0, DAY // 60)) * 60
        building = self.territory.buildings[index]
        usage = USAGES[building.extra["usage"]]
        window = building_model.unoccupied_window(usage.key, after)
        if window is None or usage.key == "pool":
            return None
        first, last = window
        attributes: tuple[str, ...]
        if kind is FaultKind.BUILDING_HEATED_UNOCCUPIED:
            key, attributes = "building_gas", ("gasConsumption", "temperature")
            magnitude = usage.comfort_c
            keys = [
                ("building_gas", index, "gasConsumption"),
                ("building_ambient", index, "temperature"),
            ]
        else:
            key, attributes = "building_power", ("activePower",)
            magnitude = self.lit_load(index)
            keys = [("building_power", index, "activePower")]
        fault = Fault(
            kind,
            key,
            index,
            attributes,
            first,
            last,
            magnitude,
            FAULT_SPECS[kind].magnitude_unit,
            building.urn,
            None,
            None,
            (),
            {"usage": usage.key},
        )
        return self._take(fault, keys)


def expected_counts(
    territory: Territory, days: int, rates: dict[FaultKind, float] | None = None
) -> dict[FaultKind, float]:
    """Faults drawn on average in `days` (before overlaps are dropped), for documentation."""
    planner = Planner(territory, rates)
    return {
        kind: round(planner._population(kind) * planner.rates[kind] * days / 365.0, 1)
        for kind in FaultKind
    }
