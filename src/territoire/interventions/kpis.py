"""KPIs over a period, per tenant or commune, shown against configurable targets.

A KPI is a definition (key, unit, which way is better) and a provider that computes its
values for a query. Domains register theirs: this module the work-order KPIs, the
alarms domain availability and alarm delays; the telemetry domain will add lighting
energy against a reference year, water network efficiency and the like by listing its
module in `PROVIDER_MODULES` — nothing else changes.
"""

from __future__ import annotations

import enum
import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from statistics import fmean
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from territoire.db.base import utcnow
from territoire.errors import NotFound, invalid
from territoire.interventions import service
from territoire.interventions.models import KpiTarget, WorkOrderStatus
from territoire.interventions.sla import ClockState, Milestone
from territoire.tenancy import service as tenancy
from territoire.web.i18n import N_

MAX_PERIOD_DAYS = 5 * 366
DEFAULT_PERIOD = timedelta(days=30)
# Dates given without a time are days of the French calendar.
LOCAL_ZONE = ZoneInfo("Europe/Paris")


class Unit(enum.StrEnum):
    PERCENT = "%"
    MINUTES = "min"
    COUNT = "count"


@dataclass(frozen=True)
class KpiDefinition:
    key: str
    label: str  # English message id, translated by the pages
    unit: Unit
    higher_is_better: bool
    description: str


@dataclass(frozen=True)
class KpiQuery:
    tenant_id: int
    start: datetime
    end: datetime
    commune_id: int | None = None
    now: datetime | None = None

    @property
    def effective_end(self) -> datetime:
        """Time after now has not happened: it is neither uptime nor downtime."""
        return min(self.end, self.now or utcnow())


@dataclass(frozen=True)
class KpiValue:
    key: str
    value: float | None
    sample: int  # how many items the value is computed from
    subject: str = ""  # what the value is about within the KPI, e.g. an asset class


@dataclass(frozen=True)
class KpiRow:
    definition: KpiDefinition
    value: KpiValue
    commune_code: str
    target: float | None
    met: bool | None


Provider = Callable[[Session, KpiQuery], list[KpiValue]]

_definitions: dict[str, KpiDefinition] = {}
_providers: list[Provider] = []

# Modules whose import registers their KPIs (besides this one).
PROVIDER_MODULES: list[str] = ["territoire.alarms.kpis"]


def register(definitions: Sequence[KpiDefinition], provider: Provider) -> None:
    """Add KPI definitions and the function computing them; registering twice is harmless."""
    for definition in definitions:
        _definitions[definition.key] = definition
    if provider not in _providers:
        _providers.append(provider)


def definitions() -> dict[str, KpiDefinition]:
    _load_providers()
    return dict(_definitions)


def _load_providers() -> None:
    for module in PROVIDER_MODULES:
        importlib.import_module(module)


def check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise invalid("from", "give times with their time zone")
    if end <= start:
        raise invalid("to", "the end of the period must come after its start")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise invalid("from", f"a period of at most {MAX_PERIOD_DAYS} days")


def parse_moment(text: str, field_name: str) -> datetime:
    """A date (midnight in Paris) or an ISO 8601 time with its offset, as UTC."""
    cleaned = text.strip()
    if "T" in cleaned and " " in cleaned:
        cleaned = cleaned.replace(" ", "+")  # an unencoded "+01:00" arrives as " 01:00"
    try:
        if len(cleaned) == 10:
            day = date.fromisoformat(cleaned)
            return datetime.combine(day, time(), LOCAL_ZONE).astimezone(UTC)
        moment = datetime.fromisoformat(cleaned)
    except ValueError as error:
        raise invalid(
            field_name, "a date YYYY-MM-DD or a time such as 2026-01-31T08:00:00+01:00"
        ) from error
    if moment.tzinfo is None:
        raise invalid(field_name, "give the time zone offset, e.g. +01:00 or Z")
    return moment.astimezone(UTC)


def period(start_text: str | None, end_text: str | None) -> tuple[datetime, datetime]:
    """The period asked for; by default the last 30 days. The end is exclusive."""
    end = parse_moment(end_text, "to") if end_text else utcnow()
    start = parse_moment(start_text, "from") if start_text else end - DEFAULT_PERIOD
    check_period(start, end)
    return start, end


def compute(session: Session, query: KpiQuery) -> list[KpiRow]:
    """Every registered KPI for the query, with its target and whether it is met."""
    check_period(query.start, query.end)
    query = with_now(query)  # one "now" for every provider
    _load_providers()
    commune_code = _commune_code(session, query)
    targets = _targets(session, query.tenant_id)
    rows: list[KpiRow] = []
    for provider in _providers:
        for value in provider(session, query):
            definition = _definitions[value.key]
            target = _target_for(targets, value, commune_code)
            rows.append(
                KpiRow(definition, value, commune_code, target, _met(definition, value, target))
            )
    return rows


def _commune_code(session: Session, query: KpiQuery) -> str:
    if query.commune_id is None:
        return ""
    codes = {c.id: c.insee_code for c in tenancy.list_communes(session, query.tenant_id)}
    return codes.get(query.commune_id, "")


def _target_for(
    targets: dict[tuple[str, str, str], float], value: KpiValue, commune_code: str
) -> float | None:
    """The most specific target: subject and commune, then subject, commune, neither."""
    for subject in (value.subject, ""):
        for commune in (commune_code, ""):
            found = targets.get((value.key, subject, commune))
            if found is not None:
                return found
    return None


def _met(definition: KpiDefinition, value: KpiValue, target: float | None) -> bool | None:
    if target is None or value.value is None:
        return None
    return value.value >= target if definition.higher_is_better else value.value <= target


# --- targets -------------------------------------------------------------------------


def _targets(session: Session, tenant_id: int) -> dict[tuple[str, str, str], float]:
    rows = session.scalars(select(KpiTarget).where(KpiTarget.tenant_id == tenant_id))
    return {(row.kpi_key, row.subject, row.commune_code): row.target for row in rows}


def list_targets(session: Session, tenant_id: int) -> list[KpiTarget]:
    return list(
        session.scalars(
            select(KpiTarget)
            .where(KpiTarget.tenant_id == tenant_id)
            .order_by(KpiTarget.kpi_key, KpiTarget.subject, KpiTarget.commune_code)
        )
    )


def set_target(
    session: Session,
    tenant_id: int,
    *,
    kpi_key: str,
    target: float,
    subject: str = "",
    commune_code: str = "",
) -> KpiTarget:
    known = definitions()
    definition = known.get(kpi_key)
    if definition is None:
        raise invalid("kpi", f"unknown KPI; one of {', '.join(sorted(known))}")
    if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target):
        raise invalid("target", "a finite number")
    if definition.unit is Unit.PERCENT and not 0 <= target <= 100:
        raise invalid("target", "a percentage between 0 and 100")
    if definition.unit is not Unit.PERCENT and target < 0:
        raise invalid("target", "must not be negative")
    subject = subject.strip()
    if len(subject) > 100:
        raise invalid("subject", "at most 100 characters")
    if commune_code:
        try:
            tenancy.get_commune(session, tenant_id, commune_code)
        except NotFound as error:
            raise invalid("commune", f"no commune {commune_code} in this tenant") from error
    row = session.scalar(
        select(KpiTarget).where(
            KpiTarget.tenant_id == tenant_id,
            KpiTarget.kpi_key == kpi_key,
            KpiTarget.subject == subject,
            KpiTarget.commune_code == commune_code,
        )
    )
    if row is None:
        row = KpiTarget(
            tenant_id=tenant_id, kpi_key=kpi_key, subject=subject, commune_code=commune_code
        )
        session.add(row)
    row.target = float(target)
    row.updated_at = utcnow()
    session.flush()
    return row


def delete_target(
    session: Session, tenant_id: int, *, kpi_key: str, subject: str = "", commune_code: str = ""
) -> None:
    result = session.execute(
        delete(KpiTarget).where(
            KpiTarget.tenant_id == tenant_id,
            KpiTarget.kpi_key == kpi_key,
            KpiTarget.subject == subject,
            KpiTarget.commune_code == commune_code,
        )
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"no target for {kpi_key}")


# --- work-order KPIs -----------------------------------------------------------------

WORK_ORDER_KPIS = [
    KpiDefinition(
        "work_orders.created",
        N_("Work orders created"),
        Unit.COUNT,
        higher_is_better=False,
        description="Work orders created in the period, cancelled ones left out.",
    ),
    KpiDefinition(
        "work_orders.resolved",
        N_("Work orders resolved"),
        Unit.COUNT,
        higher_is_better=True,
        description="Of the work orders created in the period, those done or closed now.",
    ),
    KpiDefinition(
        "work_orders.mean_time_to_acknowledge",
        N_("Work orders: mean time to acknowledge"),
        Unit.MINUTES,
        higher_is_better=False,
        description="From creation to first dispatch, for work orders created in the period.",
    ),
    KpiDefinition(
        "work_orders.mean_time_to_resolve",
        N_("Work orders: mean time to resolve"),
        Unit.MINUTES,
        higher_is_better=False,
        description="From creation to done, time on hold excluded.",
    ),
    KpiDefinition(
        "sla.acknowledge_compliance",
        N_("Service level met: acknowledge"),
        Unit.PERCENT,
        higher_is_better=True,
        description="Share of decided acknowledge clocks that met their target.",
    ),
    KpiDefinition(
        "sla.start_compliance",
        N_("Service level met: start"),
        Unit.PERCENT,
        higher_is_better=True,
        description="Share of decided start clocks that met their target.",
    ),
    KpiDefinition(
        "sla.resolve_compliance",
        N_("Service level met: resolve"),
        Unit.PERCENT,
        higher_is_better=True,
        description="Share of decided resolve clocks that met their target.",
    ),
]

COMPLIANCE_KEYS = {
    Milestone.ACKNOWLEDGE: "sla.acknowledge_compliance",
    Milestone.START: "sla.start_compliance",
    Milestone.RESOLVE: "sla.resolve_compliance",
}


def mean_or_none(values: Sequence[float]) -> float | None:
    return round(fmean(values), 2) if values else None


def work_order_kpis(session: Session, query: KpiQuery) -> list[KpiValue]:
    """Work orders created in the period (not cancelled), judged at the query's `now`.

    Compliance counts only decided clocks: met, or breached; a clock still running
    within its target is left out until it is decided.
    """
    now = query.now or utcnow()
    orders = [
        wo
        for wo in service.created_between(
            session, query.tenant_id, query.start, query.end, query.commune_id
        )
        if wo.status is not WorkOrderStatus.CANCELLED
    ]
    reports = service.sla_reports(session, query.tenant_id, orders, now)
    ack_times: list[float] = []
    resolve_times: list[float] = []
    decided: dict[Milestone, list[bool]] = {milestone: [] for milestone in Milestone}
    for order in orders:
        report = reports[order.id]
        acknowledged = report.clock(Milestone.ACKNOWLEDGE)
        if acknowledged.reached_at is not None:
            ack_times.append(acknowledged.elapsed_minutes)
        resolved = report.clock(Milestone.RESOLVE)
        if resolved.reached_at is not None:
            resolve_times.append(resolved.elapsed_minutes)
        for clock in report.clocks:
            if clock.state in (ClockState.MET, ClockState.BREACHED):
                decided[clock.milestone].append(clock.state is ClockState.MET)
    values = [
        KpiValue("work_orders.created", len(orders), len(orders)),
        KpiValue("work_orders.resolved", len(resolve_times), len(orders)),
        KpiValue("work_orders.mean_time_to_acknowledge", mean_or_none(ack_times), len(ack_times)),
        KpiValue(
            "work_orders.mean_time_to_resolve", mean_or_none(resolve_times), len(resolve_times)
        ),
    ]
    for milestone, outcomes in decided.items():
        share = round(100 * sum(outcomes) / len(outcomes), 2) if outcomes else None
        values.append(KpiValue(COMPLIANCE_KEYS[milestone], share, len(outcomes)))
    return values


register(WORK_ORDER_KPIS, work_order_kpis)


def with_now(query: KpiQuery) -> KpiQuery:
    return query if query.now is not None else replace(query, now=utcnow())
