"""Water kinds: minimum night flow (leaks), bursts, network efficiency — per district meter.

Night windows and days are local (Europe/Paris): readings are gathered by the batch path
as they come, and a timer closes each night (or day) once it is over, so the decision
does not depend on how readings were split into batches.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from territoire.rules.definitions import Burst, NetworkEfficiency, NightFlow, NightFlowDrift
from territoire.rules.evaluators.base import (
    PARIS,
    Context,
    Evaluator,
    Point,
    SeriesEvaluator,
    Signal,
    State,
    clock_minutes,
    fmt,
    local_time,
    median,
)

NIGHTS_KEPT = 4  # open nights kept waiting for their timer (late timers catch up)
MIN_NIGHT_READINGS = 3
MIN_COMMON_DISTRICTS = 3  # fewer districts than this: no network-wide correction
LOW_NIGHTS = 3  # nights at one lower level before it is the new baseline
SLOTS_PER_DAY = 96
PROFILE_WEIGHT = 5  # a slot of the usual profile is an average of about its last 5 days
REPEAT_DAYS = 3  # a weekday's slot is seen again after at most a weekend
REPEAT_DAYS_WEEKEND = 7  # a weekend slot, from one Saturday to the next
REPEAT_SLOTS = 2  # a daily peak wanders by half an hour
MEAN_WEIGHT = 2000  # the district's mean flow moves over about three weeks of readings


def _window_end(day: str, end: str) -> float:
    moment = datetime.combine(date.fromisoformat(day), time.fromisoformat(end), PARIS)
    return moment.timestamp()


class _NightWindowEvaluator(Evaluator):
    """Gathers each night's window of a district meter; the timer closes each night once
    it is over and hands its median and its highest reading to `_judge_night`."""

    timed: ClassVar[bool] = True

    def __init__(self, definition: NightFlow | NightFlowDrift) -> None:
        super().__init__(definition)
        self.window = definition
        self.attributes = frozenset({definition.attribute})
        self.start = clock_minutes(definition.window_start)
        self.end = clock_minutes(definition.window_end)

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        nights: dict[str, list[float]] = state.setdefault("acc", {})
        closed = state.get("last", "")
        for point in points:
            moment = local_time(point.ts)
            minute = moment.hour * 60 + moment.minute
            if self.start <= minute < self.end:
                night = moment.date().isoformat()
                if night > closed:
                    nights.setdefault(night, []).append(point.value)
        for night in sorted(nights)[:-NIGHTS_KEPT]:
            del nights[night]
        return []

    def on_timer(self, subject: str, state: State, ctx: Context) -> list[Signal]:
        assert ctx.now is not None
        nights: dict[str, list[float]] = state.get("acc", {})
        signals: list[Signal] = []
        lateness = self.window.lateness_minutes * 60
        common = self._common(ctx)
        for night in sorted(nights):
            end = _window_end(night, self.window.window_end)
            if ctx.now < end + lateness:
                break
            values = nights.pop(night)
            state["last"] = night
            # A night without the least variation is a frozen meter (the stuck rule's
            # business), not a flow to judge.
            if len(values) >= MIN_NIGHT_READINGS and max(values) > min(values):
                shift = common.get(night, 0.0)
                signals += self._judge_night(
                    subject, state, median(values), max(values), shift, end
                )
        return signals

    def _common(self, ctx: Context) -> dict[str, float]:
        return {}

    def _judge_night(
        self, subject: str, state: State, flow: float, peak: float, shift: float, at: float
    ) -> list[Signal]:
        raise NotImplementedError


class NightFlowEvaluator(_NightWindowEvaluator):
    """Compares each night's median with past normal nights."""

    def __init__(self, definition: NightFlow) -> None:
        super().__init__(definition)
        self.rule = definition

    def _common(self, ctx: Context) -> dict[str, float]:
        """Median departure of all districts per night, computed once per timer run
        before any night is closed (weather and holidays move every district at once)."""
        if not self.rule.common_mode:
            return {}
        cached: dict[str, float] | None = ctx.extra.get("common")
        if cached is not None:
            return cached
        departures: dict[str, list[float]] = {}
        for state in ctx.extra.get("states", {}).values():
            history = state.get("hist", [])
            if len(history) < max(2, self.rule.baseline_nights // 2):
                continue
            baseline = median(history)
            for night, values in state.get("acc", {}).items():
                if baseline > 0 and len(values) >= MIN_NIGHT_READINGS:
                    departures.setdefault(night, []).append(median(values) / baseline - 1)
        found = {
            night: median(values)
            for night, values in departures.items()
            if len(values) >= MIN_COMMON_DISTRICTS
        }
        ctx.extra["common"] = found
        return found

    def _judge_night(
        self, subject: str, state: State, flow: float, peak: float, shift: float, at: float
    ) -> list[Signal]:
        history: list[float] = state.setdefault("hist", [])
        needed = max(2, self.rule.baseline_nights // 2)
        if len(history) < needed:
            history.append(flow)
            return []
        baseline = median(history)
        excess = (flow / baseline - 1 if baseline > 0 else 0.0) - shift
        peak_excess = (peak / baseline - 1 if baseline > 0 else 0.0) - shift
        if peak_excess > self.rule.burst_ratio and not state.get("big"):
            # A burst during the window, for all of it or part of it: the highest reading,
            # not the median, since one that starts or ends in the window puts the median
            # anywhere between the two levels (the peak is never below the median). Neither
            # a leak nor a normal night. A burst lasts hours; at that level again the next
            # night, it is a leak (or a meter step).
            state["big"] = True
            return []
        state.pop("big", None)
        if excess > self.rule.margin:
            state["n"] = state.get("n", 0) + 1
            if state["n"] >= self.rule.nights:
                # Every leak night, not only the first: the repeat tells the console that
                # the leak was still there last night, raises the alarm again if it was
                # cleared by hand, and is the only sign of a new leak that starts before
                # the alarm of a repaired one has cleared (one alarm per rule and meter).
                state["on"] = True
                message = (
                    f"Fuite probable : débit minimum de nuit {fmt(flow)} m³/h, "
                    f"{fmt(excess * 100, 0)} % au-dessus de la référence ({fmt(baseline)} m³/h)"
                )
                return [Signal(True, subject, at, message, flow)]
            return []
        state["n"] = 0
        if excess < -self.rule.margin:
            self._lower(state, history, flow)
        else:
            state.pop("low", None)
            history.append(flow)
            del history[: -self.rule.baseline_nights]
        if state.get("on"):
            state["on"] = False
            return [Signal(False, subject, at)]
        return []

    def _lower(self, state: State, history: list[float], flow: float) -> None:
        """A night well below the baseline. A leak repaired, or a new normal, is a step
        down that holds: learnt once `LOW_NIGHTS` nights agree. A meter drifting down
        gives lower nights each time: they are not learnt, so that the baseline is still
        right when the meter is fixed (learnt, its step back up would hide the next leak)."""
        low: list[float] = state.setdefault("low", [])
        low.append(flow)
        del low[:-LOW_NIGHTS]
        if len(low) < LOW_NIGHTS:
            return
        level = median(low)
        if level <= 0 or low[0] <= 0 or abs(low[-1] / low[0] - 1) >= self.rule.margin / 3:
            return  # still going down (or up): not a level yet
        if all(abs(value / level - 1) <= self.rule.margin / 2 for value in low):
            history[:] = low
            state.pop("low")


class NightFlowDriftEvaluator(_NightWindowEvaluator):
    """A meter drifting: its night medians of the last nights lie on a slope (a leak or
    a repair is a step, a burst one night apart, normal nights scatter around a level)."""

    def __init__(self, definition: NightFlowDrift) -> None:
        super().__init__(definition)
        self.rule = definition

    def _judge_night(
        self, subject: str, state: State, flow: float, peak: float, shift: float, at: float
    ) -> list[Signal]:
        recent: list[float] = state.setdefault("nights", [])
        recent.append(flow)
        del recent[: -self.rule.nights]
        if len(recent) < self.rule.nights:
            return []
        slope, scatter = night_trend(recent)
        drifting = abs(slope) >= self.rule.min_slope and scatter <= self.rule.max_scatter
        if drifting and not state.get("on"):
            state["on"] = True
            way = "hausse" if slope > 0 else "baisse"
            message = (
                f"Compteur qui dérive : débit de nuit en {way} régulière de "
                f"{fmt(abs(slope) * 100, 1)} % par nuit depuis {len(recent)} nuits "
                f"({fmt(recent[0])} → {fmt(recent[-1])} m³/h)"
            )
            return [Signal(True, subject, at, message, flow)]
        if not drifting and state.get("on"):
            state["on"] = False
            return [Signal(False, subject, at)]
        return []


def night_trend(values: list[float]) -> tuple[float, float]:
    """Least-squares slope of the values per step and the scatter (standard error) of
    the values around that line, both relative to the highest value: a drift adds the same
    flow every night, so a meter drifting down keeps its slope as it nears zero."""
    count = len(values)
    top = max(values)
    if top <= 0 or count < 3:
        return 0.0, float("inf")
    mean = sum(values) / count
    relative = [(value - mean) / top for value in values]
    middle = (count - 1) / 2
    spread = sum((x - middle) ** 2 for x in range(count))
    slope = sum((x - middle) * y for x, y in enumerate(relative)) / spread
    residuals = [y - slope * (x - middle) for x, y in enumerate(relative)]
    return slope, math.sqrt(sum(r * r for r in residuals) / (count - 2))


class BurstEvaluator(SeriesEvaluator):
    """Flow against the district's usual profile by quarter hour (working days, weekends)."""

    def __init__(self, definition: Burst) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition

    def condition(self, state: State, point: Point) -> bool | None:
        moment = local_time(point.ts)
        slot = (moment.hour * 60 + moment.minute) // 15
        if moment.weekday() >= 5:
            slot += SLOTS_PER_DAY
        profile: list[list[float]] = state.setdefault("p", [[0.0, 0] for _ in range(192)])
        first = state.setdefault("f", point.ts)
        mean, count = state.get("m", 0.0), state.get("c", 0)
        expected, seen = profile[slot]
        learned = point.ts - first >= self.rule.learn_days * 86_400 and seen > 0 and mean > 0
        frozen = point.value == state.get("v")  # a meter repeating itself shows no burst
        state["v"] = point.value
        if learned:
            excess = point.value - expected
            state["x"] = excess
            limit = self.rule.jump_ratio * mean
            if excess > limit / 2 and self._held_too_long(state, point.ts):
                # A burst is repaired within hours; an excess held this long is a new level
                # (a meter back from a drift, a new consumer): slots start again from it.
                state["n"] = 0
                profile[slot] = [point.value, 1]
                return False
            repeated = excess > limit and self._seen_lately(state, slot, point)
            if repeated and not state.get("on"):
                pass  # this quarter hour's usual flow has changed: learnt below
            elif excess > limit or (state.get("on") and excess > limit / 2):
                state.setdefault("since", point.ts)
                if not frozen:
                    state["n"] = state.get("n", 0) + 1
                return bool(state.get("on") or state["n"] >= self.rule.readings)
            state["n"] = 0
            state.pop("since", None)
            state.pop("relearn", None)
        weight = min(seen + 1, PROFILE_WEIGHT)
        profile[slot] = [expected + (point.value - expected) / weight, seen + 1]
        state["m"] = mean + (point.value - mean) / min(count + 1, MEAN_WEIGHT)
        state["c"] = count + 1
        return False if learned else None

    def _seen_lately(self, state: State, slot: int, point: Point) -> bool:
        """Whether this time of day (give or take `REPEAT_SLOTS` quarter hours, as peaks
        wander) was already above its profile on one of the last days of its kind. A
        burst happens once; the same excess at the same time of day again (a new morning
        peak, a meter that drifted) is the usual flow changing, which the profile must
        learn rather than raise every day."""
        day = int(point.ts // 86_400)
        last: dict[str, int] = state.setdefault("b", {})
        block = slot - slot % SLOTS_PER_DAY  # working days and weekends apart
        window = REPEAT_DAYS_WEEKEND if block else REPEAT_DAYS
        near = range(
            max(block, slot - REPEAT_SLOTS), min(block + SLOTS_PER_DAY, slot + REPEAT_SLOTS + 1)
        )
        repeated = any(0 < day - last.get(str(other), day) <= window for other in near)
        last[str(slot)] = day
        return repeated

    def _held_too_long(self, state: State, ts: float) -> bool:
        """Whether the excess has lasted `relearn_hours`; once it has, the profile keeps
        re-learning until the flow is back within half the threshold."""
        if state.get("relearn"):
            return True
        since = state.get("since")
        if since is not None and ts - since >= self.rule.relearn_hours * 3600:
            state["relearn"] = True
        return bool(state.get("relearn"))

    def message(self, state: State, point: Point) -> str:
        return (
            f"Casse probable : débit {fmt(point.value)} m³/h, {fmt(state['x'])} m³/h au-dessus "
            "du profil habituel"
        )


class NetworkEfficiencyEvaluator(Evaluator):
    """Daily volume and night flow per district; the timer closes days and judges."""

    timed: ClassVar[bool] = True

    def __init__(self, definition: NetworkEfficiency) -> None:
        super().__init__(definition)
        self.rule = definition
        self.attributes = frozenset({definition.attribute})
        self.start = clock_minutes(definition.window_start)
        self.end = clock_minutes(definition.window_end)

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        days: dict[str, dict[str, Any]] = state.setdefault("acc", {})
        for point in points:
            moment = local_time(point.ts)
            day = moment.date().isoformat()
            if day <= state.get("last", ""):
                continue
            slot = days.setdefault(day, {"s": 0.0, "c": 0, "night": []})
            slot["s"] += point.value
            slot["c"] += 1
            minute = moment.hour * 60 + moment.minute
            if self.start <= minute < self.end:
                slot["night"].append(point.value)
        for day in sorted(days)[:-NIGHTS_KEPT]:
            del days[day]
        return []

    def on_timer(self, subject: str, state: State, ctx: Context) -> list[Signal]:
        assert ctx.now is not None
        days: dict[str, dict[str, Any]] = state.get("acc", {})
        closed: list[list[float]] = state.setdefault("days", [])
        judged_at: float | None = None
        for day in sorted(days):
            end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), PARIS)
            if ctx.now < end.timestamp() + 3600:
                break
            slot = days.pop(day)
            state["last"] = day
            if slot["c"] and len(slot["night"]) >= MIN_NIGHT_READINGS:
                closed.append([slot["s"] / slot["c"], median(slot["night"])])
                judged_at = end.timestamp()
        del closed[: -self.rule.days]
        if judged_at is None or len(closed) < self.rule.days:
            return []
        info = ctx.entities.get(subject)
        connections = (info.number("connections") if info is not None else None) or 0.0
        pairs = [(mean, night) for mean, night in closed]
        efficiency = efficiency_of(pairs, connections, self.rule.night_use_lph)
        state["eff"] = efficiency
        if efficiency < self.rule.target and not state.get("on"):
            state["on"] = True
            message = (
                f"Rendement de réseau {fmt(efficiency * 100, 1)} % sur {self.rule.days} jours, "
                f"sous l'objectif de {fmt(self.rule.target * 100, 0)} %"
            )
            return [Signal(True, subject, judged_at, message, efficiency)]
        if efficiency >= self.rule.target and state.get("on"):
            state["on"] = False
            return [Signal(False, subject, judged_at)]
        return []


def efficiency_of(
    daily: list[tuple[float, float]], connections: float, night_use_lph: float
) -> float:
    """Network efficiency from (mean flow, minimum night flow) per day, both in m³/h."""
    allowance = connections * night_use_lph / 1000
    volume = sum(mean for mean, _night in daily)
    losses = sum(max(0.0, night - allowance) for _mean, night in daily)
    return 1 - losses / volume if volume > 0 else 1.0
