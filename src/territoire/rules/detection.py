"""Detection quality, measured: simulated faults → ingestion → rules → alarms vs ground truth.

The simulator runs hour by hour on simulated time: each hour's readings go through
`telemetry.ingest` (which calls the rules on the stored batch), then the rule timers run
as of the end of that hour. Nothing reads the wall clock. The run has three parts: a
warm-up (baselines learn; its faults are not scored), the scored days (faults starting
in them are scored), and a tail (no new fault is scored, but alarms still count, so that
a fault starting on the last evening has its chance).

Matching (also in docs/detection.md): an alarm of the rule family of a fault kind, on
the fault's entity (the cabinet for a cabinet failure), raised between the fault's start
and its end plus the grace period, detects that fault. So does a repeat, in that span, of
such an alarm that is still active from before: there is one active alarm per rule and
entity, so a fault that starts before the alarm of an earlier one has cleared can only
show as its rule firing again. An alarm of a family raised in the scored period that
detects no fault of that kind — nor continues one that began in the warm-up — is a
false positive (repeats never add alarms).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from territoire import events
from territoire.alarms import service as alarms
from territoire.db import Database, migrate
from territoire.rules import defaults, engine
from territoire.rules import service as rules
from territoire.simulator import service as simulation_service
from territoire.simulator.engine import Simulation
from territoire.simulator.faults import Fault, FaultKind
from territoire.simulator.sizes import Size
from territoire.telemetry import service as telemetry
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import TenantKind

HOUR = 3600
DEFAULT_START = date(2025, 11, 3)  # a Monday of the heating season, long nights

# Which rules speak for which fault kind (keys of the default rule set).
FAMILIES: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.LAMP_OUT: ("lamp-out",),
    FaultKind.DAY_BURNER: ("day-burner",),
    FaultKind.LAMP_CYCLING: ("lamp-cycling",),
    FaultKind.CABINET_FAILURE: ("cabinet-fault",),
    FaultKind.WATER_LEAK: ("water-leak",),
    FaultKind.WATER_BURST: ("water-burst",),
    FaultKind.CONTAINER_OVERFLOW: ("container-full",),
    FaultKind.SENSOR_SILENT: ("sensor-silence",),
    FaultKind.SENSOR_STUCK: (
        *(f"stuck-{suffix}" for suffix, *_rest in defaults.STUCK_SERIES if suffix != "occupancy"),
        *defaults.OCCUPIED_ZERO_KEYS,
    ),
    FaultKind.SENSOR_DRIFT: (
        "container-sensor",
        "water-meter-drift",
        "air-drift-particles",
        "air-drift-gases",
        "building-thermometer-drift",
    ),
    FaultKind.BUILDING_HEATED_UNOCCUPIED: ("building-heated-unoccupied",),
    FaultKind.BUILDING_LIT_UNOCCUPIED: ("building-lit-unoccupied",),
    FaultKind.PARKING_STUCK_OCCUPIED: ("stuck-occupancy",),
}
# A fill sensor reads at most 100 % (±1 %): the hourly reading before the one where the
# content passes the capacity already says "full". Such an alarm is the detection.
EARLY_HOURS: dict[FaultKind, float] = {FaultKind.CONTAINER_OVERFLOW: 2.0}
_BUILDINGS = ("building_power", "building_gas", "building_water", "building_ambient", "weather")
# The device streams whose readings the rules of each family need. A run limited to some
# kinds ingests only these (the simulation itself is the same), so a rule can be tuned on
# its own domain in minutes instead of a full run.
STREAMS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.LAMP_OUT: ("streetlight", "cabinet"),
    FaultKind.DAY_BURNER: ("streetlight", "cabinet"),
    FaultKind.LAMP_CYCLING: ("streetlight", "cabinet"),
    FaultKind.CABINET_FAILURE: ("streetlight", "cabinet"),
    FaultKind.WATER_LEAK: ("district", "tank"),
    FaultKind.WATER_BURST: ("district", "tank"),
    FaultKind.CONTAINER_OVERFLOW: ("container",),
    FaultKind.SENSOR_SILENT: (),  # every stream
    # Every stream that can stick (the planner's list): all but the street lights.
    FaultKind.SENSOR_STUCK: (
        "cabinet",
        "district",
        "tank",
        "container",
        "car_park",
        "air",
        *_BUILDINGS,
    ),
    FaultKind.SENSOR_DRIFT: ("container", "district", "tank", "air", *_BUILDINGS),
    FaultKind.BUILDING_HEATED_UNOCCUPIED: _BUILDINGS,
    FaultKind.BUILDING_LIT_UNOCCUPIED: _BUILDINGS,
    FaultKind.PARKING_STUCK_OCCUPIED: ("spot",),
}


@dataclass(frozen=True)
class Config:
    size: Size = Size.MEDIUM
    days: int = 30
    seed: int = 101
    warmup_days: int = 7
    tail_days: int = 2
    start: date = DEFAULT_START
    grace_hours: float = 24.0
    database_url: str | None = None
    kinds: tuple[FaultKind, ...] = ()  # empty: every kind

    def streams(self) -> frozenset[str] | None:
        """Streams to ingest; None: all of them."""
        kinds = self.kinds or tuple(FaultKind)
        if any(not STREAMS[kind] for kind in kinds):
            return None
        return frozenset(key for kind in kinds for key in STREAMS[kind])


@dataclass(frozen=True)
class AlarmRow:
    """An alarm raised, or (in the repeats) an active alarm's rule firing again by then."""

    rule_key: str
    entity: str
    raised_at: float


class RepeatWatch:
    """Notes, each time it looks, the active alarms whose occurrences rose since the last
    look: their rule fired again in between (at the latest by the time of the look)."""

    def __init__(self) -> None:
        self.repeats: list[AlarmRow] = []
        self._counts: dict[int, int] = {}

    def look(self, database: Database, tenant_id: int, at: float) -> None:
        with database.session() as session:
            active = alarms.active_occurrences(session, tenant_id)
        for alarm_id, (rule_key, entity, count) in active.items():
            if count > self._counts.get(alarm_id, 1):
                self.repeats.append(AlarmRow(rule_key, entity, at))
        self._counts = {alarm_id: count for alarm_id, (_r, _e, count) in active.items()}


@dataclass
class KindResult:
    kind: str
    injected: int = 0
    detected: int = 0
    alarms: int = 0
    false_alarms: int = 0
    delays_hours: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)  # fault ids, for investigation
    false: list[str] = field(default_factory=list)  # "rule entity time"

    @property
    def precision(self) -> float | None:
        return (self.alarms - self.false_alarms) / self.alarms if self.alarms else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.injected if self.injected else None

    def delay(self, quantile: float) -> float | None:
        return percentile(self.delays_hours, quantile)


@dataclass
class Report:
    config: Config
    results: list[KindResult]
    readings: int
    seconds: float
    evaluate_seconds: float
    scored_from: datetime
    scored_until: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.config.size.value,
            "seed": self.config.seed,
            "days": self.config.days,
            "warmup_days": self.config.warmup_days,
            "tail_days": self.config.tail_days,
            "grace_hours": self.config.grace_hours,
            "kinds_measured": [k.value for k in self.config.kinds] or "all",
            "scored_from": self.scored_from.isoformat(),
            "scored_until": self.scored_until.isoformat(),
            "readings": self.readings,
            "seconds": round(self.seconds, 1),
            "kinds": [
                {
                    "kind": r.kind,
                    "injected": r.injected,
                    "detected": r.detected,
                    "alarms": r.alarms,
                    "false_alarms": r.false_alarms,
                    "precision": _round(r.precision),
                    "recall": _round(r.recall),
                    "median_hours": _round(r.delay(0.5)),
                    "p90_hours": _round(r.delay(0.9)),
                    "missed": r.missed,
                    "false": r.false,
                }
                for r in self.results
            ],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def percentile(values: list[float], quantile: float) -> float | None:
    """Linear interpolation between closest ranks (the common definition)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * quantile
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --- running ---------------------------------------------------------------------------

Progress = Callable[[int, int, int], None]  # day done, days in all, readings so far


def run(config: Config, progress: Progress | None = None) -> Report:
    with tempfile.TemporaryDirectory(prefix="territoire-detection-") as folder:
        url = config.database_url or f"sqlite:///{Path(folder) / 'detection.db'}"
        migrate.upgrade(url)
        database = Database(url)
        try:
            return _run(database, config, progress)
        finally:
            database.dispose()


def _run(database: Database, config: Config, progress: Progress | None) -> Report:
    events.install_listeners()
    began = time.perf_counter()
    simulation = Simulation(config.seed, config.size, config.start)
    tenant_id = _prepare_tenant(database, simulation, config)
    total_days = config.warmup_days + config.days + config.tail_days
    clock = simulation_service._Clock()
    readings = 0
    evaluate_seconds = 0.0
    streams = config.streams()
    watch = RepeatWatch()
    for day_number in range(total_days):
        day = simulation.next_day()
        if streams is not None:
            day.frames = {key: frame for key, frame in day.frames.items() if key in streams}
        for hour in range(24):
            first = day.start + hour * HOUR
            batch = list(simulation_service.readings(day, first, first + HOUR, clock))
            end = datetime.fromtimestamp(first + HOUR, UTC)
            result = telemetry.ingest(database, tenant_id, batch, source="simulator", now=end)
            readings += result.stored
            started = time.perf_counter()
            rules.run_timers(database, end)
            evaluate_seconds += time.perf_counter() - started
            watch.look(database, tenant_id, end.timestamp())
        if progress is not None:
            progress(day_number + 1, total_days, readings)
    scored_from = simulation.start + config.warmup_days * 86_400
    scored_until = scored_from + config.days * 86_400
    truth = simulation.truth()
    faults = [f for f in truth if scored_from <= f.start < scored_until]
    others = [f for f in truth if not scored_from <= f.start < scored_until]
    found = _alarms(database, tenant_id)
    results = score(
        faults, others, found, scored_from, scored_until, config.grace_hours, watch.repeats
    )
    if config.kinds:
        results = [r for r in results if FaultKind(r.kind) in config.kinds]
    return Report(
        config,
        results,
        readings,
        time.perf_counter() - began,
        evaluate_seconds,
        datetime.fromtimestamp(scored_from, UTC),
        datetime.fromtimestamp(scored_until, UTC),
    )


def _prepare_tenant(database: Database, simulation: Simulation, config: Config) -> int:
    engine.forget_caches()
    telemetry.forget_caches()
    with database.session() as session:
        slug = f"detection-{config.size.value}-{config.seed}"
        tenant = tenancy.find_tenant_by_slug(session, slug)
        if tenant is not None:
            raise ValueError(f"tenant {slug} already exists in this database; use a fresh one")
        tenant = tenancy.create_tenant(
            session,
            slug=slug,
            name=f"Évaluation {config.size.value} {config.seed}",
            siren=_siren(config.seed),
            kind=TenantKind.COMMUNE,
        )
        simulation_service.seed_territory(session, tenant.id, simulation.territory)
        drafts = defaults.default_rules(session, tenant.id)
        rules.install_rules(session, tenant.id, drafts)
        return tenant.id


def _siren(seed: int) -> str:
    candidate = 100_000_000 + seed * 10
    while not tenancy.is_valid_siren(f"{candidate:09d}"):
        candidate += 1
    return f"{candidate:09d}"


def _alarms(database: Database, tenant_id: int) -> list[AlarmRow]:
    found: list[AlarmRow] = []
    offset = 0
    with database.session() as session:
        while True:
            page = alarms.list_alarms(
                session, tenant_id, alarms.AlarmFilter(), limit=alarms.MAX_PAGE_SIZE, offset=offset
            )
            found += [
                AlarmRow(a.rule_key, a.entity_urn, a.raised_at.timestamp()) for a in page.items
            ]
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return found


# --- scoring ---------------------------------------------------------------------------


def score(
    faults: list[Fault],
    others: list[Fault],
    found: list[AlarmRow],
    scored_from: float,
    scored_until: float,
    grace_hours: float,
    repeats: Sequence[AlarmRow] = (),
) -> list[KindResult]:
    """`faults` start in the scored period; `others` (warm-up, tail) are not scored, and
    an alarm that detects one of them is neither a detection nor a false alarm.
    `repeats` detect faults but are not alarms of their own."""
    grace = grace_hours * HOUR
    results = []
    for kind, keys in FAMILIES.items():
        result = KindResult(kind.value)
        mine = [a for a in found if a.rule_key in keys]
        signals = mine + [r for r in repeats if r.rule_key in keys]
        targets = [f for f in faults if f.kind is kind]
        unscored = [f for f in others if f.kind is kind]
        result.injected = len(targets)
        for fault in targets:
            hits = [a.raised_at for a in signals if _matches(a, fault, grace)]
            if hits:
                result.detected += 1
                result.delays_hours.append(max(0.0, min(hits) - fault.start) / HOUR)
            else:
                result.missed.append(f"{fault.id} {fault.entity} {_iso(fault.start)}")
        for alarm in mine:
            if not scored_from <= alarm.raised_at < scored_until + grace:
                continue
            if any(_matches(alarm, f, grace) for f in unscored):
                continue
            result.alarms += 1
            if not any(_matches(alarm, f, grace) for f in targets):
                result.false_alarms += 1
                result.false.append(f"{alarm.rule_key} {alarm.entity} {_iso(alarm.raised_at)}")
        results.append(result)
    return results


def _matches(alarm: AlarmRow, fault: Fault, grace: float) -> bool:
    early = EARLY_HOURS.get(fault.kind, 0.0) * HOUR
    return (
        alarm.entity == fault.entity and fault.start - early <= alarm.raised_at <= fault.end + grace
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


def table(report: Report) -> list[list[str]]:
    """Rows for printing: kind, injected, detected, precision, recall, median, p90."""
    rows = []
    for r in report.results:
        rows.append(
            [
                r.kind,
                str(r.injected),
                str(r.detected),
                _cell(r.precision),
                _cell(r.recall),
                _hours(r.delay(0.5)),
                _hours(r.delay(0.9)),
            ]
        )
    return rows


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} h"
