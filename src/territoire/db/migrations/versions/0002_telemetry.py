"""telemetry: devices, series, observations, rollups, dead letters, counters, retention

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Observation and rollup tables keep their time as INTEGER epoch milliseconds in WITHOUT
ROWID tables on SQLite, and as timestamptz on PostgreSQL (see docs/telemetry.md).
On PostgreSQL a BRIN index on observation time serves the retention sweep at almost no
write cost, since rows arrive roughly in time order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STORE_TIME = sa.BigInteger().with_variant(sa.DateTime(timezone=True), "postgresql")


def _rollup(name: str) -> None:
    op.create_table(
        name,
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("bucket", STORE_TIME, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("series_id", "bucket", name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    op.create_table(
        "telemetry_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=255), nullable=False),
        sa.Column("payload_format", sa.String(length=16), nullable=False),
        sa.Column("mapping", JSON, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name="fk_telemetry_device_tenant_id_tenant",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_telemetry_device"),
        sa.UniqueConstraint(
            "tenant_id", "device_id", name="uq_telemetry_device_tenant_id_device_id"
        ),
        sa.UniqueConstraint("token_hash", name="uq_telemetry_device_token_hash"),
    )
    op.create_index("ix_telemetry_device_device_id", "telemetry_device", ["device_id"])
    op.create_table(
        "telemetry_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=255), nullable=False),
        sa.Column("attribute", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=True),
        sa.Column("last_ts", STORE_TIME, nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("dirty_since", STORE_TIME, nullable=True),
        sa.Column("dirty_generation", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name="fk_telemetry_series_tenant_id_tenant",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_telemetry_series"),
        sa.UniqueConstraint(
            "tenant_id",
            "entity",
            "attribute",
            name="uq_telemetry_series_tenant_id_entity_attribute",
        ),
    )
    op.create_table(
        "observation",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("ts", STORE_TIME, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("series_id", "ts", name="pk_observation"),
        sqlite_with_rowid=False,
    )
    _rollup("observation_hourly")
    _rollup("observation_daily")
    op.create_table(
        "telemetry_dead_letter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_telemetry_dead_letter"),
    )
    op.create_index("ix_telemetry_dead_letter_tenant", "telemetry_dead_letter", ["tenant_id", "id"])
    op.create_table(
        "telemetry_counter",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "source", "reason", name="pk_telemetry_counter"),
    )
    op.create_table(
        "telemetry_retention",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("raw_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name="fk_telemetry_retention_tenant_id_tenant",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_telemetry_retention"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_observation_ts_brin ON observation USING brin (ts)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_observation_ts_brin")
    op.drop_table("telemetry_retention")
    op.drop_table("telemetry_counter")
    op.drop_index("ix_telemetry_dead_letter_tenant", table_name="telemetry_dead_letter")
    op.drop_table("telemetry_dead_letter")
    op.drop_table("observation_daily")
    op.drop_table("observation_hourly")
    op.drop_table("observation")
    op.drop_table("telemetry_series")
    op.drop_index("ix_telemetry_device_device_id", table_name="telemetry_device")
    op.drop_table("telemetry_device")
