"""What every evaluator works with: points in, signals out, state kept as plain JSON.

An evaluator is built from one rule definition. The engine routes each reading to a
*subject* (a series' entity, or a group such as a lighting cabinet), loads that
subject's state, and calls `evaluate` with the subject's readings in time order. The
evaluator updates the state in place and returns signals: raise or clear the alarm of an
entity. Evaluators never touch the database; timed evaluators may read telemetry through
`Context.session`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from territoire.rules.definitions import Definition

PARIS = ZoneInfo("Europe/Paris")
State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Point:
    """One stored reading: epoch seconds (UTC), value, and the series it belongs to."""

    ts: float
    value: float
    entity: str
    attribute: str


@dataclass(frozen=True, slots=True)
class Signal:
    """Raise (or clear) the alarm of `entity` under this rule, as of `at` (epoch seconds)."""

    raise_alarm: bool
    entity: str
    at: float
    message: str = ""
    value: float | None = None
    group: str | None = None


@dataclass(frozen=True)
class EntityInfo:
    urn: str
    type: str
    commune_id: int | None
    properties: dict[str, Any]
    relationships: dict[str, Any]

    def related(self, name: str) -> str | None:
        """The first target of a relationship (a URN), if any."""
        target = self.relationships.get(name)
        if isinstance(target, list):
            target = target[0] if target else None
        return target if isinstance(target, str) else None

    def number(self, name: str) -> float | None:
        value = self.properties.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)


class Entities:
    """What evaluators may ask about the registry (the engine gives a cached view)."""

    def get(self, urn: str) -> EntityInfo | None:
        raise NotImplementedError

    def members(self, group: str, member_type: str, relation: str) -> list[str]:
        """Entities of `member_type` whose `relation` points at `group`."""
        raise NotImplementedError


def entity_type(urn: str) -> str:
    parts = urn.split(":", 3)
    return parts[2] if len(parts) > 3 else ""


@dataclass
class Scope:
    """Which entities a rule looks at: listed ones, or types (optionally in one commune),
    less the excluded ones."""

    types: frozenset[str]
    entities: frozenset[str]
    commune_id: int | None = None
    excluded: frozenset[str] = frozenset()

    def covers(self, urn: str, entities: Entities) -> bool:
        if urn in self.excluded:
            return False
        if self.entities:
            return urn in self.entities
        if self.types and entity_type(urn) not in self.types:
            return False
        if self.commune_id is not None:
            info = entities.get(urn)
            return info is not None and info.commune_id == self.commune_id
        return True


@dataclass
class Context:
    tenant_id: int
    entities: Entities
    scope: Scope
    session: Session | None = None
    now: float | None = None  # timers only: the evaluation time (epoch seconds)
    extra: dict[str, Any] = field(default_factory=dict)
    _covered: dict[str, bool] = field(default_factory=dict, repr=False)
    # Evaluators may remember here which subject an entity's readings go to (one batch).
    subjects: dict[Any, Any] = field(default_factory=dict, repr=False)

    def in_scope(self, urn: str) -> bool:
        found = self._covered.get(urn)
        if found is None:
            found = self._covered[urn] = self.scope.covers(urn, self.entities)
        return found


class Evaluator:
    """Base of every kind. `attributes`: the attributes whose readings it wants."""

    timed: ClassVar[bool] = False

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.attributes: frozenset[str] = frozenset()

    def subject(self, point: Point, ctx: Context) -> str | None:
        """Where a reading goes; None: not for this rule."""
        return point.entity if ctx.in_scope(point.entity) else None

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        return []

    def timer_subjects(self, ctx: Context) -> list[str] | None:
        """Subjects to visit on a timer; None: every subject that has a state."""
        return None

    def on_timer(self, subject: str, state: State, ctx: Context) -> list[Signal]:
        return []


class SeriesEvaluator(Evaluator):
    """A condition on one attribute of one entity: raise when it starts, clear when it ends.

    `condition` returns True (holds), False (does not) or None (cannot tell: state only
    learns). The flag `on` in the state remembers whether the alarm was raised.
    """

    attribute: str

    def __init__(self, definition: Definition, attribute: str) -> None:
        super().__init__(definition)
        self.attribute = attribute
        self.attributes = frozenset({attribute})

    def condition(self, state: State, point: Point) -> bool | None:
        raise NotImplementedError

    def message(self, state: State, point: Point) -> str:
        raise NotImplementedError

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        signals: list[Signal] = []
        for point in points:
            holds = self.condition(state, point)
            if holds is None:
                continue
            if holds and not state.get("on"):
                state["on"] = True
                signals.append(
                    Signal(True, point.entity, point.ts, self.message(state, point), point.value)
                )
            elif not holds and state.get("on"):
                state["on"] = False
                signals.append(Signal(False, point.entity, point.ts))
        return signals


def local_time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).astimezone(PARIS)


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def clock_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def fmt(value: float, digits: int = 2) -> str:
    """A number for an alarm message, French style (decimal comma)."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return text.replace(".", ",")


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if not ordered:
        raise ValueError("median of nothing")
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


Factory = Callable[[Definition], Evaluator]
