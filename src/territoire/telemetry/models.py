"""Tables of the telemetry domain.

The observation and rollup tables are the hot, narrow ones: no ORM class, no foreign key
(a per-row check would cost as much as the insert itself; series ids only ever come from
`ensure_series`). Their time column is dialect-specific, chosen for size and speed:
INTEGER milliseconds since the Unix epoch (UTC) on SQLite, in WITHOUT ROWID tables;
`timestamptz` on PostgreSQL. `territoire.telemetry.store` converts at the edges.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from territoire.db.base import Base, JSONType, UTCDateTime, utcnow

# Epoch milliseconds on SQLite, timestamptz on PostgreSQL (see the module docstring).
TIMESTAMP_COLUMN = BigInteger().with_variant(DateTime(timezone=True), "postgresql")


class Device(Base):
    """Something that sends payloads: a LoRaWAN end device (DevEUI), a gateway, a meter."""

    __tablename__ = "telemetry_device"
    __table_args__ = (
        UniqueConstraint("tenant_id", "device_id"),
        Index("ix_telemetry_device_device_id", "device_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(255))
    payload_format: Mapped[str] = mapped_column(String(16))
    # field path in the decoded payload -> {"attribute": ..., "unit": ..., "scale": ...}
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Series(Base):
    """One measured property of one entity. Its last value and rollup bookkeeping, which
    change with every batch, live in the narrow `series_state` table (decision 0213)."""

    __tablename__ = "telemetry_series"
    __table_args__ = (
        UniqueConstraint("tenant_id", "entity", "attribute"),
        # A tenant's series in id order, for the map's read of all of them (no sort).
        Index("ix_telemetry_series_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(255))
    attribute: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# One row per series, rewritten by every batch that touches the series: the last value
# (the map's cache) and the rollups' bookkeeping. `dirty_since` is the oldest observation
# time written since the rollups were last refreshed; `dirty_generation` lets the refresh
# clear it only if nothing came since. Fixed-width columns and free room on each page
# (PostgreSQL fillfactor) keep the per-batch update in place (heap-only tuples). No
# foreign key, like `observation`: rows are only made by `ensure_series`.
series_state = Table(
    "telemetry_series_state",
    Base.metadata,
    Column("series_id", Integer, nullable=False),
    # Epoch milliseconds on both databases: compared and returned as they are, with no
    # conversion per row in the per-batch update or in the 50,000-series read.
    Column("last_ts", BigInteger, nullable=True),
    Column("last_value", Float, nullable=True),
    Column("dirty_since", BigInteger, nullable=True),
    Column("dirty_generation", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("series_id", name="pk_telemetry_series_state"),
    postgresql_with={"fillfactor": 50},
)


observation = Table(
    "observation",
    Base.metadata,
    Column("series_id", Integer, nullable=False),
    Column("ts", TIMESTAMP_COLUMN, nullable=False),
    Column("value", Float, nullable=False),
    PrimaryKeyConstraint("series_id", "ts", name="pk_observation"),
    sqlite_with_rowid=False,
)


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        Base.metadata,
        Column("series_id", Integer, nullable=False),
        Column("bucket", TIMESTAMP_COLUMN, nullable=False),
        Column("count", Integer, nullable=False),
        Column("sum", Float, nullable=False),
        Column("min", Float, nullable=False),
        Column("max", Float, nullable=False),
        PrimaryKeyConstraint("series_id", "bucket", name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


observation_hourly = _rollup_table("observation_hourly")
observation_daily = _rollup_table("observation_daily")


class DeadLetter(Base):
    """A rejected payload or reading, kept (bounded per tenant) so operators can see why."""

    __tablename__ = "telemetry_dead_letter"
    __table_args__ = (Index("ix_telemetry_dead_letter_tenant", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 0 when the tenant could not be told (unknown topic or token).
    tenant_id: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)


class RejectionCounter(Base):
    """How many readings or messages were refused, per tenant, source and reason."""

    __tablename__ = "telemetry_counter"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "source", "reason"),)

    tenant_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetentionPolicy(Base):
    """How long raw observations stay in the database before going to the lake."""

    __tablename__ = "telemetry_retention"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True
    )
    raw_days: Mapped[int] = mapped_column(Integer)
