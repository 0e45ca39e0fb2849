"""telemetry: an index of a tenant's series in id order (the map's read of all of them)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_telemetry_series_tenant_id_id", "telemetry_series", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_telemetry_series_tenant_id_id", table_name="telemetry_series")
