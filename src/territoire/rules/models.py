"""Tables of the rules domain: rules, their version history, and per-subject state.

A rule's current definition lives in `rule`; every edit also writes a `rule_version`
row, so the algorithm register can show what a rule did at any date. `rule_state` holds
what a rule must remember between batches (counters, baselines, whether its condition
holds) for one subject — a series, an entity or a group such as a lighting cabinet — so
that any worker can evaluate any series.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from territoire.alarms.models import Severity
from territoire.db.base import Base, JSONType, UTCDateTime, enum_type, utcnow


class PackedState(TypeDecorator[dict[str, Any]]):
    """Rule state as compact JSON text. It is read and written for every subject of
    every batch, and never queried inside: orjson is several times faster than the
    generic JSON column, and a plain text column costs nothing to index or parse."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str:
        return orjson.dumps(value or {}).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any]:
        return dict(orjson.loads(value)) if value else {}


class Rule(Base):
    __tablename__ = "rule"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        Index("ix_rule_tenant_kind", "tenant_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    # Stable key, used as the alarms' rule key: it never changes once given.
    key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    scope: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    severity: Mapped[Severity] = mapped_column(enum_type(Severity))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description_fr: Mapped[str] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RuleVersion(Base):
    """One version of a rule's definition, as it was when saved (never changed after)."""

    __tablename__ = "rule_version"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rule.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    scope: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    severity: Mapped[Severity] = mapped_column(enum_type(Severity))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description_fr: Mapped[str] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )


class RuleState(Base):
    """What one rule remembers about one subject between evaluations."""

    __tablename__ = "rule_state"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("rule.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    state: Mapped[dict[str, Any]] = mapped_column(PackedState(), default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
