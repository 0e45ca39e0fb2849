"""Building kinds: consumption or heating while unoccupied, drift vs weather-normalised baseline.

"Unoccupied" follows the building's opening hours (`openingHours` in the registry) with
margins after closing and before opening (pre-heating), and, when the building has an
occupancy sensor, that sensor seeing nobody: a school on holiday is closed although its
opening hours say open, and is then simply not judged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from territoire.rules import schedule
from territoire.rules.definitions import (
    ConsumptionDrift,
    OccupiedZero,
    ThermometerDrift,
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
    median,
)

BASELINE_WEIGHT = 200  # the unoccupied baseline averages about its last 200 readings
MIN_COMFORT_READINGS = 16
MIN_SETBACK_READINGS = 8
OCCUPANCY_FRESH = 3600  # an occupancy reading older than this says nothing
ENERGY_FRESH = 3600
WEATHER_SUBJECT = "~weather"
DAYS_KEPT = 40
# The boiler regulates (neither off nor flat out) below this share of its highest draw:
# only then does the room sit at the thermostat's set-point.
REGULATING_SHARE = 0.9
# The set-back level is read from 3 h after closing (the room has cooled down to it)
# to 3 h before opening (the morning boost starts 2 h before).
QUIET_AFTER, QUIET_BEFORE = 180, 180
NOON = timedelta(hours=12)
# A thermometer drifts by tenths of a degree a day, so it is seen before it is this far
# off; a set-back this far from its usual level is the heating left on at comfort.
MAX_SETBACK_STEP = 1.5


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
            # A meter repeating its last value exactly may be frozen (at a daytime load):
            # that reading is neither evidence nor learnt. Live meters' noise rarely repeats.
            frozen = point.value == state.get("last")
            state["last"] = point.value
            if frozen:
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
        self.levels = (
            None
            if definition.suspect_tolerance is None
            else ThermometerDrift(
                temperature_attribute=definition.temperature_attribute,
                energy_attribute=definition.energy_attribute,
                occupancy_attribute=definition.occupancy_attribute,
                tolerance=definition.suspect_tolerance,
                closed_levels=False,
            )
        )

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
                _note_energy(state, point)
                if "since" in state and point.value != state.get("gfirst"):
                    state["gmoved"] = True
            else:
                self._watch_thermometer(state, point, hours)
                holds = None if state.get("suspect") else self._condition(state, point, hours)
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

    def _watch_thermometer(self, state: State, point: Point, hours: schedule.Schedule) -> None:
        """A thermometer whose regulated in-use level moved is drifting: its readings say
        nothing about the set-back until a normal day is seen again."""
        levels = self.levels
        if levels is None:
            return
        found = _day_levels(state, point, hours, levels).get("use")
        if found is not None:
            deviation = _deviation(state, "use", found, levels, levels.tolerance)
            if state.pop("adopted", False):
                # A set-back learnt while the thermometer read otherwise is forgotten.
                for key in ("setback", "sc"):
                    state.pop(key, None)
            if deviation is None:  # still learning: suspect if the level keeps moving
                fresh = state["lnew"]["use"]
                state["suspect"] = bool(fresh) and max(fresh) - min(fresh) > levels.tolerance
            else:
                state["suspect"] = abs(deviation) > levels.tolerance

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


def _note_energy(state: State, point: Point) -> None:
    state["gas"] = [point.ts, point.value]
    state["gmax"] = max(state.get("gmax", 0.0), point.value)


def _regulating(state: State, ts: float) -> bool:
    """The boiler is neither off (the room is above its set-point, or heating is off)
    nor flat out (it cannot reach it): the room is at the set-point."""
    gas: list[float] = state.get("gas") or [0.0, 0.0]
    highest: float = state.get("gmax", 0.0)
    return ts - gas[0] <= ENERGY_FRESH and 0 < gas[1] < REGULATING_SHARE * highest


def _day_levels(
    state: State, point: Point, hours: schedule.Schedule, rule: ThermometerDrift
) -> dict[str, float]:
    """Collects the day's temperatures read while the boiler regulates, in use (the comfort
    set-point) and while closed and quiet (the set-back); at the first reading of a new
    day, returns the previous day's medians of those with enough readings. A reading
    repeating the previous one is left out: a frozen thermometer adds nothing."""
    # Days run from noon to noon, so that one night's set-back is never split in two.
    day = (local_time(point.ts) - NOON).date().isoformat()
    levels: dict[str, float] = {}
    if day != state.get("lday"):
        for key, values in state.get("lvals", {}).items():
            if len(values) >= rule.min_readings:
                levels[key] = median(values)
        state["lday"], state["lvals"] = day, {}
    key = _regime(state, point.ts, hours, rule)
    if key and _regulating(state, point.ts) and point.value != state.get("tlast"):
        state["lvals"].setdefault(key, []).append(point.value)
    state["tlast"] = point.value
    return levels


def _regime(
    state: State, ts: float, hours: schedule.Schedule, rule: ThermometerDrift
) -> str | None:
    minute = _week_minute(ts)
    nobody = _nobody(state, ts, rule.occupancy_attribute)
    if hours.open_at(minute):
        return None if nobody else "use"
    if rule.closed_levels and nobody and hours.quiet(minute, QUIET_AFTER, QUIET_BEFORE):
        return "closed"
    return None


def _deviation(
    state: State, key: str, level: float, rule: ThermometerDrift, tolerance: float
) -> float | None:
    """The day's level minus the median of the last normal days (None while learning);
    only normal days are learnt, so a drift cannot drag the reference along. A level is
    adopted once `learn_days` days in a row agree within half the tolerance: at the start
    (a sensor drifting from the start is not learnt as normal), and when a new level is
    held that steadily (a set-point changed on purpose, a thermometer back to the truth)."""
    history: list[float] = state.setdefault("lhist", {}).setdefault(key, [])
    fresh: list[float] = state.setdefault("lnew", {}).setdefault(key, [])
    deviation = level - median(history) if history else None
    if deviation is not None and abs(deviation) <= tolerance:
        history.append(level)
        del history[: -rule.baseline_days]
        fresh.clear()
        return deviation
    fresh.append(level)
    del fresh[: -rule.learn_days]
    if len(fresh) == rule.learn_days and max(fresh) - min(fresh) <= tolerance / 2:
        history[:] = fresh
        fresh.clear()
        state["adopted"] = True
        return None if deviation is None else level - median(history)
    return deviation if history else None


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


class ThermometerDriftEvaluator(Evaluator):
    """The comfort set-point does not move: a thermometer whose regulated in-use level
    walks away from its usual level is drifting."""

    def __init__(self, definition: ThermometerDrift) -> None:
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
                _note_energy(state, point)
            else:
                for key, level in _day_levels(state, point, hours, rule).items():
                    signals += self._judge(subject, state, key, level, point.ts)
        return signals

    def _judge(self, subject: str, state: State, key: str, level: float, ts: float) -> list[Signal]:
        rule = self.rule
        deviation = _deviation(state, key, level, rule, rule.tolerance)
        if deviation is None or (key == "closed" and abs(deviation) > MAX_SETBACK_STEP):
            return []
        count = state.setdefault("n", {})
        if abs(deviation) > rule.tolerance:
            count[key] = count.get(key, 0) + 1
            if count[key] >= rule.days and not state.get("on"):
                state["on"] = True
                message = (
                    f"Thermomètre décalé : {fmt(level, 1)} °C "
                    f"{'pendant' if key == 'use' else 'hors'} occupation au lieu de "
                    f"{fmt(level - deviation, 1)} °C habituellement ({fmt(deviation, 1)} °C)"
                )
                return [Signal(True, subject, ts, message, level)]
            return []
        count[key] = 0
        if state.get("on") and not any(count.values()):
            state["on"] = False
            return [Signal(False, subject, ts)]
        return []


class OccupiedZeroEvaluator(Evaluator):
    """A meter at 0 while people are in the building, for longer than it ever was."""

    def __init__(self, definition: OccupiedZero) -> None:
        super().__init__(definition)
        self.rule = definition
        wanted = {definition.attribute}
        if definition.occupancy_attribute:
            wanted.add(definition.occupancy_attribute)
        self.levels: ThermometerDrift | None = None
        if definition.temperature_attribute:
            wanted.add(definition.temperature_attribute)
            # The comfort level, learnt as the drift rule does (this meter is the boiler's).
            self.levels = ThermometerDrift(
                temperature_attribute=definition.temperature_attribute,
                energy_attribute=definition.attribute,
                occupancy_attribute=definition.occupancy_attribute,
                closed_levels=False,
            )
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
                continue
            if point.attribute != rule.attribute:
                if point.attribute == rule.temperature_attribute:
                    self._learn_comfort(state, point, hours)
                continue
            if self.levels is not None:
                _note_energy(state, point)
            # Closed hours say nothing: a closed building reads 0 for days.
            if not hours.open_at(_week_minute(point.ts)) or _nobody(
                state, point.ts, rule.occupancy_attribute
            ):
                continue
            holds = self._condition(state, point)
            if holds and not state.get("on"):
                state["on"] = True
                message = (
                    f"{point.attribute} à 0 sur {state['run']} relevés consécutifs alors que "
                    "le bâtiment est occupé"
                )
                signals.append(Signal(True, subject, point.ts, message, point.value))
            elif holds is False and state.get("on"):
                state["on"] = False
                signals.append(Signal(False, subject, point.ts))
        return signals

    def _learn_comfort(self, state: State, point: Point, hours: schedule.Schedule) -> None:
        assert self.levels is not None
        state["temp"] = [point.ts, point.value]
        found = _day_levels(state, point, hours, self.levels).get("use")
        if found is not None:
            _deviation(state, "use", found, self.levels, self.levels.tolerance)

    def _counts(self, state: State, point: Point) -> bool:
        """A zero is evidence; with a thermometer, only while the room is held at comfort."""
        if point.value != 0:
            return False
        if self.levels is None:
            return True
        comfort = state.get("lhist", {}).get("use")
        temp = state.get("temp")
        if not comfort or temp is None or point.ts - temp[0] > ENERGY_FRESH:
            return False
        reading: float = temp[1]
        return abs(reading - median(comfort)) <= self.rule.band

    def _condition(self, state: State, point: Point) -> bool | None:
        rule = self.rule
        seen = state.get("seen", 0) + 1
        state["seen"] = seen
        if not self._counts(state, point):
            if not state.get("on"):
                state["longest"] = max(state.get("longest", 0), state.get("run", 0))
            state["run"] = 0
            return False if point.value != 0 or not state.get("on") else None
        state["run"] = state.get("run", 0) + 1
        if seen <= rule.learn_readings:
            return None
        limit = max(rule.readings, rule.history_factor * state.get("longest", 0))
        return bool(state["run"] > limit)
