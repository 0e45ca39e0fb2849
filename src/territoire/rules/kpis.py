"""Telemetry-based KPIs, added through the KPI module's extension point (`register`).

- lighting.energy_saving: lighting energy of the period against the same dates of the
  reference year (the year before), from the cabinets' metered power;
- water.network_efficiency: 1 − losses / volume put in, per district and overall, the
  losses estimated from the minimum night flow (as the `network_efficiency` rule does);
- waste.containers_overflowed: containers whose fill sensor read 100 % (±1 %) at least once;
- buildings.unoccupied_waste: electricity drawn while unoccupied above the building's own
  unoccupied baseline (kWh) — registered once the KPI module knows a kWh unit.

Each reads hourly or daily rollups through the telemetry service, one series at a time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from territoire.interventions.kpis import KpiDefinition, KpiQuery, KpiValue, Unit, register
from territoire.registry import service as registry
from territoire.rules import schedule
from territoire.rules.evaluators.water import efficiency_of
from territoire.rules.models import Rule
from territoire.telemetry import service as telemetry

PARIS = ZoneInfo("Europe/Paris")
FULL_LEVEL = 0.99
NIGHT_HOURS = (2, 3)  # local hours of the minimum night flow window (02:00-04:00)
DEFAULT_NIGHT_USE_LPH = 2.0
BASELINE_QUANTILE = 0.2
BASELINE_MARGIN = 1.1

TELEMETRY_KPIS = [
    KpiDefinition(
        "lighting.energy_saving",
        "Lighting energy saving vs reference year",
        Unit.PERCENT,
        higher_is_better=True,
        description="1 − lighting energy of the period / energy of the same dates the year "
        "before, from the control cabinets' metered power.",
    ),
    KpiDefinition(
        "water.network_efficiency",
        "Water network efficiency",
        Unit.PERCENT,
        higher_is_better=True,
        description="1 − losses / volume put in; losses are the minimum night flow "
        "(02:00-04:00) less the legitimate night use of the connections. Legal target: "
        "85 % (decree 2012-97).",
    ),
    KpiDefinition(
        "waste.containers_overflowed",
        "Containers overflowed",
        Unit.COUNT,
        higher_is_better=False,
        description="Containers whose fill sensor read 100 % at least once in the period.",
    ),
]
KWH = getattr(Unit, "KWH", None)  # the KPI module may not know kWh yet
WASTE_KPI = (
    KpiDefinition(
        "buildings.unoccupied_waste",
        "Electricity used in unoccupied buildings",
        KWH,
        higher_is_better=False,
        description="Electricity drawn outside opening hours above each building's usual "
        "unoccupied consumption (20th percentile of its unoccupied hours, + 10 %).",
    )
    if KWH is not None
    else None
)


def _series(
    session: Session, tenant_id: int, entity_type: str, attribute: str
) -> list[telemetry.SeriesInfo]:
    found, offset = [], 0
    while True:
        page, total = telemetry.list_series(
            session, tenant_id, attribute=attribute, limit=1000, offset=offset
        )
        found += [s for s in page if s.entity.split(":")[2:3] == [entity_type]]
        offset += len(page)
        if not page or offset >= total:
            return found


def _in_commune(session: Session, query: KpiQuery, entity_type: str) -> set[str] | None:
    if query.commune_id is None:
        return None
    where = registry.EntityFilter(types=[entity_type], commune_id=query.commune_id)
    urns: set[str] = set()
    offset = 0
    while True:
        page = registry.list_entities(
            session, query.tenant_id, where, limit=registry.MAX_PAGE_SIZE, offset=offset
        )
        urns |= {e.urn for e in page.items}
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return urns


def _chosen(
    session: Session, query: KpiQuery, entity_type: str, attribute: str
) -> list[telemetry.SeriesInfo]:
    allowed = _in_commune(session, query, entity_type)
    series = _series(session, query.tenant_id, entity_type, attribute)
    return [s for s in series if allowed is None or s.entity in allowed]


def _energy_kwh(
    session: Session, tenant_id: int, series_id: int, start: datetime, end: datetime
) -> float | None:
    """Mean power (kW) over the period × its hours; None without data."""
    buckets = telemetry.aggregate(session, tenant_id, series_id, start, end, "P1D", PARIS)
    count = sum(b.count for b in buckets)
    if count == 0:
        return None
    return sum(b.sum for b in buckets) / count * (end - start).total_seconds() / 3600


def _year_before(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year - 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - 1, day=28)


def lighting_saving(session: Session, query: KpiQuery) -> KpiValue:
    start, end = query.start, query.effective_end
    now_total = before_total = 0.0
    counted = 0
    if end > start:
        for series in _chosen(session, query, "StreetlightControlCabinet", "activePower"):
            now = _energy_kwh(session, query.tenant_id, series.id, start, end)
            before = _energy_kwh(
                session, query.tenant_id, series.id, _year_before(start), _year_before(end)
            )
            if now is None or before is None:
                continue  # a cabinet without both years says nothing of the saving
            now_total += now
            before_total += before
            counted += 1
    if before_total <= 0:
        return KpiValue("lighting.energy_saving", None, counted)
    saving = 100 * (1 - now_total / before_total)
    return KpiValue("lighting.energy_saving", round(saving, 2), counted)


def _night_use(session: Session, tenant_id: int) -> float:
    """The night use per connection of the tenant's efficiency rule, if it has one."""
    rule = session.scalar(
        select(Rule).where(
            Rule.tenant_id == tenant_id,
            Rule.kind == "network_efficiency",
            Rule.archived_at.is_(None),
        )
    )
    value = (rule.parameters or {}).get("night_use_lph") if rule is not None else None
    return float(value) if isinstance(value, int | float) else DEFAULT_NIGHT_USE_LPH


def _daily_flows(
    session: Session, tenant_id: int, series_id: int, start: datetime, end: datetime
) -> list[tuple[float, float]]:
    """(mean flow, minimum night flow) per local day with both, from hourly rollups."""
    days: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for bucket in telemetry.aggregate(session, tenant_id, series_id, start, end, "PT1H", PARIS):
        local = bucket.start.astimezone(PARIS)
        day = days[local.date().isoformat()]
        day[0] += bucket.sum
        day[1] += bucket.count
        if local.hour in NIGHT_HOURS:
            day[2] += bucket.sum
            day[3] += bucket.count
    return [(s / c, ns / nc) for s, c, ns, nc in days.values() if c and nc]


def water_efficiency(session: Session, query: KpiQuery) -> list[KpiValue]:
    night_use = _night_use(session, query.tenant_id)
    entities = registry.EntityFilter(types=["WaterConsumptionObserved"])
    connections = {
        e.urn: float((e.properties or {}).get("connections") or 0)
        for e in registry.list_entities(session, query.tenant_id, entities, limit=1000).items
    }
    values: list[KpiValue] = []
    volume = losses = 0.0
    start, end = query.start, query.effective_end
    for series in _chosen(session, query, "WaterConsumptionObserved", "flow"):
        daily = _daily_flows(session, query.tenant_id, series.id, start, end) if end > start else []
        if not daily:
            continue
        efficiency = efficiency_of(daily, connections.get(series.entity, 0.0), night_use)
        district_volume = sum(mean for mean, _ in daily)
        volume += district_volume
        losses += (1 - efficiency) * district_volume
        values.append(
            KpiValue(
                "water.network_efficiency", round(100 * efficiency, 2), len(daily), series.entity
            )
        )
    overall = round(100 * (1 - losses / volume), 2) if volume > 0 else None
    return [KpiValue("water.network_efficiency", overall, len(values)), *values]


def containers_overflowed(session: Session, query: KpiQuery) -> KpiValue:
    start, end = query.start, query.effective_end
    chosen = _chosen(session, query, "WasteContainer", "fillingLevel")
    full = 0
    if end > start:
        for series in chosen:
            buckets = telemetry.aggregate(
                session, query.tenant_id, series.id, start, end, "P1D", PARIS
            )
            if any(b.max >= FULL_LEVEL for b in buckets):
                full += 1
    return KpiValue("waste.containers_overflowed", full, len(chosen))


def unoccupied_waste(session: Session, query: KpiQuery) -> KpiValue:
    """kWh above each building's unoccupied baseline, over its fully unoccupied hours."""
    start, end = query.start, query.effective_end
    hours_of = {
        e.urn: (e.properties or {}).get("openingHours")
        for e in registry.list_entities(
            session, query.tenant_id, registry.EntityFilter(types=["Building"]), limit=1000
        ).items
    }
    total = 0.0
    counted = 0
    for series in _chosen(session, query, "Building", "activePower"):
        raw = hours_of.get(series.entity)
        if not raw or end <= start:
            continue
        try:
            opening = schedule.parse(raw)
        except schedule.ScheduleError:
            continue
        quiet = [
            b.avg
            for b in telemetry.aggregate(
                session, query.tenant_id, series.id, start, end, "PT1H", PARIS
            )
            if _quiet_hour(opening, b.start)
        ]
        if not quiet:
            continue
        baseline = sorted(quiet)[math.floor(BASELINE_QUANTILE * (len(quiet) - 1))] * BASELINE_MARGIN
        total += sum(max(0.0, value - baseline) for value in quiet)
        counted += 1
    return KpiValue("buildings.unoccupied_waste", round(total, 1), counted)


def _quiet_hour(opening: schedule.Schedule, moment: datetime) -> bool:
    local = moment.astimezone(PARIS)
    minute = local.weekday() * 1440 + local.hour * 60
    # The whole hour, with an hour's margin either side (closing up, pre-heating).
    return all(opening.quiet(minute + m, 60, 60) for m in (0, 30, 59))


def telemetry_kpis(session: Session, query: KpiQuery) -> list[KpiValue]:
    values = [lighting_saving(session, query), *water_efficiency(session, query)]
    values.append(containers_overflowed(session, query))
    if WASTE_KPI is not None:
        values.append(unoccupied_waste(session, query))
    return values


register([*TELEMETRY_KPIS, *([WASTE_KPI] if WASTE_KPI else [])], telemetry_kpis)
