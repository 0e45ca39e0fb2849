"""Sun position from the NOAA solar calculator equations, vectorised over timestamps.

Street lights follow the sun (astronomical clocks in the control cabinets) and solar
radiation drives ozone and indoor gains, so the simulator needs the sun's elevation
at thousands of instants per day; twenty lines of NumPy avoid a dependency.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from territoire.simulator.clock import DAY, Floats, Ints, day_number

SUNRISE_ZENITH = 90.833  # refraction and the sun's radius, as in the NOAA calculator


def _orbit(julian_century: Floats) -> tuple[Floats, Floats]:
    """Declination (degrees) and equation of time (minutes)."""
    jc = julian_century
    mean_long = np.mod(280.46646 + jc * (36000.76983 + jc * 0.0003032), 360.0)
    mean_anom = 357.52911 + jc * (35999.05029 - 0.0001537 * jc)
    ecc = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    m = np.radians(mean_anom)
    centre = (
        np.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + np.sin(2 * m) * (0.019993 - 0.000101 * jc)
        + np.sin(3 * m) * 0.000289
    )
    omega = np.radians(125.04 - 1934.136 * jc)
    apparent_long = mean_long + centre - 0.00569 - 0.00478 * np.sin(omega)
    mean_obliquity = 23 + (26 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60) / 60
    obliquity = np.radians(mean_obliquity + 0.00256 * np.cos(omega))
    declination = np.degrees(np.arcsin(np.sin(obliquity) * np.sin(np.radians(apparent_long))))
    y = np.tan(obliquity / 2) ** 2
    long_r = np.radians(mean_long)
    eq_time = 4 * np.degrees(
        y * np.sin(2 * long_r)
        - 2 * ecc * np.sin(m)
        + 4 * ecc * y * np.sin(m) * np.cos(2 * long_r)
        - 0.5 * y * y * np.sin(4 * long_r)
        - 1.25 * ecc * ecc * np.sin(2 * m)
    )
    return declination, eq_time


def _julian_century(times: Ints | Floats) -> Floats:
    julian_day = np.asarray(times, dtype=np.float64) / DAY + 2440587.5
    return (julian_day - 2451545.0) / 36525.0


def elevation(times: Ints, lat: float, lon: float) -> Floats:
    """Solar elevation in degrees (no refraction correction) at each UTC epoch second."""
    declination, eq_time = _orbit(_julian_century(times))
    minutes = np.mod(np.asarray(times, dtype=np.float64), DAY) / 60.0
    true_solar = np.mod(minutes + eq_time + 4 * lon, 1440.0)
    hour_angle = np.radians(true_solar / 4 - 180.0)
    lat_r, decl_r = np.radians(lat), np.radians(declination)
    cos_zenith = np.sin(lat_r) * np.sin(decl_r) + np.cos(lat_r) * np.cos(decl_r) * np.cos(
        hour_angle
    )
    return np.asarray(
        90.0 - np.degrees(np.arccos(np.clip(cos_zenith, -1.0, 1.0))), dtype=np.float64
    )


def elevation_on_minutes(times: Ints, lat: float, lon: float) -> Floats:
    """`elevation` for arrays of whole-minute instants, computed once per distinct minute."""
    if times.size == 0:
        return np.zeros(times.shape)
    first = int(times.min())
    offsets = times - first
    if np.any(offsets % 60):
        return elevation(times.ravel(), lat, lon).reshape(times.shape)
    minutes = offsets // 60
    grid = first + 60 * np.arange(int(minutes.max()) + 1, dtype=np.int64)
    return np.asarray(elevation(grid, lat, lon)[minutes], dtype=np.float64)


def sunrise_sunset(day: date, lat: float, lon: float) -> tuple[int, int]:
    """Sunrise and sunset of a calendar day at a place, as UTC epoch seconds.

    Valid away from the polar circles (the territory is at 47° N).
    """
    noon_guess = day_number(day) * DAY + DAY // 2 - int(lon * 240)
    declination, eq_time = _orbit(_julian_century(np.array([noon_guess], dtype=np.int64)))
    lat_r, decl_r = np.radians(lat), np.radians(float(declination[0]))
    cos_ha = np.cos(np.radians(SUNRISE_ZENITH)) / (np.cos(lat_r) * np.cos(decl_r)) - np.tan(
        lat_r
    ) * np.tan(decl_r)
    half_day_minutes = 4 * float(np.degrees(np.arccos(np.clip(cos_ha, -1.0, 1.0))))
    noon_minutes = 720 - 4 * lon - float(eq_time[0])
    midnight = day_number(day) * DAY
    return (
        midnight + round((noon_minutes - half_day_minutes) * 60),
        midnight + round((noon_minutes + half_day_minutes) * 60),
    )
