"""Lighting kinds: lamp out, day burner, cycling, cabinet fault — judged per cabinet.

A lamp's reading means something only against what its cabinet commands: a lamp drawing
nothing at 23:30 is out if the cabinet commands it on, and normal under a part-night
profile. So the subject of every lighting rule is the control cabinet: it receives the
cabinet's commanded level (`illuminanceLevel`, 0 = off) and its lamps' power. A lamp
reading waits in the state until the cabinet has reported after it; it is then judged
only if the cabinet's reports just before and just after agree (both on, or both off):
readings around a switching instant are left out rather than guessed.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, cast

from territoire.rules.definitions import CabinetFault, DayBurner, LampCycling, LampOut, Lighting
from territoire.rules.evaluators.base import (
    Context,
    Evaluator,
    Point,
    Signal,
    State,
    entity_type,
    fmt,
)

CABINET_TYPE = "StreetlightControlCabinet"
LAMP_TYPE = "Streetlight"
CABINET_RELATION = "refStreetlightControlCabinet"
COMMANDS_KEPT = 3 * 3600  # seconds of commands kept to judge late lamp readings
MAX_COMMAND_GAP = 40 * 60  # two cabinet reports further apart than this say nothing
PENDING_LIMIT = 2 * 3600  # lamp readings the cabinet never caught up with are dropped
ON, OFF, UNKNOWN = 1, 0, -1
MISSING = object()
SWITCH_MEMORY = 24 * 3600  # lamp out: how far back a lamp's going dark counts


class LightingEvaluator(Evaluator):
    def __init__(self, definition: Lighting) -> None:
        super().__init__(definition)
        self.power = definition.power_attribute
        self.command = definition.command_attribute
        self.attributes = frozenset({self.power, self.command})

    def subject(self, point: Point, ctx: Context) -> str | None:
        key = (point.entity, point.attribute)
        known = ctx.subjects.get(key, MISSING)
        if known is not MISSING:
            return cast(str | None, known)
        found: str | None = None
        if point.attribute == self.command and entity_type(point.entity) == CABINET_TYPE:
            found = point.entity
        elif point.attribute == self.power and ctx.in_scope(point.entity):
            info = ctx.entities.get(point.entity)
            found = info.related(CABINET_RELATION) if info is not None else None
        ctx.subjects[key] = found
        return found

    def evaluate(
        self, subject: str, state: State, points: list[Point], ctx: Context
    ) -> list[Signal]:
        commands: list[list[float]] = state.setdefault("cmd", [])
        pending: list[list[Any]] = state.setdefault("p", [])
        for point in points:
            if point.attribute == self.command and entity_type(point.entity) == CABINET_TYPE:
                _insert_command(commands, point.ts, point.value)
            else:
                pending.append([point.entity, point.ts, point.value])
        if not commands:
            _trim_pending(pending)
            return []
        latest = commands[-1][0]
        ready = sorted((p for p in pending if p[1] <= latest), key=lambda p: float(p[1]))
        state["p"] = [p for p in pending if p[1] > latest]
        _trim_pending(state["p"])
        times = [c[0] for c in commands]
        group = Group(subject, state, ctx)
        signals: list[Signal] = []
        for lamp, ts, power in ready:
            nominal = group.nominal(lamp, power)
            if nominal is not None:
                command = _command_at(commands, times, ts)
                self.judge(group, lamp, ts, power, nominal, command, signals)
        del commands[: max(0, bisect.bisect_left(times, latest - COMMANDS_KEPT) - 1)]
        return signals

    def judge(
        self,
        group: Group,
        lamp: str,
        ts: float,
        power: float,
        nominal: float,
        command: int,
        signals: list[Signal],
    ) -> None:
        raise NotImplementedError


class Group:
    """One cabinet being evaluated: its lamps' states and what the registry says of them."""

    def __init__(self, cabinet: str, state: State, ctx: Context) -> None:
        self.cabinet = cabinet
        self.state = state
        self.ctx = ctx
        self.lamps: dict[str, dict[str, Any]] = state.setdefault("l", {})
        self._nominal: dict[str, float | None] = {}
        self._size: int | None = None

    def lamp(self, urn: str) -> dict[str, Any]:
        found = self.lamps.get(urn)
        if found is None:
            found = self.lamps[urn] = {}
        return found

    def nominal(self, urn: str, power: float) -> float | None:
        """The lamp's nominal power (registry), else the highest power it was seen drawing."""
        if urn not in self._nominal:
            info = self.ctx.entities.get(urn)
            value = info.number("nominalPower") if info is not None else None
            self._nominal[urn] = value if value is not None and value > 0 else None
        known = self._nominal[urn]
        if known is not None:
            return known
        lamp = self.lamp(urn)
        seen = max(float(lamp.get("ref", 0.0)), power)
        lamp["ref"] = seen
        return seen if seen > 0 else None

    def size(self) -> int:
        """How many lamps hang on the cabinet (registry), at least those seen."""
        if self._size is None:
            members = self.ctx.entities.members(self.cabinet, LAMP_TYPE, CABINET_RELATION)
            self._size = max(len(members), len(self.lamps), 1)
        return self._size


def _insert_command(commands: list[list[float]], ts: float, level: float) -> None:
    if commands and ts <= commands[-1][0]:
        index = bisect.bisect_left([c[0] for c in commands], ts)
        if index < len(commands) and commands[index][0] == ts:
            commands[index][1] = level
        else:
            commands.insert(index, [ts, level])
    else:
        commands.append([ts, level])


def _trim_pending(pending: list[list[Any]]) -> None:
    if pending:
        newest = max(float(p[1]) for p in pending)
        pending[:] = [p for p in pending if float(p[1]) >= newest - PENDING_LIMIT]


def _command_at(commands: list[list[float]], times: list[float], ts: float) -> int:
    """ON or OFF when the cabinet's reports around `ts` agree, else UNKNOWN."""
    index = bisect.bisect_left(times, ts)
    if index >= len(times):
        return UNKNOWN
    after = commands[index]
    if after[0] == ts:
        before = after
    elif index == 0:
        return UNKNOWN
    else:
        before = commands[index - 1]
    if after[0] - before[0] > MAX_COMMAND_GAP:
        return UNKNOWN
    if before[1] > 0 and after[1] > 0:
        return ON
    if before[1] <= 0 and after[1] <= 0:
        return OFF
    return UNKNOWN


class LampOutEvaluator(LightingEvaluator):
    def __init__(self, definition: LampOut) -> None:
        super().__init__(definition)
        self.rule = definition

    def judge(
        self,
        group: Group,
        lamp: str,
        ts: float,
        power: float,
        nominal: float,
        command: int,
        signals: list[Signal],
    ) -> None:
        if command != ON:
            return
        state = group.lamp(lamp)
        dark = power < self.rule.dark_ratio * nominal
        run = int(state.get("d", 0))
        if not dark:
            if run > 0:
                group.state["dk"] = max(0, group.state.get("dk", 0) - 1)
            state["d"] = 0
            if state.get("on"):
                state["on"] = False
                signals.append(Signal(False, lamp, ts))
            return
        if run == 0:
            group.state["dk"] = group.state.get("dk", 0) + 1
            # A lamp that keeps going dark and back is cycling, not out: count its switches.
            switches = [t for t in state.get("t", []) if t >= ts - SWITCH_MEMORY]
            state["t"] = [*switches, ts]
        state["d"] = run = run + 1
        if run < self.rule.samples or state.get("on"):
            return
        steady = len(state.get("t", [])) <= self.rule.max_switches
        alone = group.state["dk"] / group.size() < self.rule.cabinet_share
        if steady and alone:
            state["on"] = True
            signals.append(
                Signal(
                    True,
                    lamp,
                    ts,
                    f"Point lumineux éteint : {fmt(power, 1)} W alors que l'armoire le "
                    f"commande allumé ({run} relevés)",
                    power,
                    group.cabinet,
                )
            )


class DayBurnerEvaluator(LightingEvaluator):
    def __init__(self, definition: DayBurner) -> None:
        super().__init__(definition)
        self.rule = definition

    def judge(
        self,
        group: Group,
        lamp: str,
        ts: float,
        power: float,
        nominal: float,
        command: int,
        signals: list[Signal],
    ) -> None:
        if command != OFF:
            return
        state = group.lamp(lamp)
        if power >= self.rule.lit_ratio * nominal:
            run = int(state.get("b", 0)) + 1
            state["b"] = run
            if run >= self.rule.samples and not state.get("on"):
                state["on"] = True
                signals.append(
                    Signal(
                        True,
                        lamp,
                        ts,
                        f"Point lumineux allumé de jour : {fmt(power, 1)} W alors que "
                        f"l'armoire le commande éteint ({run} relevés)",
                        power,
                        group.cabinet,
                    )
                )
        else:
            state["b"] = 0
            if state.get("on"):
                state["on"] = False
                signals.append(Signal(False, lamp, ts))


class LampCyclingEvaluator(LightingEvaluator):
    def __init__(self, definition: LampCycling) -> None:
        super().__init__(definition)
        self.rule = definition

    def judge(
        self,
        group: Group,
        lamp: str,
        ts: float,
        power: float,
        nominal: float,
        command: int,
        signals: list[Signal],
    ) -> None:
        if command != ON:
            return
        state = group.lamp(lamp)
        dark = power < self.rule.dark_ratio * nominal
        switches: list[float] = state.setdefault("t", [])
        if dark and state.get("lit"):
            switches.append(ts)
        state["lit"] = not dark
        oldest = ts - self.rule.window_hours * 3600
        while switches and switches[0] < oldest:
            switches.pop(0)
        if len(switches) >= self.rule.switches and not state.get("on"):
            state["on"] = True
            signals.append(
                Signal(
                    True,
                    lamp,
                    ts,
                    f"Point lumineux instable : {len(switches)} extinctions en "
                    f"{self.rule.window_hours} h alors qu'il est commandé allumé",
                    float(len(switches)),
                    group.cabinet,
                )
            )
        elif not switches and state.get("on"):
            state["on"] = False
            signals.append(Signal(False, lamp, ts))
        if not switches and not state.get("on"):
            state.pop("t", None)


class CabinetFaultEvaluator(LightingEvaluator):
    def __init__(self, definition: CabinetFault) -> None:
        super().__init__(definition)
        self.rule = definition

    def judge(
        self,
        group: Group,
        lamp: str,
        ts: float,
        power: float,
        nominal: float,
        command: int,
        signals: list[Signal],
    ) -> None:
        state = group.lamp(lamp)
        was_out = bool(state.get("o"))
        if power < self.rule.no_supply_watts:
            out = True
        elif command == ON:
            out = power < self.rule.dark_ratio * nominal
        elif command == OFF:
            out = False
        else:
            out = was_out
        cabinet = group.state
        if out != was_out:
            state["o"] = out
            cabinet["n"] = cabinet.get("n", 0) + (1 if out else -1)
        size = group.size()
        needed = max(self.rule.min_lamps, math.ceil(self.rule.share * size))
        holds = cabinet.get("n", 0) >= needed
        if holds == bool(cabinet.get("on")):
            cabinet.pop("since", None)
            return
        since = cabinet.setdefault("since", ts)
        if ts - since < self.rule.minutes * 60:
            return
        cabinet["on"] = holds
        cabinet.pop("since", None)
        if holds:
            signals.append(
                Signal(
                    True,
                    group.cabinet,
                    ts,
                    f"Défaut d'armoire : {cabinet['n']} points lumineux sur {size} éteints ou "
                    "sans alimentation",
                    float(cabinet["n"]),
                )
            )
        else:
            signals.append(Signal(False, group.cabinet, ts))
