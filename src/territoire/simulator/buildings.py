"""Public buildings: occupancy schedules, heating, electricity and water.

Each building is one thermal zone: a heat loss coefficient UA sized to hold the comfort
temperature at −10 °C with two thirds of the boiler's power, a thermal capacity
C = UA × τ, and a thermostat that keeps comfort while occupied (and two hours before
opening) and a reduced setpoint otherwise. Heating stops on days whose mean outdoor
temperature is above 16 °C. Electricity is a base load plus use in proportion to occupancy; water is
drawn by the occupants.
"""

from __future__ import annotations

import numpy as np

from territoire.simulator.clock import (
    DAY,
    Floats,
    Ints,
    is_public_holiday,
    is_school_holiday,
    local_days,
    local_hours,
    weekdays,
)
from territoire.simulator.context import DayContext, Frame
from territoire.simulator.faults import FaultKind
from territoire.simulator.territory import USAGES, Territory, Usage

STEP = 900
PREHEAT_STEPS = 8
HEATING_CUTOFF_C = 16.0
BOILER_EFFICIENCY = 0.9

# (weekdays, opening hour, closing hour, share of the building's people present)
SCHEDULES: dict[str, list[tuple[tuple[int, ...], float, float, float]]] = {
    "townHall": [((0, 1, 2, 3, 4), 8.5, 17.5, 0.8), ((5,), 9.0, 12.0, 0.4)],
    "school": [((0, 1, 3, 4), 8.33, 16.67, 0.95)],
    "kindergarten": [((0, 1, 3, 4), 8.33, 16.67, 0.95)],
    "gym": [((0, 1, 2, 3, 4), 8.5, 22.0, 0.6), ((5,), 9.0, 18.0, 0.7)],
    "library": [((1, 2, 3, 4, 5), 10.0, 18.0, 0.5)],
    "nursery": [((0, 1, 2, 3, 4), 7.5, 18.5, 0.9)],
    "hall": [((4,), 18.0, 23.5, 0.8), ((5,), 14.0, 24.0, 0.9)],
    "depot": [((0, 1, 2, 3, 4), 7.0, 16.0, 0.8)],
    "pool": [((0, 1, 2, 3, 4, 5, 6), 10.0, 20.0, 0.5)],
    "culture": [((0, 1, 2, 3, 4, 5), 14.0, 21.0, 0.6)],
    "office": [((0, 1, 2, 3, 4), 8.0, 18.0, 0.8)],
}
CLOSED_ON_SCHOOL_HOLIDAYS = {"school", "kindergarten"}
OPEN_ON_PUBLIC_HOLIDAYS = {"hall", "pool"}


def occupancy(usage: str, times: Ints) -> Floats:
    """Share of the building's people present at each instant (0 = closed)."""
    days = local_days(times)
    hours, weekday = local_hours(times), weekdays(days)
    level = np.zeros(times.shape)
    for days_open, opening, closing, share in SCHEDULES[usage]:
        inside = np.isin(weekday, days_open) & (hours >= opening) & (hours < closing)
        level = np.where(inside, share, level)
    if usage in ("school", "kindergarten", "townHall", "office"):
        lunch = (hours >= 12.0) & (hours < 13.5)
        level = np.where(lunch & (level > 0), level * 0.6, level)
    if usage in CLOSED_ON_SCHOOL_HOLIDAYS:
        level = np.where(is_school_holiday(days), 0.0, level)
    if usage == "nursery":
        level = np.where(_in_august(days), 0.0, level)
    if usage not in OPEN_ON_PUBLIC_HOLIDAYS:
        level = np.where(is_public_holiday(days), 0.0, level)
    return np.asarray(level, dtype=np.float64)


def _in_august(days: Ints) -> np.ndarray:
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    return np.asarray(months == 7, dtype=np.bool_)


def unoccupied_window(usage: str, after: int) -> tuple[int, int] | None:
    """The next closing after `after` and the reopening that follows (UTC epoch seconds)."""
    first = after - after % STEP + STEP
    grid = first + STEP * np.arange(14 * DAY // STEP, dtype=np.int64)
    open_ = occupancy(usage, grid) > 0
    closings = np.flatnonzero(open_[:-1] & ~open_[1:]) + 1
    if closings.size == 0:
        return None
    close = int(closings[0])
    reopenings = np.flatnonzero(open_[close:])
    if reopenings.size == 0:
        return None
    return int(grid[close]), int(grid[close + int(reopenings[0])])


class Buildings:
    def __init__(self, territory: Territory) -> None:
        self.territory = territory
        items = territory.buildings
        self.usages: list[Usage] = [USAGES[b.extra["usage"]] for b in items]
        area = np.array([b.extra["area"] for b in items], dtype=np.float64)
        self.people = area / 100 * np.array([u.people_per_100m2 for u in self.usages])
        self.base_kw = area * np.array([u.base_w_m2 for u in self.usages]) / 1000
        self.use_kw = area * np.array([u.use_w_m2 for u in self.usages]) / 1000
        self.heat_kw = np.array([b.extra["heat_kw"] for b in items], dtype=np.float64)
        self.comfort = np.array([u.comfort_c for u in self.usages])
        self.reduced = np.where(
            [u.key == "pool" for u in self.usages], self.comfort, self.comfort - 4
        )
        # Boilers are sized with a 50 % margin over the loss at −10 °C, for the morning boost.
        self.ua = self.heat_kw / (1.5 * (self.comfort + 10))
        self.capacity = self.ua * np.array([b.extra["tau_h"] for b in items])
        self.water_rate = np.array([u.water_l_person_h for u in self.usages])
        self.inside = self.comfort - 2.0

    def lit_load_kw(self, index: int) -> float:
        """Extra electricity of a building left lit and running as if in use (fault magnitude)."""
        return round(float(self.use_kw[index]) * 0.6, 2)

    def simulate(self, ctx: DayContext) -> list[Frame]:
        rng = ctx.rng("buildings")
        grid = ctx.grid(STEP)
        ahead = ctx.start + STEP * np.arange(DAY // STEP + PREHEAT_STEPS, dtype=np.int64)
        n, steps = len(self.usages), grid.size
        by_usage = {key: occupancy(key, ahead) for key in {u.key for u in self.usages}}
        occ_ahead = np.array([by_usage[u.key] for u in self.usages]).reshape(n, -1)
        occ = occ_ahead[:, :steps]
        windows = np.lib.stride_tricks.sliding_window_view(occ_ahead > 0, PREHEAT_STEPS + 1, axis=1)
        soon = np.asarray(windows.any(axis=-1), dtype=np.bool_)[:, :steps]
        setpoint = np.where(soon, self.comfort[:, None], self.reduced[:, None])
        heated = np.zeros((n, steps), dtype=bool)
        for fault in ctx.of(FaultKind.BUILDING_HEATED_UNOCCUPIED):
            heated[fault.index] |= fault.active(grid)
            setpoint[fault.index] = np.where(
                heated[fault.index], fault.magnitude, setpoint[fault.index]
            )
        outdoor = ctx.weather.at(grid, "temperature")
        allowed = ctx.weather.mean_temperature < HEATING_CUTOFF_C
        pool = np.array([u.key == "pool" for u in self.usages])
        electricity = self.base_kw[:, None] + self.use_kw[:, None] * occ
        for fault in ctx.of(FaultKind.BUILDING_LIT_UNOCCUPIED):
            electricity[fault.index] += np.where(fault.active(grid), fault.magnitude, 0.0)
        gains = occ * self.people[:, None] * 0.1 + 0.6 * electricity
        temperature, gas = np.empty((n, steps)), np.empty((n, steps))
        inside = self.inside
        for k in range(steps):
            needed = (
                self.ua * (inside - outdoor[k])
                + self.capacity * (setpoint[:, k] - inside) / 0.25
                - gains[:, k]
            )
            power = np.clip(needed, 0.0, self.heat_kw) * (allowed | pool)
            inside = inside + 0.25 / self.capacity * (
                power + gains[:, k] - self.ua * (inside - outdoor[k])
            )
            temperature[:, k], gas[:, k] = inside, power * 0.25 / BOILER_EFFICIENCY
        self.inside = inside
        water = (
            occ
            * self.people[:, None]
            * self.water_rate[:, None]
            * 0.25
            * rng.gamma(2.0, 0.5, (n, steps))
        )
        present = np.where(occ > 0, np.clip(occ * (1 + rng.normal(0, 0.05, (n, steps))), 0, 1), 0.0)
        streams = self.territory.streams
        frames = []
        for key, values in (
            (
                "building_power",
                {"activePower": electricity * (1 + rng.normal(0, 0.03, (n, steps)))},
            ),
            ("building_gas", {"gasConsumption": gas * (1 + rng.normal(0, 0.02, (n, steps)))}),
            ("building_water", {"waterConsumption": water}),
            (
                "building_ambient",
                {"temperature": temperature + rng.normal(0, 0.1, (n, steps)), "occupancy": present},
            ),
        ):
            stream = streams[key]
            frames.append(Frame(stream, ctx.times(stream), values))
        return frames
