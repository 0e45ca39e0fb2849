"""alarms and interventions: alarms with history, teams, work orders, reports, targets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

One active alarm per (tenant, rule, entity) is enforced by a partial unique index, which
both SQLite and PostgreSQL support with the same WHERE clause.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ACTIVE_CONDITION = "status IN ('active_unacknowledged', 'active_acknowledged')"


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


SEVERITY = _enum("severity", "critical", "major", "minor", "warning")
ALARM_STATUS = _enum(
    "alarmstatus", "active_unacknowledged", "active_acknowledged", "cleared", "closed"
)
CLEAR_KIND = _enum("clearkind", "auto", "manual")
PRIORITY = _enum("priority", "urgent", "high", "normal", "low")
SKILL = _enum(
    "skill",
    "lighting",
    "water",
    "waste",
    "roads",
    "buildings",
    "parking",
    "green_spaces",
    "cleanliness",
    "other",
)
WORK_ORDER_STATUS = _enum(
    "workorderstatus", "new", "assigned", "in_progress", "on_hold", "done", "closed", "cancelled"
)
SOURCE_KIND = _enum("sourcekind", "manual", "alarm", "request")


def _user_fk(table: str, column: str, ondelete: str = "SET NULL") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        ["user_account.id"],
        name=op.f(f"fk_{table}_{column}_user_account"),
        ondelete=ondelete,
    )


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenant.id"], name=op.f(f"fk_{table}_tenant_id_tenant"), ondelete="CASCADE"
    )


def _commune_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["commune_id"],
        ["commune.id"],
        name=op.f(f"fk_{table}_commune_id_commune"),
        ondelete="SET NULL",
    )


def _create_alarm_tables() -> None:
    op.create_table(
        "alarm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("rule_key", sa.String(length=100), nullable=False),
        sa.Column("entity_urn", sa.String(length=255), nullable=False),
        sa.Column("entity_type", sa.String(length=100), nullable=False),
        sa.Column("commune_id", sa.Integer(), nullable=True),
        sa.Column("group_key", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("severity", SEVERITY, nullable=False),
        sa.Column("status", ALARM_STATUS, nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("raised_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("cleared_at", TIMESTAMP, nullable=True),
        sa.Column("cleared_by", sa.Integer(), nullable=True),
        sa.Column("clear_kind", CLEAR_KIND, nullable=True),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("work_order_id", sa.String(length=36), nullable=True),
        sa.Column("fix_reported_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _user_fk("alarm", "acknowledged_by"),
        _user_fk("alarm", "assignee_id"),
        _user_fk("alarm", "cleared_by"),
        _user_fk("alarm", "closed_by"),
        _commune_fk("alarm"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["alarm.id"], name=op.f("fk_alarm_parent_id_alarm"), ondelete="SET NULL"
        ),
        _tenant_fk("alarm"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm")),
        sa.UniqueConstraint("public_id", name=op.f("uq_alarm_public_id")),
    )
    op.create_index(op.f("ix_alarm_parent_id"), "alarm", ["parent_id"], unique=False)
    op.create_index("ix_alarm_tenant_entity", "alarm", ["tenant_id", "entity_urn"])
    op.create_index("ix_alarm_tenant_group", "alarm", ["tenant_id", "group_key"])
    op.create_index("ix_alarm_tenant_raised", "alarm", ["tenant_id", "raised_at"])
    op.create_index("ix_alarm_tenant_status", "alarm", ["tenant_id", "status"])
    op.create_index(
        "uq_alarm_active_rule_entity",
        "alarm",
        ["tenant_id", "rule_key", "entity_urn"],
        unique=True,
        sqlite_where=sa.text(ACTIVE_CONDITION),
        postgresql_where=sa.text(ACTIVE_CONDITION),
    )
    op.create_table(
        "alarm_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarm.id"],
            name=op.f("fk_alarm_event_alarm_id_alarm"),
            ondelete="CASCADE",
        ),
        _user_fk("alarm_event", "user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_event")),
    )
    op.create_index("ix_alarm_event_alarm_at", "alarm_event", ["alarm_id", "at"])


def _create_team_tables() -> None:
    op.create_table(
        "team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("skills", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _tenant_fk("team"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("public_id", name=op.f("uq_team_public_id")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_team_tenant_id_name")),
    )
    op.create_index(op.f("ix_team_tenant_id"), "team", ["tenant_id"])
    op.create_table(
        "team_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_team_member_team_id_team"), ondelete="CASCADE"
        ),
        _user_fk("team_member", "user_id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_member")),
        sa.UniqueConstraint("team_id", "user_id", name=op.f("uq_team_member_team_id_user_id")),
    )
    op.create_index(op.f("ix_team_member_user_id"), "team_member", ["user_id"])


def _create_work_order_tables() -> None:
    op.create_table(
        "work_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("priority", PRIORITY, nullable=False),
        sa.Column("skill", SKILL, nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("entity_urn", sa.String(length=255), nullable=True),
        sa.Column("entity_type", sa.String(length=100), nullable=True),
        sa.Column("commune_id", sa.Integer(), nullable=True),
        sa.Column("location", JSON, nullable=True),
        sa.Column("source_kind", SOURCE_KIND, nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=True),
        sa.Column("status", WORK_ORDER_STATUS, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _user_fk("work_order", "assignee_id"),
        _user_fk("work_order", "created_by"),
        _commune_fk("work_order"),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_work_order_team_id_team"), ondelete="SET NULL"
        ),
        _tenant_fk("work_order"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order")),
        sa.UniqueConstraint("public_id", name=op.f("uq_work_order_public_id")),
    )
    op.create_index(op.f("ix_work_order_assignee_id"), "work_order", ["assignee_id"])
    op.create_index(op.f("ix_work_order_team_id"), "work_order", ["team_id"])
    op.create_index("ix_work_order_tenant_created", "work_order", ["tenant_id", "created_at"])
    op.create_index(
        "ix_work_order_tenant_source", "work_order", ["tenant_id", "source_kind", "source_ref"]
    )
    op.create_index("ix_work_order_tenant_status", "work_order", ["tenant_id", "status"])
    op.create_table(
        "work_order_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", WORK_ORDER_STATUS, nullable=True),
        sa.Column("to_status", WORK_ORDER_STATUS, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", JSON, nullable=False),
        _user_fk("work_order_event", "user_id"),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_order.id"],
            name=op.f("fk_work_order_event_work_order_id_work_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_event")),
    )
    op.create_index("ix_work_order_event_order_at", "work_order_event", ["work_order_id", "at"])


def _create_report_tables() -> None:
    op.create_table(
        "field_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("minutes_spent", sa.Integer(), nullable=False),
        sa.Column("parts", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _user_fk("field_report", "author_id"),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_order.id"],
            name=op.f("fk_field_report_work_order_id_work_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_report")),
        sa.UniqueConstraint("public_id", name=op.f("uq_field_report_public_id")),
    )
    op.create_index(op.f("ix_field_report_work_order_id"), "field_report", ["work_order_id"])
    op.create_table(
        "work_order_photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("stored_name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=50), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["field_report.id"],
            name=op.f("fk_work_order_photo_report_id_field_report"),
            ondelete="SET NULL",
        ),
        _user_fk("work_order_photo", "uploaded_by"),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_order.id"],
            name=op.f("fk_work_order_photo_work_order_id_work_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_photo")),
        sa.UniqueConstraint("public_id", name=op.f("uq_work_order_photo_public_id")),
    )
    op.create_index(
        op.f("ix_work_order_photo_work_order_id"), "work_order_photo", ["work_order_id"]
    )


def _create_target_tables() -> None:
    op.create_table(
        "service_level",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("priority", PRIORITY, nullable=False),
        sa.Column("acknowledge_minutes", sa.Integer(), nullable=False),
        sa.Column("start_minutes", sa.Integer(), nullable=False),
        sa.Column("resolve_minutes", sa.Integer(), nullable=False),
        _tenant_fk("service_level"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_level")),
        sa.UniqueConstraint(
            "tenant_id", "priority", name=op.f("uq_service_level_tenant_id_priority")
        ),
    )
    op.create_table(
        "kpi_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("kpi_key", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("commune_code", sa.String(length=5), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _tenant_fk("kpi_target"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_target")),
        sa.UniqueConstraint(
            "tenant_id",
            "kpi_key",
            "subject",
            "commune_code",
            name=op.f("uq_kpi_target_tenant_id_kpi_key_subject_commune_code"),
        ),
    )


def upgrade() -> None:
    _create_alarm_tables()
    _create_team_tables()
    _create_work_order_tables()
    _create_report_tables()
    _create_target_tables()


def downgrade() -> None:
    for table in (
        "kpi_target",
        "service_level",
        "work_order_photo",
        "field_report",
        "work_order_event",
        "work_order",
        "team_member",
        "team",
        "alarm_event",
    ):
        op.drop_table(table)
    op.drop_index("uq_alarm_active_rule_entity", table_name="alarm")
    op.drop_table("alarm")
