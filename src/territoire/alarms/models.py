"""Tables of the alarms domain."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from territoire.db.base import Base, JSONType, UTCDateTime, enum_type, utcnow


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


# Most severe first: the console sorts by this rank.
SEVERITY_RANK: dict[Severity, int] = {
    Severity.CRITICAL: 0,
    Severity.MAJOR: 1,
    Severity.MINOR: 2,
    Severity.WARNING: 3,
}


class AlarmStatus(enum.StrEnum):
    UNACKNOWLEDGED = "active_unacknowledged"
    ACKNOWLEDGED = "active_acknowledged"
    CLEARED = "cleared"
    CLOSED = "closed"


ACTIVE_STATUSES = (AlarmStatus.UNACKNOWLEDGED, AlarmStatus.ACKNOWLEDGED)
ACTIVE_CONDITION = "status IN ('active_unacknowledged', 'active_acknowledged')"


class ClearKind(enum.StrEnum):
    AUTO = "auto"  # the condition ended (the rules engine said so)
    MANUAL = "manual"  # an operator cleared it


class Alarm(Base):
    """One alarm of one rule on one entity, from the first occurrence until it is closed.

    At most one alarm per (tenant, rule, entity) is active: a partial unique index
    enforces it, so that concurrent workers raising the same condition cannot duplicate it.
    """

    __tablename__ = "alarm"
    __table_args__ = (
        Index(
            "uq_alarm_active_rule_entity",
            "tenant_id",
            "rule_key",
            "entity_urn",
            unique=True,
            sqlite_where=text(ACTIVE_CONDITION),
            postgresql_where=text(ACTIVE_CONDITION),
        ),
        Index("ix_alarm_tenant_status", "tenant_id", "status"),
        Index("ix_alarm_tenant_raised", "tenant_id", "raised_at"),
        Index("ix_alarm_tenant_group", "tenant_id", "group_key"),
        Index("ix_alarm_tenant_entity", "tenant_id", "entity_urn"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    rule_key: Mapped[str] = mapped_column(String(100))
    entity_urn: Mapped[str] = mapped_column(String(255))
    entity_type: Mapped[str] = mapped_column(String(100))
    commune_id: Mapped[int | None] = mapped_column(
        ForeignKey("commune.id", ondelete="SET NULL"), nullable=True
    )
    group_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("alarm.id", ondelete="SET NULL"), nullable=True, index=True
    )
    severity: Mapped[Severity] = mapped_column(enum_type(Severity))
    status: Mapped[AlarmStatus] = mapped_column(enum_type(AlarmStatus))
    message: Mapped[str] = mapped_column(String(500))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    clear_kind: Mapped[ClearKind | None] = mapped_column(enum_type(ClearKind), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    # Public id of the work order dispatched for it (interventions domain, no foreign key
    # across domains) and when that work order was closed, awaiting data to confirm.
    work_order_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    fix_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    # Compare-and-set on every update: a lost update raises instead of passing silently.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class AlarmEvent(Base):
    """One line of an alarm's history: raised, acknowledged, comment, assignment…"""

    __tablename__ = "alarm_event"
    __table_args__ = (Index("ix_alarm_event_alarm_at", "alarm_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarm.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
