"""Waste kinds: container full, and predicted full within a few hours."""

from __future__ import annotations

from territoire.rules.definitions import ContainerForecast, ContainerFull, EmptiedLevel
from territoire.rules.evaluators.base import Point, SeriesEvaluator, State, fmt

EMPTIED_DROP = 0.2  # a fall of this much between two readings is a collection
EMPTIED_DROP_FULL = 0.3
EMPTYING_GAP = 2 * 3600
STUCK_BEFORE = 12 * 3600
SATURATED = 0.98
MIN_TREND_POINTS = 3
MIN_TREND_SPAN = 2 * 3600


def _emptied(state: State, point: Point, drop: float) -> bool:
    """Whether this reading follows an emptying. A fall after a silence, or from a value
    the sensor had repeated for half a day (stuck; a full one may read 100 % for days),
    is not an emptying seen."""
    previous, previous_ts, since = state.get("prev"), state.get("pts"), state.get("since")
    emptied = (
        previous is not None
        and previous_ts is not None
        and since is not None
        and point.ts - previous_ts <= EMPTYING_GAP
        and (previous_ts - since < STUCK_BEFORE or previous >= SATURATED)
        and previous - point.value >= drop
    )
    if previous != point.value:
        state["since"] = point.ts
    state["prev"], state["pts"] = point.value, point.ts
    return bool(emptied)


class ContainerFullEvaluator(SeriesEvaluator):
    def __init__(self, definition: ContainerFull) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition

    def condition(self, state: State, point: Point) -> bool:
        limit = self.rule.max_after_emptying
        if _emptied(state, point, EMPTIED_DROP_FULL) and limit is not None:
            state["high"] = point.value > limit  # the sensor reads high: "full" is doubtful
        if state.get("on"):
            return point.value >= self.rule.clear_level
        if state.get("high"):
            return False
        if point.value >= self.rule.level:
            state["n"] = state.get("n", 0) + 1
            return bool(state["n"] >= self.rule.readings)
        state["n"] = 0
        return False

    def message(self, state: State, point: Point) -> str:
        return f"Conteneur plein : {fmt(point.value * 100, 0)} %"


class ContainerForecastEvaluator(SeriesEvaluator):
    """Least-squares trend of the readings since the last collection, within a window."""

    def __init__(self, definition: ContainerForecast) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition

    def condition(self, state: State, point: Point) -> bool | None:
        recent: list[list[float]] = state.setdefault("r", [])
        if recent and recent[-1][1] - point.value > EMPTIED_DROP:
            recent.clear()
        recent.append([point.ts, point.value])
        oldest = point.ts - self.rule.window_hours * 3600
        while recent and recent[0][0] < oldest:
            recent.pop(0)
        if state.get("on"):
            return point.value >= self.rule.clear_level
        if point.value < self.rule.min_level:
            return False
        if len(recent) < MIN_TREND_POINTS or recent[-1][0] - recent[0][0] < MIN_TREND_SPAN:
            return None
        slope = _slope(recent)
        if slope <= 0:
            return False
        state["eta"] = (1 - point.value) / slope
        return bool(state["eta"] <= self.rule.hours * 3600)

    def message(self, state: State, point: Point) -> str:
        return (
            f"Conteneur bientôt plein : {fmt(point.value * 100, 0)} %, plein dans environ "
            f"{fmt(max(state['eta'], 0) / 3600, 1)} h"
        )


class EmptiedLevelEvaluator(SeriesEvaluator):
    """After an emptying the reading must be near 0 %, and must not stay at 0 % for long."""

    def __init__(self, definition: EmptiedLevel) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition

    def condition(self, state: State, point: Point) -> bool | None:
        value = point.value
        if _emptied(state, point, self.rule.drop):
            state["after"], state["at"] = value, point.ts
            state["zero"] = point.ts if value <= 0 else None
            if value > self.rule.max_after:
                state["why"] = "high"
                return True
            state.pop("why", None)
            return False if state.get("on") else None
        # A container gets deposits every day: a sensor that reads 0 % for hours on end
        # reads low (its offset hides the content), whether or not an emptying was seen
        # (a low sensor's fall at emptying is smaller than the drop).
        if value > 0:
            state["zero"] = None
        elif state.get("zero") is None:
            state["zero"] = point.ts
        elif point.ts - state["zero"] > self.rule.zero_hours * 3600:
            state["why"] = "low"
            return True
        return None

    def message(self, state: State, point: Point) -> str:
        if state.get("why") == "high":
            return (
                f"Capteur de remplissage décalé : {fmt(state['after'] * 100, 0)} % juste "
                "après le vidage (il lit trop haut)"
            )
        hours = (point.ts - state["zero"]) / 3600
        return f"Capteur de remplissage décalé : 0 % depuis {fmt(hours, 0)} h après le vidage"


def _slope(points: list[list[float]]) -> float:
    """Units per second."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
