"""Operations for a demo territory: teams, alarms and work orders at every stage.

Built from whatever the registry holds (the simulator's street lights, cabinets, waste
containers and water districts), so it works on any size of demo territory. Idempotent:
teams are created once, and alarms only when the tenant has none yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from territoire import events
from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.db.base import utcnow
from territoire.interventions import service
from territoire.interventions.models import Skill, Team
from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows

TEAMS: list[tuple[str, list[Skill], bool]] = [
    # name, skills, whether the tenant's field agents belong to it
    ("Équipe polyvalente", [Skill.LIGHTING, Skill.WATER, Skill.ROADS], True),
    ("Propreté et déchets", [Skill.WASTE, Skill.CLEANLINESS], False),
    ("Espaces verts", [Skill.GREEN_SPACES], False),
]


@dataclass
class OperationsReport:
    teams_added: int = 0
    alarms_added: int = 0
    work_orders_added: int = 0


def _first(session: Session, tenant_id: int, entity_type: str, count: int = 1) -> list[Any]:
    where = registry.EntityFilter(types=[entity_type])
    return registry.list_entities(session, tenant_id, where, limit=count).items


def ensure_teams(session: Session, tenant_id: int, report: OperationsReport) -> dict[str, Team]:
    existing = {team.name: team for team in service.list_teams(session, tenant_id)}
    agents = [
        user.id
        for user, role in tenancy.members_of(session, tenant_id)
        if allows(role, Permission.FIELD_WORK) and not allows(role, Permission.OPERATE)
    ]
    for name, skills, with_agents in TEAMS:
        if name not in existing:
            existing[name] = service.create_team(
                session,
                tenant_id,
                name=name,
                skills=skills,
                member_ids=agents if with_agents else [],
            )
            report.teams_added += 1
    return existing


def _lamps_of(session: Session, tenant_id: int, cabinet_urn: str, count: int) -> list[str]:
    lamps = _first(session, tenant_id, "Streetlight", 500)
    return [
        lamp.urn
        for lamp in lamps
        if lamp.relationships.get("refStreetlightControlCabinet") == cabinet_urn
    ][:count]


def _signal(
    rule: str, urn: str, severity: Severity, message: str, at: datetime, group: str | None = None
) -> alarms.AlarmSignal:
    return alarms.AlarmSignal(rule, urn, severity, message, at, None, group)


def _cabinet_fault(session: Session, tenant_id: int, now: datetime) -> int:
    """A cabinet out: three of its lamps dark, grouped under the cabinet's alarm."""
    cabinets = _first(session, tenant_id, "StreetlightControlCabinet")
    if not cabinets:
        return 0
    cabinet = cabinets[0]
    lamps = _lamps_of(session, tenant_id, cabinet.urn, 3)
    for index, urn in enumerate(lamps):
        moment = now - timedelta(minutes=90 - 5 * index)
        alarms.raise_alarm(
            session,
            tenant_id,
            _signal("lamp_out", urn, Severity.MAJOR, "Point lumineux éteint", moment, cabinet.urn),
        )
    alarms.raise_alarm(
        session,
        tenant_id,
        _signal(
            "cabinet_fault",
            cabinet.urn,
            Severity.CRITICAL,
            f"Armoire en défaut : {cabinet.name or cabinet.urn}",
            now - timedelta(minutes=70),
        ),
    )
    return len(lamps) + 1


def _waste_overflow(
    session: Session, tenant_id: int, teams: dict[str, Team], now: datetime
) -> tuple[int, int]:
    containers = _first(session, tenant_id, "WasteContainer")
    if not containers:
        return 0, 0
    alarm = alarms.raise_alarm(
        session,
        tenant_id,
        _signal(
            "container_full",
            containers[0].urn,
            Severity.MINOR,
            "Conteneur plein à 95 %",
            now - timedelta(hours=3),
        ),
    )
    options = alarms.WorkOrderOptions(team_id=teams["Propreté et déchets"].public_id)
    alarms.create_work_order(session, tenant_id, alarm.public_id, options, by_user=None)
    return 1, 1


def _water_leak(
    session: Session, tenant_id: int, teams: dict[str, Team], now: datetime
) -> tuple[int, int]:
    """A night-flow alarm two days old, acknowledged, with work in progress."""
    districts = _first(session, tenant_id, "WaterConsumptionObserved")
    if not districts:
        return 0, 0
    raised = now - timedelta(days=2)
    alarm = alarms.raise_alarm(
        session,
        tenant_id,
        _signal(
            "night_flow",
            districts[0].urn,
            Severity.MAJOR,
            "Débit de nuit au-dessus de la référence : fuite probable",
            raised,
        ),
    )
    alarms.acknowledge(
        session, tenant_id, alarm.public_id, by_user=None, at=raised + timedelta(minutes=25)
    )
    options = alarms.WorkOrderOptions(
        title="Rechercher la fuite du secteur", team_id=teams["Équipe polyvalente"].public_id
    )
    order = alarms.create_work_order(
        session,
        tenant_id,
        alarm.public_id,
        options,
        by_user=None,
        at=raised + timedelta(minutes=30),
    )
    service.transition(
        session, tenant_id, order.public_id, "start", by_user=None, at=raised + timedelta(hours=3)
    )
    return 1, 1


def _closed_history(
    session: Session, tenant_id: int, teams: dict[str, Team], now: datetime
) -> tuple[int, int]:
    """A lamp repaired last week, so that the indicators have something to show."""
    lamps = _first(session, tenant_id, "Streetlight", 20)
    if not lamps:
        return 0, 0
    urn = lamps[-1].urn
    raised = now - timedelta(days=6)
    alarm = alarms.raise_alarm(
        session,
        tenant_id,
        _signal("lamp_out", urn, Severity.MAJOR, "Point lumineux éteint", raised),
    )
    alarms.acknowledge(
        session, tenant_id, alarm.public_id, by_user=None, at=raised + timedelta(minutes=12)
    )
    options = alarms.WorkOrderOptions(
        title="Remplacer la lampe", team_id=teams["Équipe polyvalente"].public_id
    )
    order = alarms.create_work_order(
        session,
        tenant_id,
        alarm.public_id,
        options,
        by_user=None,
        at=raised + timedelta(minutes=20),
    )
    for action, hours in (("start", 3), ("done", 5), ("close", 20)):
        service.transition(
            session,
            tenant_id,
            order.public_id,
            action,
            by_user=None,
            at=raised + timedelta(hours=hours),
        )
    alarms.clear_alarm_condition(session, tenant_id, "lamp_out", urn, raised + timedelta(hours=5))
    return 1, 1


def seed_operations(
    session: Session, tenant_id: int, now: datetime | None = None
) -> OperationsReport:
    events.install_listeners()  # closing a work order must reach its alarm
    report = OperationsReport()
    teams = ensure_teams(session, tenant_id, report)
    if alarms.list_alarms(session, tenant_id, alarms.AlarmFilter(), limit=1).total:
        return report
    moment = now or utcnow()
    report.alarms_added += _cabinet_fault(session, tenant_id, moment)
    for step in (_waste_overflow, _water_leak, _closed_history):
        added_alarms, added_orders = step(session, tenant_id, teams, moment)
        report.alarms_added += added_alarms
        report.work_orders_added += added_orders
    return report
