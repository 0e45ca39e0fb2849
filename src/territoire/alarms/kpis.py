"""KPIs drawn from alarms: availability per asset class, and how fast alarms are handled.

Availability follows EN 15341: 1 − downtime / (assets × period). An asset is down while
it has a critical or major alarm that is not cleared yet; overlapping alarms on one
asset count once. Assets are counted as they are in the registry now (an asset added
during the period counts for the whole period).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from territoire.alarms.models import Alarm, Severity
from territoire.interventions.kpis import (
    KpiDefinition,
    KpiQuery,
    KpiValue,
    Unit,
    mean_or_none,
    register,
)
from territoire.registry import service as registry
from territoire.web.i18n import N_

OUTAGE_SEVERITIES = (Severity.CRITICAL, Severity.MAJOR)

ALARM_KPIS = [
    KpiDefinition(
        "availability",
        N_("Availability"),
        Unit.PERCENT,
        higher_is_better=True,
        description="1 − downtime / (assets × period); down while a critical or major "
        "alarm is active. Per asset class, and for all assets.",
    ),
    KpiDefinition(
        "alarms.raised",
        N_("Alarms raised"),
        Unit.COUNT,
        higher_is_better=False,
        description="Alarms raised in the period.",
    ),
    KpiDefinition(
        "alarms.mean_time_to_acknowledge",
        N_("Alarms: mean time to acknowledge"),
        Unit.MINUTES,
        higher_is_better=False,
        description="From first occurrence to acknowledgement, alarms raised in the period.",
    ),
    KpiDefinition(
        "alarms.mean_time_to_resolve",
        N_("Alarms: mean time to resolve"),
        Unit.MINUTES,
        higher_is_better=False,
        description="From first occurrence to clearing, alarms raised in the period.",
    ),
]


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60


def _raised_in_period(session: Session, query: KpiQuery) -> list[Alarm]:
    clauses = [
        Alarm.tenant_id == query.tenant_id,
        Alarm.raised_at >= query.start,
        Alarm.raised_at < query.end,
    ]
    if query.commune_id is not None:
        clauses.append(Alarm.commune_id == query.commune_id)
    return list(session.scalars(select(Alarm).where(*clauses)))


def delay_kpis(session: Session, query: KpiQuery) -> list[KpiValue]:
    alarms = _raised_in_period(session, query)
    acknowledged = [
        _minutes(a.raised_at, a.acknowledged_at) for a in alarms if a.acknowledged_at is not None
    ]
    cleared = [_minutes(a.raised_at, a.cleared_at) for a in alarms if a.cleared_at is not None]
    return [
        KpiValue("alarms.raised", len(alarms), len(alarms)),
        KpiValue("alarms.mean_time_to_acknowledge", mean_or_none(acknowledged), len(acknowledged)),
        KpiValue("alarms.mean_time_to_resolve", mean_or_none(cleared), len(cleared)),
    ]


def asset_counts(session: Session, tenant_id: int, commune_id: int | None) -> dict[str, int]:
    counts = registry.count_by_type(session, tenant_id)
    if commune_id is None:
        return counts
    in_commune: dict[str, int] = {}
    for entity_type in counts:
        where = registry.EntityFilter(types=[entity_type], commune_id=commune_id)
        total = registry.list_entities(session, tenant_id, where, limit=1).total
        if total:
            in_commune[entity_type] = total
    return in_commune


def outages(
    session: Session, tenant_id: int, commune_id: int | None, start: datetime, end: datetime
) -> dict[tuple[str, str], list[tuple[datetime, datetime]]]:
    """Outage intervals clipped to [start, end), per (asset class, entity)."""
    clauses = [
        Alarm.tenant_id == tenant_id,
        Alarm.severity.in_(OUTAGE_SEVERITIES),
        Alarm.raised_at < end,
        or_(Alarm.cleared_at.is_(None), Alarm.cleared_at > start),
    ]
    if commune_id is not None:
        clauses.append(Alarm.commune_id == commune_id)
    rows = session.execute(
        select(Alarm.entity_type, Alarm.entity_urn, Alarm.raised_at, Alarm.cleared_at).where(
            *clauses
        )
    )
    intervals: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for entity_type, urn, raised_at, cleared_at in rows:
        begin, finish = max(raised_at, start), min(cleared_at or end, end)
        if finish > begin:
            intervals[(entity_type, urn)].append((begin, finish))
    return intervals


def union_minutes(intervals: list[tuple[datetime, datetime]]) -> float:
    """Length of the union of intervals: overlapping alarms on one asset count once."""
    total = 0.0
    current_start: datetime | None = None
    current_end: datetime | None = None
    for begin, finish in sorted(intervals):
        if current_end is None or begin > current_end:
            if current_start is not None and current_end is not None:
                total += _minutes(current_start, current_end)
            current_start, current_end = begin, finish
        else:
            current_end = max(current_end, finish)
    if current_start is not None and current_end is not None:
        total += _minutes(current_start, current_end)
    return total


def availability_kpis(session: Session, query: KpiQuery) -> list[KpiValue]:
    start, end = query.start, query.effective_end
    counts = asset_counts(session, query.tenant_id, query.commune_id)
    if end <= start or not counts:
        return [KpiValue("availability", None, sum(counts.values()))]
    period = _minutes(start, end)
    downtime: dict[str, float] = defaultdict(float)
    for (entity_type, _urn), intervals in outages(
        session, query.tenant_id, query.commune_id, start, end
    ).items():
        downtime[entity_type] += union_minutes(intervals)
    values = []
    for entity_type, assets in sorted(counts.items()):
        share = max(0.0, 1 - downtime[entity_type] / (assets * period))
        values.append(KpiValue("availability", round(100 * share, 3), assets, entity_type))
    total_assets = sum(counts.values())
    total_down = sum(downtime[entity_type] for entity_type in counts)
    overall = max(0.0, 1 - total_down / (total_assets * period))
    values.insert(0, KpiValue("availability", round(100 * overall, 3), total_assets))
    return values


def alarm_kpis(session: Session, query: KpiQuery) -> list[KpiValue]:
    return availability_kpis(session, query) + delay_kpis(session, query)


register(ALARM_KPIS, alarm_kpis)
