"""Outdoor weather on a 15-minute grid: the common driver of buildings and air quality.

Temperature is a seasonal mean, a diurnal cycle damped by clouds and a synoptic anomaly
that persists for days (an AR(1) process drawn once per day and interpolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from territoire.simulator import sun
from territoire.simulator.clock import DAY, EPOCH_ORDINAL, Floats, Ints, local_hours
from territoire.simulator.territory import LATITUDE, LONGITUDE

STEP = 900


@dataclass
class WeatherState:
    anomaly: float = 0.0  # °C at the start of the day
    pressure: float = 0.0  # hPa from 1015
    cloud: float = 0.0  # latent value; cover = logistic(cloud + 0.3)
    wind: float = 0.0  # latent value; speed = 3 m/s × exp(wind)


@dataclass
class WeatherDay:
    grid: Ints  # 97 instants: the day's 96 quarter-hours and the next midnight
    temperature: Floats
    humidity: Floats
    wind: Floats
    pressure: Floats
    solar: Floats
    precipitation: Floats  # mm during the quarter-hour starting at grid[k] (96 values)
    cloud: float
    mean_temperature: float

    def at(self, times: Ints, name: str) -> Floats:
        """Value at arbitrary instants of the day (linear interpolation on the grid)."""
        if name == "precipitation":
            slot = np.clip((times - self.grid[0]) // STEP, 0, 95)
            return np.asarray(self.precipitation[slot], dtype=np.float64)
        series: Floats = getattr(self, name)
        flat = np.interp(times.ravel().astype(np.float64), self.grid.astype(np.float64), series)
        return flat.reshape(times.shape)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def initial_state(rng: np.random.Generator) -> WeatherState:
    return WeatherState(
        anomaly=float(rng.normal(0, 2.5)),
        pressure=float(rng.normal(0, 6)),
        cloud=float(rng.normal(0, 1)),
        wind=float(rng.normal(0, 0.35)),
    )


def simulate(
    rng: np.random.Generator, start: int, state: WeatherState
) -> tuple[WeatherDay, WeatherState]:
    grid = (start + np.arange(97, dtype=np.int64) * STEP).astype(np.int64)
    following = WeatherState(
        anomaly=0.8 * state.anomaly + float(rng.normal(0, 2.2)),
        pressure=0.85 * state.pressure + float(rng.normal(0, 4.0)),
        cloud=0.6 * state.cloud + float(rng.normal(0, 0.9)),
        wind=0.7 * state.wind + float(rng.normal(0, 0.3)),
    )
    ramp = np.linspace(0.0, 1.0, 97)
    cloud = _logistic(state.cloud + 0.3) * (1 - ramp) + _logistic(following.cloud + 0.3) * ramp
    today = date.fromordinal(start // DAY + EPOCH_ORDINAL)
    day_of_year = (grid - (start - (today.timetuple().tm_yday - 1) * DAY)) / DAY
    seasonal = 10.5 - 9.0 * np.cos(2 * np.pi * (day_of_year - 20) / 365.25)
    anomaly = state.anomaly * (1 - ramp) + following.anomaly * ramp
    hours = local_hours(grid)
    amplitude = 2.0 + 4.5 * (1 - cloud)
    wiggle = np.cumsum(rng.normal(0, 0.08, 97))
    temperature = (
        seasonal
        + anomaly
        + amplitude * np.cos(2 * np.pi * (hours - 15) / 24)
        + wiggle
        - wiggle.mean()
    )
    elevation = sun.elevation(grid, LATITUDE, LONGITUDE)
    clear = 1050.0 * np.clip(np.sin(np.radians(elevation)), 0, None) ** 1.2
    solar = clear * (1 - 0.72 * cloud**2.5)
    base_wind = 3.0 * np.exp(state.wind * (1 - ramp) + following.wind * ramp)
    wind = np.clip(
        base_wind * (1 + 0.3 * np.cos(2 * np.pi * (hours - 15) / 24)) + rng.normal(0, 0.4, 97),
        0,
        None,
    )
    pressure = 1015 + state.pressure * (1 - ramp) + following.pressure * ramp
    rainy = np.clip((cloud[:96] - 0.68) * 2.5, 0, 1)
    precipitation = np.where(rng.random(96) < rainy, rng.exponential(0.5, 96), 0.0)
    humidity = np.clip(
        0.78
        + 0.18 * (cloud - 0.5)
        - 0.025 * (temperature - temperature.mean())
        + 0.12 * (np.append(precipitation, 0) > 0),
        0.3,
        1.0,
    )
    day = WeatherDay(
        grid=grid,
        temperature=temperature,
        humidity=humidity,
        wind=wind,
        pressure=pressure,
        solar=solar,
        precipitation=precipitation,
        cloud=float(cloud.mean()),
        mean_temperature=float(temperature[:96].mean()),
    )
    return day, following
