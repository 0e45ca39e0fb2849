"""telemetry: last values and rollup bookkeeping move to a narrow per-series state table

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Epoch milliseconds on SQLite, timestamptz on PostgreSQL (as in 0002); the new table
# keeps epoch milliseconds on both.
STORE_TIME = sa.BigInteger().with_variant(sa.DateTime(timezone=True), "postgresql")
MOVED = ("last_ts", "last_value", "dirty_since", "dirty_generation")


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def _ms(column: str) -> str:
    """A store time as epoch milliseconds (what the state table keeps on both databases)."""
    if _postgres():
        return f"CAST(round(extract(epoch FROM {column}) * 1000) AS bigint)"
    return column


def _time(column: str) -> str:
    if _postgres():
        return f"to_timestamp({column} / 1000.0)"
    return column


def upgrade() -> None:
    op.create_table(
        "telemetry_series_state",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("dirty_since", sa.BigInteger(), nullable=True),
        sa.Column("dirty_generation", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("series_id", name="pk_telemetry_series_state"),
        postgresql_with={"fillfactor": 50},
    )
    columns = ", ".join(MOVED)
    op.execute(
        f"INSERT INTO telemetry_series_state (series_id, {columns}) "
        f"SELECT id, {_ms('last_ts')}, last_value, {_ms('dirty_since')}, dirty_generation "
        "FROM telemetry_series"
    )
    for column in MOVED:
        op.drop_column("telemetry_series", column)


def downgrade() -> None:
    op.add_column("telemetry_series", sa.Column("last_ts", STORE_TIME, nullable=True))
    op.add_column("telemetry_series", sa.Column("last_value", sa.Float(), nullable=True))
    op.add_column("telemetry_series", sa.Column("dirty_since", STORE_TIME, nullable=True))
    op.add_column(
        "telemetry_series",
        sa.Column("dirty_generation", sa.Integer(), server_default="0", nullable=False),
    )
    op.execute(
        f"UPDATE telemetry_series SET last_ts = {_time('s.last_ts')}, "
        f"last_value = s.last_value, dirty_since = {_time('s.dirty_since')}, "
        "dirty_generation = s.dirty_generation "
        "FROM telemetry_series_state AS s WHERE s.series_id = telemetry_series.id"
    )
    op.drop_table("telemetry_series_state")
