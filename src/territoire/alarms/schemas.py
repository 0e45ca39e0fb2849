"""Request and response types of the alarms API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from territoire.alarms.models import AlarmStatus, ClearKind, Severity
from territoire.interventions.models import Priority, Skill
from territoire.interventions.schemas import Person


class AlarmIn(BaseModel):
    """An alarm reported by an external system or an operator (rules use the service)."""

    model_config = ConfigDict(extra="forbid")
    rule_key: str = Field(max_length=100, description="What detected it, e.g. lamp_out")
    entity_urn: str = Field(max_length=255, description="URN of the entity in the registry")
    severity: Severity
    message: str = Field(max_length=500)
    observed_at: datetime | None = Field(default=None, description="Now when absent")
    value: float | None = None
    group_key: str | None = Field(
        default=None, max_length=255, description="URN of the grouping entity (cabinet…)"
    )


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=2000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(description="E-mail of the person; null takes it back")


class AlarmWorkOrderIn(BaseModel):
    """Everything is optional: priority follows severity, skill the entity's domain."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    priority: Priority | None = None
    skill: Skill | None = None
    team_id: str | None = Field(default=None, max_length=36)


class AlarmOut(BaseModel):
    id: str
    rule_key: str
    entity_urn: str
    entity_type: str
    commune: str | None
    severity: Severity
    status: AlarmStatus
    message: str
    value: float | None
    occurrences: int
    raised_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: Person | None
    cleared_at: datetime | None
    clear_kind: ClearKind | None
    closed_at: datetime | None
    assignee: Person | None
    group_key: str | None
    parent_id: str | None
    children: int
    work_order_id: str | None
    fix_reported_at: datetime | None


class AlarmEventOut(BaseModel):
    at: datetime
    kind: str
    by: Person | None
    text: str | None
    data: dict[str, Any]


class AlarmDetailOut(AlarmOut):
    history: list[AlarmEventOut]
    child_alarms: list[AlarmOut]


class AlarmPageOut(BaseModel):
    items: list[AlarmOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None
