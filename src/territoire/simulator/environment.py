"""Air quality stations and the weather station.

NO2 follows road traffic (rush hours) and is diluted by wind; PM10 rises with wood
heating on cold evenings and falls with rain; PM2.5 is a fixed share of PM10 at each
station; ozone forms in sunshine and heat and is consumed by NO2. Concentrations in
µg/m³, hourly means as air-quality networks publish them.
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
from territoire.simulator.territory import Territory


def traffic_profile(times: Ints) -> Floats:
    hours = local_hours(times)
    days = local_days(times)
    rest = (weekdays(days) >= 5) | is_public_holiday(days)
    workday = (
        0.15
        + 0.9 * np.exp(-0.5 * ((hours - 8) / 1.2) ** 2)
        + 0.8 * np.exp(-0.5 * ((hours - 18) / 1.5) ** 2)
    )
    workday = workday + 0.4 * ((hours >= 7) & (hours < 20))
    weekend = 0.15 + 0.5 * np.exp(-0.5 * ((hours - 14) / 3.5) ** 2)
    return np.asarray(np.where(rest, weekend, workday), dtype=np.float64)


class Environment:
    def __init__(self, territory: Territory) -> None:
        self.territory = territory
        self.traffic = np.array([s.extra["traffic"] for s in territory.air_stations])
        self.pm_ratio = np.array([s.extra["pm_ratio"] for s in territory.air_stations])

    def simulate(self, ctx: DayContext) -> list[Frame]:
        return [self._air(ctx), self._weather(ctx)]

    def _air(self, ctx: DayContext) -> Frame:
        stream = self.territory.streams["air"]
        rng = ctx.rng("air")
        times = ctx.times(stream)
        shape = times.shape
        weather = ctx.weather
        wind = weather.at(times, "wind")
        temperature = weather.at(times, "temperature")
        solar = weather.at(times, "solar")
        rain = weather.at(times, "precipitation") > 0
        dilution = 1.0 / (0.55 + 0.18 * wind)
        cold = np.clip((12 - weather.mean_temperature) / 12, 0, 1.2)
        traffic = traffic_profile(times) * self.traffic[:, None]
        hours = local_hours(times)
        noise = np.exp(rng.normal(0, 0.12, (4, *shape)))
        no2 = (9 + 6 * cold + 45 * traffic) * dilution * noise[0]
        heating = np.exp(-0.5 * ((hours - 20) / 2.5) ** 2) * cold
        pm10 = (11 + 14 * heating + 8 * traffic) * dilution * np.where(rain, 0.6, 1.0) * noise[1]
        pm25 = pm10 * self.pm_ratio[:, None] * noise[2] ** 0.3
        o3 = (
            np.clip(
                22 + 0.1 * solar + 1.6 * np.clip(temperature - 10, 0, None) - 0.45 * no2, 2, None
            )
            * noise[3]
        )
        return Frame(stream, times, {"no2": no2, "pm10": pm10, "pm25": pm25, "o3": o3})

    def _weather(self, ctx: DayContext) -> Frame:
        stream = self.territory.streams["weather"]
        rng = ctx.rng("weather-station")
        times = ctx.times(stream)
        weather = ctx.weather
        values = {
            "temperature": weather.at(times, "temperature") + rng.normal(0, 0.1, times.shape),
            "relativeHumidity": np.clip(
                weather.at(times, "humidity") + rng.normal(0, 0.01, times.shape), 0, 1
            ),
            "windSpeed": np.clip(
                weather.at(times, "wind") + rng.normal(0, 0.2, times.shape), 0, None
            ),
            "atmosphericPressure": weather.at(times, "pressure") + rng.normal(0, 0.1, times.shape),
            "precipitation": weather.at(times, "precipitation"),
            "solarRadiation": weather.at(times, "solar"),
        }
        return Frame(stream, times, values)
