"""Building kinds: consumption or heating while unoccupied, drift vs weather-normalised baseline.

"Unoccupied" follows the building's opening hours (`openingHours` in the registry) with
margins after closing and before opening (pre-heating), and, when the building has an
occupancy sensor, that sensor seeing nobody: a school on holiday is closed although its
opening hours say open, and is then simply not judged.
"""

from __future__ import annotations

from typing import ClassVar

from territoire.rules import schedule
from territoire.rules.definitions import (
    ConsumptionDrift,
    UnoccupiedConsumption,
    UnoccupiedHeating,
)
from territoire.rules.evaluators.base import (
    Context,
    Evaluator,
    Point,
    Signal,
    State,
    fmt,
    local_time,
)

BASELINE_WEIGHT = 200  # the unoccupied baseline averages about its last 200 readings
MIN_COMFORT_READINGS = 16
MIN_SETBACK_READINGS = 8
OCCUPANCY_FRESH = 3600  # an occupancy reading older than this says nothing
ENERGY_FRESH = 3600
WEATHER_SUBJECT = "~weather"
DAYS_KEPT = 40


class Schedules:
    """Parsed opening hours per building, read once per evaluator."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, str], schedule.Schedule] = {}

    def of(self, urn: str, ctx: Context) -> schedule.Schedule:
        info = ctx.entities.get(urn)
        raw = info.properties.get("openingHours") if info is not None else None
        if not raw or not isinstance(raw, str | list):
            raise ValueError(f"{urn}: no openingHours in the registry")
        key = (urn, repr(raw))
        found = self._parsed.get(key)
        if found is None:
            try:
                found = schedule.parse(raw)
            except schedule.ScheduleError as error:
                raise ValueError(f"{urn}: {error}") from error
            self._parsed[key] = found
        return found


def _week_minute(ts: float) -> int:
    moment = local_time(ts)
    return moment.weekday() * 1440 + moment.hour * 60 + moment.minute


def _nobody(state: State, ts: float, attribute: str | None) -> bool:
    """True without a sensor; else the last occupancy reading (recent) says nobody."""
    if attribute is None:
        return True
    seen = state.get("occ")
    return seen is not None and ts - seen[0] <= OCCUPANCY_FRESH and seen[1] <= 0


class UnoccupiedConsumptionEvaluator(Evaluator):
    def __init__(self, definition: UnoccupiedConsumption) -> None:
        super().__init__(definition)
        self.rule = definition
        self.attributes = frozenset(
            {definition.attribute}
            | ({definition.occupancy_attribute} if definition.occupancy_attribute else set())
        )
        self.schedules = Schedules()

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        rule = self.rule
        hours = self.schedules.of(subject, ctx)
        signals: list[Signal] = []
        for point in points:
            if point.attribute == rule.occupancy_attribute:
                state["occ"] = [point.ts, point.value]
                continue
            quiet = hours.quiet(
                _week_minute(point.ts), rule.after_closing_minutes, rule.before_opening_minutes
            ) and _nobody(state, point.ts, rule.occupancy_attribute)
            holds = self._condition(state, point.value, quiet)
            if holds and not state.get("on"):
                state["on"] = True
                message = (
                    f"Consommation hors occupation : {point.attribute} = {fmt(point.value)}, "
                    f"habituellement {fmt(state['base'])}"
                )
                signals.append(Signal(True, subject, point.ts, message, point.value))
            elif holds is False and state.get("on"):
                state["on"] = False
                signals.append(Signal(False, subject, point.ts))
        return signals

    def _condition(self, state: State, value: float, quiet: bool) -> bool | None:
        if not quiet:
            state["n"] = 0
            return False
        base, count = state.get("base", 0.0), state.get("bc", 0)
        if count >= self.rule.learn_samples:
            if value > base * (1 + self.rule.margin):
                state["n"] = state.get("n", 0) + 1
                return bool(state["n"] >= self.rule.samples)
            state["n"] = 0
        state["base"] = base + (value - base) / min(count + 1, BASELINE_WEIGHT)
        state["bc"] = count + 1
        return False if count >= self.rule.learn_samples else None


class UnoccupiedHeatingEvaluator(Evaluator):
    def __init__(self, definition: UnoccupiedHeating) -> None:
        super().__init__(definition)
        self.rule = definition
        wanted = {definition.temperature_attribute, definition.energy_attribute}
        if definition.occupancy_attribute:
            wanted.add(definition.occupancy_attribute)
        self.attributes = frozenset(wanted)
        self.schedules = Schedules()

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        rule = self.rule
        hours = self.schedules.of(subject, ctx)
        signals: list[Signal] = []
        for point in points:
            if point.attribute == rule.occupancy_attribute:
                state["occ"] = [point.ts, point.value]
            elif point.attribute == rule.energy_attribute:
                state["gas"] = [point.ts, point.value]
                if "since" in state and point.value != state.get("gfirst"):
                    state["gmoved"] = True
            else:
                holds = self._condition(state, point, hours)
                if holds and not state.get("on"):
                    state["on"] = True
                    message = (
                        f"Chauffage hors occupation : {fmt(point.value, 1)} °C maintenus "
                        f"depuis {fmt((point.ts - state['since']) / 3600, 1)} h alors que le "
                        "bâtiment est vide"
                    )
                    signals.append(Signal(True, subject, point.ts, message, point.value))
                elif holds is False and state.get("on"):
                    state["on"] = False
                    signals.append(Signal(False, subject, point.ts))
        return signals

    def _condition(self, state: State, point: Point, hours: schedule.Schedule) -> bool | None:
        rule, ts, value = self.rule, point.ts, point.value
        minute = _week_minute(ts)
        gas = state.get("gas") or [0.0, 0.0]
        heating = ts - gas[0] <= ENERGY_FRESH and gas[1] > 0
        if hours.open_at(minute) and not _nobody(state, ts, rule.occupancy_attribute):
            # Comfort is what the heating aims at, not what a crowd warms the room to; a
            # building rarely heated while in use falls back on all its opening hours.
            key = "comfort" if heating else "warm"
            state[key] = _average(state.get(key), state.get(key + "_n", 0), value, 50)
            state[key + "_n"] = state.get(key + "_n", 0) + 1
            state.pop("since", None)
            return False
        quiet = hours.quiet(minute, rule.after_closing_minutes, rule.before_opening_minutes)
        if not quiet or not _nobody(state, ts, rule.occupancy_attribute):
            return None
        if not heating:
            state.pop("since", None)
            return False
        if state.get("sc", 0) >= MIN_SETBACK_READINGS:
            limit = state["setback"] + rule.gap
        elif state.get("comfort_n", 0) >= MIN_COMFORT_READINGS:
            limit = state["comfort"] - rule.gap
        elif state.get("comfort_n", 0) + state.get("warm_n", 0) >= MIN_COMFORT_READINGS:
            limit = max(state.get("comfort", -99.0), state.get("warm", -99.0)) - rule.gap
        else:
            return None
        if value < limit:
            if not state.get("on"):
                state["setback"] = _average(state.get("setback"), state.get("sc", 0), value, 100)
                state["sc"] = state.get("sc", 0) + 1
            state.pop("since", None)
            return False
        if "since" not in state:
            state.update(since=ts, first=value, moved=False, gfirst=gas[1], gmoved=False)
        state["moved"] = state["moved"] or value != state["first"]
        # A thermometer or a meter repeating one value may be stuck: that proves nothing.
        return bool(ts - state["since"] >= rule.hours * 3600 and state["moved"] and state["gmoved"])


def _average(current: float | None, count: int, value: float, memory: int) -> float:
    if current is None or count == 0:
        return value
    return current + (value - current) / min(count + 1, memory)


class ConsumptionDriftEvaluator(Evaluator):
    """Daily energy against a degree-day line; the weather station's days share the rule."""

    timed: ClassVar[bool] = True

    def __init__(self, definition: ConsumptionDrift) -> None:
        super().__init__(definition)
        self.rule = definition
        self.attributes = frozenset({definition.attribute, definition.weather_attribute})

    def subject(self, point: Point, ctx: Context) -> str | None:
        if point.entity == self.rule.weather_entity:
            return WEATHER_SUBJECT if point.attribute == self.rule.weather_attribute else None
        if point.attribute != self.rule.attribute or not ctx.in_scope(point.entity):
            return None
        return point.entity

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        days: dict[str, list[float]] = state.setdefault("acc", {})
        for point in points:
            day = local_time(point.ts).date().isoformat()
            if day > state.get("last", ""):
                total = days.setdefault(day, [0.0, 0])
                total[0] += point.value
                total[1] += 1
        for day in sorted(days)[:-DAYS_KEPT]:
            del days[day]
        return []

    def on_timer(self, subject: str, state: State, ctx: Context) -> list[Signal]:
        assert ctx.now is not None
        if subject == WEATHER_SUBJECT:
            return []
        weather: dict[str, list[float]] = (
            ctx.extra.get("states", {}).get(WEATHER_SUBJECT, {}).get("acc", {})
        )
        today = local_time(ctx.now).date().isoformat()
        signals: list[Signal] = []
        for day in sorted(state.get("acc", {})):
            if day >= today:
                break
            energy = state["acc"].pop(day)
            state["last"] = day
            temperature = weather.get(day)
            if temperature and temperature[1]:
                outdoor = temperature[0] / temperature[1]
                signals += self._judge(subject, state, energy[0], outdoor, ctx.now)
        return signals

    def _judge(
        self, subject: str, state: State, energy: float, outdoor: float, now: float
    ) -> list[Signal]:
        degree = max(0.0, self.rule.base_temperature - outdoor)
        history: list[list[float]] = state.setdefault("hist", [])
        if len(history) < self.rule.learn_days:
            history.append([degree, energy])
            return []
        expected = _predict(history, degree)
        if expected > 0 and energy > expected * (1 + self.rule.margin):
            state["n"] = state.get("n", 0) + 1
            if state["n"] >= self.rule.days and not state.get("on"):
                state["on"] = True
                message = (
                    f"Dérive de consommation : {fmt(energy, 0)} au lieu de {fmt(expected, 0)} "
                    f"attendus pour {fmt(degree, 1)} degrés-jours"
                )
                return [Signal(True, subject, now, message, energy)]
            return []
        state["n"] = 0
        history.append([degree, energy])
        del history[: -self.rule.learn_days]
        if state.get("on"):
            state["on"] = False
            return [Signal(False, subject, now)]
        return []


def _predict(history: list[list[float]], degree: float) -> float:
    """Least-squares line energy = a + b × degree days; flat when the days barely differ."""
    n = len(history)
    mean_x = sum(x for x, _ in history) / n
    mean_y = sum(y for _, y in history) / n
    spread = sum((x - mean_x) ** 2 for x, _ in history)
    if spread < 1e-9:
        return mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in history) / spread
    return mean_y + slope * (degree - mean_x)
