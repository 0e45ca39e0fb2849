"""French public holidays: days when offices, schools and shops behave like a Sunday."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

WORKING, SATURDAY, REST = 0, 1, 2


def easter_sunday(year: int) -> date:
    """Gregorian computus (Meeus/Jones/Butcher)."""
    golden = year % 19
    century, rest = divmod(year, 100)
    leap_skips, _ = divmod(century, 4)
    correction = (century + 8) // 25
    moon = (19 * golden + century - leap_skips - (century - correction + 1) // 3 + 15) % 30
    weekday_shift = (32 + 2 * (century % 4) + 2 * (rest // 4) - moon - rest % 4) % 7
    extra = (golden + 11 * moon + 22 * weekday_shift) // 451
    month, day = divmod(moon + weekday_shift - 7 * extra + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=32)
def public_holidays(year: int) -> frozenset[date]:
    easter = easter_sunday(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    moving = [easter + timedelta(days=n) for n in (1, 39, 50)]
    return frozenset([date(year, m, d) for m, d in fixed] + moving)


def day_type(day: date) -> int:
    """WORKING (Monday to Friday), SATURDAY, or REST (Sunday or public holiday)."""
    if day.weekday() == 6 or day in public_holidays(day.year):
        return REST
    return SATURDAY if day.weekday() == 5 else WORKING
