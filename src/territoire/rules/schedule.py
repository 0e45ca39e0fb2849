"""Opening hours in the schema.org / Smart Data Models form: "Mo-Fr 08:30-17:30; Sa 09:00-12:00".

Only what public buildings use: day ranges and lists (Mo-Fr, Mo,Tu,Th), times HH:MM
(24:00 allowed; a closing before the opening runs past midnight), rules separated by ";"
or given as a list. Anything else is refused rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
WEEK = 7 * 1440
_RULE = re.compile(
    r"^(?P<days>[A-Za-z]{2}(?:-[A-Za-z]{2})?(?:,[A-Za-z]{2}(?:-[A-Za-z]{2})?)*)\s+"
    r"(?P<open>\d{2}:\d{2})-(?P<close>\d{2}:\d{2})$"
)


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    """Open intervals in minutes of the week (Monday 00:00 = 0), possibly past WEEK."""

    intervals: tuple[tuple[int, int], ...]

    def quiet(self, week_minute: int, after_closing: int, before_opening: int) -> bool:
        """Closed, and not within the margins around an opening period."""
        for start, end in self.intervals:
            low, high = start - before_opening, end + after_closing
            for shift in (-WEEK, 0, WEEK):
                if low <= week_minute + shift < high:
                    return False
        return True

    def open_at(self, week_minute: int) -> bool:
        return not self.quiet(week_minute, 0, 0)


def _days(text: str) -> list[int]:
    chosen: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ScheduleError(f"unknown day in {part!r}; days are {', '.join(DAYS)}")
        a = DAYS.index(first)
        b = DAYS.index(last) if last else a
        chosen += [d % 7 for d in range(a, b + 1 if b >= a else b + 8)]
    return chosen


def _minutes(text: str) -> int:
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ScheduleError(f"bad time {text!r}")
    return hours * 60 + minutes


def parse(value: str | Iterable[str]) -> Schedule:
    texts = [value] if isinstance(value, str) else list(value)
    intervals: list[tuple[int, int]] = []
    for text in texts:
        for rule in (r.strip() for r in str(text).split(";")):
            if not rule:
                continue
            match = _RULE.match(rule)
            if match is None:
                raise ScheduleError(f"cannot read opening hours {rule!r}")
            opening, closing = _minutes(match["open"]), _minutes(match["close"])
            if closing <= opening:
                closing += 1440
            for day in _days(match["days"]):
                intervals.append((day * 1440 + opening, day * 1440 + closing))
    if not intervals:
        raise ScheduleError("no opening hours")
    return Schedule(tuple(sorted(intervals)))
