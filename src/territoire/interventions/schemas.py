"""Request and response types of the interventions API (teams, work orders, KPIs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from territoire.interventions.models import Priority, Skill, SourceKind, WorkOrderStatus
from territoire.interventions.sla import ClockState, Milestone


class Person(BaseModel):
    email: str
    full_name: str


# --- teams ---------------------------------------------------------------------------


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    skills: list[Skill] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list, description="E-mails of the members")


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    skills: list[Skill] | None = None
    members: list[str] | None = None


class TeamOut(BaseModel):
    id: str
    name: str
    skills: list[Skill]
    members: list[Person]


class TeamRef(BaseModel):
    id: str
    name: str


# --- work orders ---------------------------------------------------------------------


class WorkOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=10_000)
    priority: Priority = Priority.NORMAL
    skill: Skill | None = None
    team_id: str | None = Field(default=None, max_length=36)
    assignee: str | None = Field(default=None, max_length=254, description="E-mail of an agent")
    entity_urn: str | None = Field(default=None, max_length=255)
    location: dict[str, Any] | None = Field(default=None, description="GeoJSON Point")


class WorkOrderPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    priority: Priority | None = None
    skill: Skill | None = None
    entity_urn: str | None = Field(default=None, max_length=255)
    location: dict[str, Any] | None = None


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(max_length=32, description="assign, start, hold, resume, done, close…")
    note: str | None = Field(default=None, max_length=10_000)


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team_id: str | None = Field(default=None, max_length=36)
    assignee: str | None = Field(default=None, max_length=254, description="E-mail of an agent")
    note: str | None = Field(default=None, max_length=10_000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=10_000)


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    quantity: float = 1


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=10_000)
    minutes_spent: int = Field(default=0, ge=0)
    parts: list[PartIn] = Field(default_factory=list)


class ClockOut(BaseModel):
    milestone: Milestone
    target_minutes: int
    elapsed_minutes: float
    reached_at: datetime | None
    due_at: datetime | None
    state: ClockState


class SlaOut(BaseModel):
    breached: bool
    paused: bool
    clocks: list[ClockOut]


class WorkOrderOut(BaseModel):
    id: str
    title: str
    description: str
    priority: Priority
    skill: Skill | None
    status: WorkOrderStatus
    team: TeamRef | None
    assignee: Person | None
    entity_urn: str | None
    entity_type: str | None
    commune: str | None
    location: dict[str, Any] | None
    source_kind: SourceKind
    source_ref: str | None
    created_by: Person | None
    created_at: datetime
    updated_at: datetime
    sla: SlaOut
    actions: list[str] = Field(description="Lifecycle actions the current status allows")


class WorkOrderEventOut(BaseModel):
    at: datetime
    action: str
    from_status: WorkOrderStatus | None
    to_status: WorkOrderStatus | None
    by: Person | None
    note: str | None
    data: dict[str, Any]


class ReportOut(BaseModel):
    id: str
    author: Person | None
    text: str
    minutes_spent: int
    parts: list[dict[str, Any]]
    created_at: datetime


class PhotoOut(BaseModel):
    id: str
    content_type: str
    size_bytes: int
    sha256: str
    report_id: str | None
    url: str
    created_at: datetime


class WorkOrderDetailOut(WorkOrderOut):
    history: list[WorkOrderEventOut]
    reports: list[ReportOut]
    photos: list[PhotoOut]


class WorkOrderPageOut(BaseModel):
    items: list[WorkOrderOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ServiceLevelOut(BaseModel):
    """The targets of one priority, in minutes (also the body that sets them)."""

    model_config = ConfigDict(extra="forbid")
    priority: Priority
    acknowledge_minutes: int
    start_minutes: int
    resolve_minutes: int


# --- KPIs ----------------------------------------------------------------------------


class KpiDefinitionOut(BaseModel):
    key: str
    label: str
    unit: str
    higher_is_better: bool
    description: str


class KpiRowOut(BaseModel):
    key: str
    label: str
    unit: str
    subject: str
    commune: str | None
    value: float | None
    sample: int
    target: float | None
    met: bool | None
    higher_is_better: bool


class KpiReportOut(BaseModel):
    start: datetime
    end: datetime
    commune: str | None
    items: list[KpiRowOut]


class KpiTargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kpi: str = Field(max_length=64)
    subject: str = Field(default="", max_length=100)
    commune: str = Field(default="", max_length=5, description="INSEE code; empty = all")
    target: float


class KpiTargetOut(BaseModel):
    kpi: str
    subject: str
    commune: str
    target: float
    updated_at: datetime
