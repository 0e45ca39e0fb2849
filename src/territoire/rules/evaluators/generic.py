"""Generic kinds: threshold, silence, stuck value, rate of change, range vs own history."""

from __future__ import annotations

import math
from typing import ClassVar, cast

from territoire.rules import calendar
from territoire.rules.definitions import HistoryRange, RateOfChange, Silence, Stuck, Threshold
from territoire.rules.evaluators.base import (
    Context,
    Evaluator,
    Point,
    SeriesEvaluator,
    Signal,
    State,
    fmt,
    local_time,
)
from territoire.telemetry import service as telemetry

# After this many periods the history forgets slowly instead of averaging for ever.
HISTORY_MEMORY = 60
PRIOR_SECONDS = 3600.0  # an hour of the series' overall change rate steadies each hour's
MAX_VALUE_KEYS = 10
MAX_GAP = 2 * 3600
SLOTS = 3 * 24  # hours of working days, Saturdays, Sundays and public holidays
MISSING = object()


class ThresholdEvaluator(SeriesEvaluator):
    def __init__(self, definition: Threshold) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition
        self.clear = definition.value if definition.clear_value is None else definition.clear_value

    def condition(self, state: State, point: Point) -> bool:
        rule, value = self.rule, point.value
        above = rule.operator == "above"
        if state.get("on"):
            return not (value <= self.clear if above else value >= self.clear)
        if (value > rule.value) if above else (value < rule.value):
            state["n"] = state.get("n", 0) + 1
            since = state.setdefault("since", point.ts)
            return bool(state["n"] >= rule.repeats and point.ts - since >= rule.minutes * 60)
        state["n"] = 0
        state.pop("since", None)
        return False

    def message(self, state: State, point: Point) -> str:
        way = "au-dessus de" if self.rule.operator == "above" else "sous"
        return f"{self.attribute} = {fmt(point.value)}, {way} {fmt(self.rule.value)}"


class StuckEvaluator(SeriesEvaluator):
    """Learns how long a healthy series keeps one value: its longest repeat ("longest"),
    or how often it changes at each hour of working days, Saturdays and rest days, per
    value when it has few values ("changes": a parked car stays longer at night, and a
    shop street empties on Sundays)."""

    def __init__(self, definition: Stuck) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition
        self.ignored = frozenset(definition.ignore_values)

    def condition(self, state: State, point: Point) -> bool | None:
        ts, value = point.ts, point.value
        if "v" not in state:
            state.update(v=value, s=ts, l=ts, f=ts, m=0.0, due=0.0)
            return None
        changed = value != state["v"]
        if self.rule.model == "changes":
            self._learn_changes(state, ts, changed)
        if changed:
            # A saturated or idle value (a full container at 100 % for a weekend) says
            # nothing about how long a working sensor repeats itself: not learnt.
            if not state.get("on") and not self._ignored(state["v"]):
                _learn_repeat(state, state["l"] - state["s"])
            state.update(v=value, s=ts, due=0.0)
        state["l"] = ts
        if ts - state["f"] < self.rule.learn_hours * 3600:
            return None
        if self._ignored(state["v"]):
            return False
        if ts - state["s"] <= self.rule.min_hours * 3600:
            return False
        if self.rule.model == "changes":
            return bool(state["due"] >= self.rule.expected_changes)
        return bool(ts - state["s"] > self.rule.history_factor * state["m"])

    def _ignored(self, value: float) -> bool:
        below = self.rule.ignore_below
        return value in self.ignored or (below is not None and value < below)

    def _learn_changes(self, state: State, ts: float, changed: bool) -> None:
        """Time spent in each (value, hour) and changes seen there; `due` adds up the
        changes this run should have seen by now."""
        elapsed = ts - state["l"]
        if elapsed <= 0 or elapsed > MAX_GAP:
            return  # a silent sensor is no evidence of a stuck one (the silence rule says it)
        moment = local_time(state["l"])
        hour = calendar.day_type(moment.date()) * 24 + moment.hour
        rates: dict[str, list[list[float]]] = state.setdefault("h", {})
        key = _value_key(state["v"], rates)
        table = rates.get(key)
        if table is None:
            table = rates[key] = [[0.0] * SLOTS, [0.0] * SLOTS]
        exposure, changes = table
        total_changes, total_exposure = sum(changes), sum(exposure)
        overall = (total_changes + 1) / (total_exposure + 86_400)
        if state["l"] - state["f"] >= self.rule.learn_hours * 3600:
            rate = (changes[hour] + overall * PRIOR_SECONDS) / (exposure[hour] + PRIOR_SECONDS)
            state["due"] += rate * elapsed
        if not state.get("on"):
            exposure[hour] += elapsed
            if changed:
                changes[hour] += 1

    def message(self, state: State, point: Point) -> str:
        hours = (point.ts - state["s"]) / 3600
        return f"{self.attribute} figé à {fmt(state['v'], 3)} depuis {fmt(hours, 1)} h"


def stuck_evaluator(definition: Stuck) -> Evaluator:
    if definition.group_by is not None:
        return GroupedStuckEvaluator(definition)
    return StuckEvaluator(definition)


class GroupedStuckEvaluator(Evaluator):
    """The `changes` model with one table of change rates for a group of entities (the
    spots of a street zone): each member keeps its own run, the group learns the rates."""

    def __init__(self, definition: Stuck) -> None:
        super().__init__(definition)
        self.single = StuckEvaluator(definition)
        self.attributes = frozenset({definition.attribute})
        self.relation = definition.group_by or ""

    def subject(self, point: Point, ctx: Context) -> str | None:
        known = ctx.subjects.get((self.relation, point.entity), MISSING)
        if known is not MISSING:
            return cast(str | None, known)
        found: str | None = None
        if ctx.in_scope(point.entity):
            info = ctx.entities.get(point.entity)
            found = (info.related(self.relation) if info is not None else None) or point.entity
        ctx.subjects[(self.relation, point.entity)] = found
        return found

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        rates = state.setdefault("h", {})
        members: dict[str, State] = state.setdefault("m", {})
        signals: list[Signal] = []
        for point in points:
            member = members.setdefault(point.entity, {})
            member["h"] = rates  # shared: every member learns into the group's table
            try:
                signals += self.single.evaluate(point.entity, member, [point], ctx)
            finally:
                del member["h"]
        return signals


def _learn_repeat(state: State, seconds: float) -> None:
    """The three longest repeats seen; the reference `m` is the second longest, so that
    one stuck episode while the rule was still learning does not hide the next one."""
    longest: list[float] = state.setdefault("top", [state["m"]] if state.get("m") else [])
    longest.append(seconds)
    longest.sort()
    del longest[:-3]
    state["m"] = longest[-2] if len(longest) >= 2 else longest[-1]


def _value_key(value: float, rates: dict[str, list[list[float]]]) -> str:
    """A few whole values (states, counts) are learnt apart; anything else together."""
    key = str(int(value)) if value.is_integer() else "*"
    if key != "*" and key not in rates and len(rates) >= MAX_VALUE_KEYS:
        return "*"
    return key


class RateOfChangeEvaluator(SeriesEvaluator):
    def __init__(self, definition: RateOfChange) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition

    def condition(self, state: State, point: Point) -> bool | None:
        previous_ts, previous = state.get("pt"), state.get("pv")
        state["pt"], state["pv"] = point.ts, point.value
        if previous_ts is None or previous is None or point.ts <= previous_ts:
            return None
        rate = (point.value - previous) / (point.ts - previous_ts) * 3600
        state["r"] = rate
        limit = self.rule.max_per_hour
        direction = self.rule.direction
        steep = (direction != "fall" and rate > limit) or (direction != "rise" and rate < -limit)
        state["n"] = state.get("n", 0) + 1 if steep else 0
        return bool(state["n"] >= self.rule.repeats)

    def message(self, state: State, point: Point) -> str:
        return f"{self.attribute} varie de {fmt(state['r'])} par heure"


class HistoryRangeEvaluator(SeriesEvaluator):
    """Closes fixed windows; each window's statistic is judged against the past ones."""

    def __init__(self, definition: HistoryRange) -> None:
        super().__init__(definition, definition.attribute)
        self.rule = definition
        self.width = definition.window_hours * 3600

    def condition(self, state: State, point: Point) -> bool | None:
        window = int(point.ts // self.width)
        current = state.get("w")
        decision: bool | None = None
        if current is not None and window > current and state.get("c", 0) > 0:
            decision = self._close(state)
        if current is None or window != current:
            if current is not None and window < current:
                return None  # a late reading of a closed window: too late to count
            state.update(w=window, c=0, sum=0.0, lo=point.value, hi=point.value)
        state["c"] += 1
        state["sum"] += point.value
        state["lo"] = min(state["lo"], point.value)
        state["hi"] = max(state["hi"], point.value)
        return decision

    def _statistic(self, state: State) -> float:
        statistic = self.rule.statistic
        if statistic == "min":
            return float(state["lo"])
        if statistic == "max":
            return float(state["hi"])
        return float(state["sum"] / state["c"])

    def _close(self, state: State) -> bool | None:
        value = self._statistic(state)
        state["last"] = value
        n, mean, m2 = state.get("hn", 0), state.get("hm", 0.0), state.get("h2", 0.0)
        outside = False
        if n >= self.rule.learn_windows:
            deviation = abs(value - mean)
            spread = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
            outside = deviation > max(self.rule.sigmas * spread, self.rule.min_deviation)
        if outside:
            state["out"] = state.get("out", 0) + 1
        else:
            state["out"] = 0
            state.update(zip(("hn", "hm", "h2"), _learn(n, mean, m2, value), strict=True))
        if n < self.rule.learn_windows:
            return None
        return bool(state["out"] >= self.rule.windows)

    def message(self, state: State, point: Point) -> str:
        return (
            f"{self.attribute} : {self.rule.statistic} sur {self.rule.window_hours} h = "
            f"{fmt(state['last'])}, habituellement {fmt(state['hm'])}"
        )


def _learn(n: int, mean: float, m2: float, value: float) -> tuple[int, float, float]:
    """Welford's running mean and variance; past HISTORY_MEMORY values, an exponential
    forgetting of the same weight, so that a slow seasonal change is followed."""
    delta = value - mean
    if n < HISTORY_MEMORY:
        n += 1
        mean += delta / n
        return n, mean, m2 + delta * (value - mean)
    alpha = 1 / HISTORY_MEMORY
    variance = (1 - alpha) * (m2 / (n - 1) + alpha * delta * delta)
    return n, mean + alpha * delta, variance * (n - 1)


class SilenceEvaluator(Evaluator):
    """Timed: one state for the whole rule, listing the entities currently silent."""

    timed: ClassVar[bool] = True
    SUBJECT = "*"

    def __init__(self, definition: Silence) -> None:
        super().__init__(definition)
        self.rule = definition
        self.wanted = frozenset(definition.attributes)

    def subject(self, point: Point, ctx: Context) -> str | None:
        return None  # readings are not needed: the series' last times tell everything

    def timer_subjects(self, ctx: Context) -> list[str] | None:
        return [self.SUBJECT]

    def on_timer(self, subject: str, state: State, ctx: Context) -> list[Signal]:
        assert ctx.session is not None and ctx.now is not None
        limit = ctx.now - self.rule.minutes * 60
        quiet: dict[str, list[str]] = {}
        last_seen: dict[str, float] = {}
        for _sid, entity, attribute, _unit, ms, _value in telemetry.latest_values(
            ctx.session, ctx.tenant_id
        ):
            if ms is None or (self.wanted and attribute not in self.wanted):
                continue
            if ms / 1000 < limit and ctx.in_scope(entity):
                quiet.setdefault(entity, []).append(attribute)
                last_seen[entity] = max(last_seen.get(entity, 0.0), ms / 1000)
        before: dict[str, float] = state.get("silent", {})
        signals = [
            Signal(
                True,
                entity,
                ctx.now,
                f"Aucune donnée ({', '.join(sorted(quiet[entity]))}) depuis "
                f"{fmt((ctx.now - last_seen[entity]) / 3600, 1)} h",
            )
            for entity in sorted(quiet.keys() - before.keys())
        ]
        signals += [
            Signal(False, entity, ctx.now) for entity in sorted(before.keys() - quiet.keys())
        ]
        state["silent"] = {entity: before.get(entity, ctx.now) for entity in quiet}
        return signals
