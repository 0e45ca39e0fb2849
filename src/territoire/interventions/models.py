"""Tables of the interventions domain."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from territoire.db.base import Base, JSONType, UTCDateTime, enum_type, utcnow


class Skill(enum.StrEnum):
    LIGHTING = "lighting"
    WATER = "water"
    WASTE = "waste"
    ROADS = "roads"
    BUILDINGS = "buildings"
    PARKING = "parking"
    GREEN_SPACES = "green_spaces"
    CLEANLINESS = "cleanliness"
    OTHER = "other"


class Priority(enum.StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITY_RANK: dict[Priority, int] = {
    Priority.URGENT: 0,
    Priority.HIGH: 1,
    Priority.NORMAL: 2,
    Priority.LOW: 3,
}


class WorkOrderStatus(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    DONE = "done"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (
    WorkOrderStatus.NEW,
    WorkOrderStatus.ASSIGNED,
    WorkOrderStatus.IN_PROGRESS,
    WorkOrderStatus.ON_HOLD,
)


class SourceKind(enum.StrEnum):
    MANUAL = "manual"
    ALARM = "alarm"
    REQUEST = "request"


class Team(Base):
    """A team of agents with the skills it can be dispatched for."""

    __tablename__ = "team"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_member"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )


class WorkOrder(Base):
    """A job for a team: what, where, how urgent, and where it stands."""

    __tablename__ = "work_order"
    __table_args__ = (
        Index("ix_work_order_tenant_status", "tenant_id", "status"),
        Index("ix_work_order_tenant_created", "tenant_id", "created_at"),
        Index("ix_work_order_tenant_source", "tenant_id", "source_kind", "source_ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[Priority] = mapped_column(enum_type(Priority))
    skill: Mapped[Skill | None] = mapped_column(enum_type(Skill), nullable=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("team.id", ondelete="SET NULL"), nullable=True, index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True, index=True
    )
    entity_urn: Mapped[str | None] = mapped_column(String(255), nullable=True)
    entity_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    commune_id: Mapped[int | None] = mapped_column(
        ForeignKey("commune.id", ondelete="SET NULL"), nullable=True
    )
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    source_kind: Mapped[SourceKind] = mapped_column(enum_type(SourceKind))
    source_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[WorkOrderStatus] = mapped_column(enum_type(WorkOrderStatus))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class WorkOrderEvent(Base):
    """One line of a work order's history; status changes drive the service-level clocks."""

    __tablename__ = "work_order_event"
    __table_args__ = (Index("ix_work_order_event_order_at", "work_order_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_order.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[WorkOrderStatus | None] = mapped_column(
        enum_type(WorkOrderStatus), nullable=True
    )
    to_status: Mapped[WorkOrderStatus | None] = mapped_column(
        enum_type(WorkOrderStatus), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class FieldReport(Base):
    """What the agent did on site: text, time spent, parts used."""

    __tablename__ = "field_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_order.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    text: Mapped[str] = mapped_column(Text)
    minutes_spent: Mapped[int] = mapped_column(Integer, default=0)
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkOrderPhoto(Base):
    """A photo taken on site; the file lives under the uploads folder, named by public id."""

    __tablename__ = "work_order_photo"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_order.id", ondelete="CASCADE"), index=True
    )
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("field_report.id", ondelete="SET NULL"), nullable=True
    )
    stored_name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ServiceLevel(Base):
    """A tenant's service-level targets for one priority (defaults apply when absent)."""

    __tablename__ = "service_level"
    __table_args__ = (UniqueConstraint("tenant_id", "priority"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    priority: Mapped[Priority] = mapped_column(enum_type(Priority))
    acknowledge_minutes: Mapped[int] = mapped_column(Integer)
    start_minutes: Mapped[int] = mapped_column(Integer)
    resolve_minutes: Mapped[int] = mapped_column(Integer)


class KpiTarget(Base):
    """A contractual target for one KPI, for the whole tenant or one commune.

    `subject` narrows the KPI (an asset class such as Streetlight) and `commune_code`
    the area; the empty string means "all", so that the unique key needs no NULLs.
    """

    __tablename__ = "kpi_target"
    __table_args__ = (UniqueConstraint("tenant_id", "kpi_key", "subject", "commune_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    kpi_key: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(100), default="")
    commune_code: Mapped[str] = mapped_column(String(5), default="")
    target: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
