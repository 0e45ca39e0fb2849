"""Local time (Europe/Paris), weekdays and French holidays as NumPy arrays of epoch seconds.

Timestamps are UTC epoch seconds everywhere in the simulator; people live by the local
clock, so every schedule (school day, rush hour, dimming) is evaluated on local time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]

PARIS = ZoneInfo("Europe/Paris")
DAY = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def utc_offset(epoch: int) -> int:
    moment = datetime.fromtimestamp(epoch, UTC).astimezone(PARIS)
    offset = moment.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def local_offsets(times: Ints) -> Ints:
    """UTC offset in seconds of each timestamp; handles a DST change inside the array."""
    if times.size == 0:
        return np.zeros_like(times)
    low, high = int(times.min()), int(times.max())
    first, last = utc_offset(low), utc_offset(high)
    if first == last:
        return np.full_like(times, first)
    # One change at most in a simulated day: find it to the hour, then to the second.
    moment = low
    while utc_offset(moment + 3600) == first:
        moment += 3600
    step = 1800
    while step >= 1:
        if utc_offset(moment + step) == first:
            moment += step
        step //= 2
    return np.where(times <= moment, first, last).astype(np.int64)


def local_seconds(times: Ints) -> Ints:
    return times + local_offsets(times)


def local_hours(times: Ints) -> Floats:
    """Hour of the local day, 0 ≤ h < 24, as a float."""
    return (local_seconds(times) % DAY) / 3600.0


def local_days(times: Ints) -> Ints:
    """Local calendar day as days since 1970-01-01."""
    return local_seconds(times) // DAY


def weekdays(days: Ints) -> Ints:
    """Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def day_number(day: date) -> int:
    return day.toordinal() - EPOCH_ORDINAL


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def public_holidays(year: int) -> frozenset[int]:
    """The eleven French public holidays of a year, as day numbers."""
    sunday = easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    days = [date(year, month, day) for month, day in fixed]
    days += [sunday + timedelta(days=offset) for offset in (1, 39, 50)]
    return frozenset(day_number(day) for day in days)


def _saturday_on_or_after(day: date) -> date:
    return day + timedelta(days=(5 - day.weekday()) % 7)


@lru_cache(maxsize=64)
def school_holidays(year: int) -> frozenset[int]:
    """An approximation of zone A school holidays touching a calendar year.

    Autumn, Christmas, winter and spring breaks of two weeks each plus the summer
    break; the exact dates move every year by ministerial order, a few days of error
    change nothing for a synthetic territory.
    """
    periods: list[tuple[date, date]] = [
        (date(year - 1, 12, 20), date(year, 1, 4)),
        (
            _saturday_on_or_after(date(year, 2, 7)),
            _saturday_on_or_after(date(year, 2, 7)) + timedelta(days=16),
        ),
        (
            _saturday_on_or_after(date(year, 4, 8)),
            _saturday_on_or_after(date(year, 4, 8)) + timedelta(days=16),
        ),
        (date(year, 7, 4), date(year, 9, 1)),
        (
            _saturday_on_or_after(date(year, 10, 17)),
            _saturday_on_or_after(date(year, 10, 17)) + timedelta(days=16),
        ),
        (date(year, 12, 20), date(year + 1, 1, 4)),
    ]
    days: set[int] = set()
    for first, last in periods:
        days.update(range(day_number(first), day_number(last)))
    return frozenset(days)


def _year(day: int) -> int:
    return date.fromordinal(day + EPOCH_ORDINAL).year


def is_public_holiday(days: Ints) -> Bools:
    unique, inverse = np.unique(days, return_inverse=True)
    flags = np.array([int(d) in public_holidays(_year(int(d))) for d in unique], dtype=bool)
    return flags[inverse].reshape(days.shape)


def is_school_holiday(days: Ints) -> Bools:
    unique, inverse = np.unique(days, return_inverse=True)
    flags = np.array([int(d) in school_holidays(_year(int(d))) for d in unique], dtype=bool)
    return flags[inverse].reshape(days.shape)


def to_datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def to_epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return int(moment.timestamp())
