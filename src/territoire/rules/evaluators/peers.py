"""Peer comparison: a sensor whose daily mean moves away from what its peers measure.

A drifting sensor stays within its own day-to-day variability for days, but a set of
stations measuring the same air (or any attribute shared by several entities) moves
together with the weather: the ratio of one station's daily mean to the median of the
others is stable, and a drift shows in it. One subject per attribute holds every
entity's daily sums; the timer closes each local day once it is over.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from territoire.rules.definitions import PeerDrift
from territoire.rules.evaluators.base import (
    PARIS,
    Context,
    Evaluator,
    Point,
    Signal,
    State,
    fmt,
    local_time,
    median,
)

MIN_BASELINE_DAYS = 3
DAYS_KEPT = 3  # open days waiting for their timer (late timers catch up)
LATENESS = 3600  # a day is closed an hour after local midnight (late readings)


class PeerDriftEvaluator(Evaluator):
    timed: ClassVar[bool] = True

    def __init__(self, definition: PeerDrift) -> None:
        super().__init__(definition)
        self.rule = definition
        self.attributes = frozenset(definition.attributes)

    def subject(self, point: Point, ctx: Context) -> str | None:
        return point.attribute if ctx.in_scope(point.entity) else None

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        days: dict[str, dict[str, list[float]]] = state.setdefault("acc", {})
        closed = state.get("last", "")
        for point in points:
            day = local_time(point.ts).date().isoformat()
            if day <= closed:
                continue
            sums = days.setdefault(day, {}).setdefault(point.entity, [0.0, 0])
            sums[0] += point.value
            sums[1] += 1
        for day in sorted(days)[:-DAYS_KEPT]:
            del days[day]
        return []

    def on_timer(self, subject: str, state: State, ctx: Context) -> list[Signal]:
        assert ctx.now is not None
        days: dict[str, dict[str, list[float]]] = state.get("acc", {})
        signals: list[Signal] = []
        for day in sorted(days):
            end = _day_end(day)
            if ctx.now < end + LATENESS:
                break
            state["last"] = day
            signals += self._judge_day(subject, state, days.pop(day), end)
        return signals

    def _judge_day(
        self, attribute: str, state: State, sums: dict[str, list[float]], at: float
    ) -> list[Signal]:
        means = {e: s / n for e, (s, n) in sums.items() if n >= self.rule.min_readings}
        signals: list[Signal] = []
        for entity, mean in sorted(means.items()):
            peers = [m for other, m in means.items() if other != entity]
            if len(peers) < self.rule.min_peers:
                continue
            level = median(peers)
            if level <= 0:
                continue
            signal = self._judge(attribute, state, entity, mean, mean / level, at)
            if signal is not None:
                signals.append(signal)
        return signals

    def _judge(
        self, attribute: str, state: State, entity: str, mean: float, ratio: float, at: float
    ) -> Signal | None:
        history: list[float] = state.setdefault("hist", {}).setdefault(entity, [])
        streak: dict[str, int] = state.setdefault("n", {})
        active: dict[str, Any] = state.setdefault("on", {})
        if len(history) >= MIN_BASELINE_DAYS:
            usual = median(history)
            departure = ratio / usual - 1 if usual > 0 else 0.0
            if abs(departure) > self.rule.tolerance:
                streak[entity] = streak.get(entity, 0) + 1
                if streak[entity] >= self.rule.days and not active.get(entity):
                    active[entity] = True
                    return Signal(True, entity, at, _message(attribute, mean, departure), mean)
                return None  # a departing day is not learnt as normal
        streak[entity] = 0
        history.append(ratio)
        del history[: -self.rule.baseline_days]
        if active.pop(entity, False):
            return Signal(False, entity, at)
        return None


def _day_end(day: str) -> float:
    following = date.fromisoformat(day) + timedelta(days=1)
    return datetime.combine(following, time(), PARIS).timestamp()


def _message(attribute: str, mean: float, departure: float) -> str:
    direction = "au-dessus" if departure > 0 else "en dessous"
    return (
        f"Dérive probable du capteur {attribute} : moyenne du jour {fmt(mean, 1)}, "
        f"{fmt(abs(departure) * 100, 0)} % {direction} de ce que ses voisins laissent attendre"
    )
