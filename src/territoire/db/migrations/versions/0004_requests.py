"""citizen requests: categories, routing, requests, history, contacts apart, photos,
followers, notification outbox, answer templates, Open311 client keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Plain tables and B-tree indexes only, identical on SQLite and PostgreSQL. Enumerations
are VARCHAR columns (no PostgreSQL ENUM type to migrate when a status is added).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STATUSES = (
    "open",
    "investigating",
    "in_progress",
    "action_scheduled",
    "fixed",
    "closed",
    "duplicate",
    "not_councils_responsibility",
    "no_further_action",
    "internal_referral",
    "reopened",
)
STATUS = sa.Enum(*STATUSES, name="status", native_enum=False, length=32)
CHANNEL = sa.Enum(
    "web",
    "open311",
    "phone",
    "desk",
    "mail",
    "social",
    name="channel",
    native_enum=False,
    length=32,
)
UPDATE_SOURCE = sa.Enum(
    "agent",
    "citizen",
    "open311",
    "work_order",
    "system",
    name="updatesource",
    native_enum=False,
    length=32,
)
OUTBOX_STATE = sa.Enum(
    "pending", "sent", "failed", name="outboxstate", native_enum=False, length=32
)


def upgrade() -> None:
    op.create_table(
        "open311_api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_open311_api_key_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_api_key_key_hash")),
        sa.UniqueConstraint("public_id", name=op.f("uq_open311_api_key_public_id")),
    )
    op.create_index(
        op.f("ix_open311_api_key_tenant_id"), "open311_api_key", ["tenant_id"], unique=False
    )
    op.create_table(
        "request_answer_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", STATUS, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_answer_template_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_answer_template")),
        sa.UniqueConstraint("public_id", name=op.f("uq_request_answer_template_public_id")),
        sa.UniqueConstraint(
            "tenant_id", "title", name=op.f("uq_request_answer_template_tenant_id_title")
        ),
    )
    op.create_table(
        "request_category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("group", sa.String(length=100), nullable=False),
        sa.Column("keywords", sa.String(length=500), nullable=False),
        sa.Column("notice", sa.Text(), nullable=False),
        sa.Column("service_notice", sa.Text(), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("duplicate_radius_m", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_category_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_category")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_request_category_tenant_id_code")),
    )
    op.create_index(
        op.f("ix_request_category_tenant_id"), "request_category", ["tenant_id"], unique=False
    )
    op.create_table(
        "request_tenant_settings",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("contact_retention_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_tenant_settings_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_request_tenant_settings")),
    )
    op.create_table(
        "citizen_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("address_id", sa.String(length=100), nullable=True),
        sa.Column("commune_id", sa.Integer(), nullable=True),
        sa.Column("channel", CHANNEL, nullable=False),
        sa.Column("entered_by", sa.Integer(), nullable=True),
        sa.Column("media_url", sa.String(length=500), nullable=True),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("work_order_id", sa.String(length=64), nullable=True),
        sa.Column("duplicate_of_id", sa.Integer(), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("redacted_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("contact_erased_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["request_category.id"],
            name=op.f("fk_citizen_request_category_id_request_category"),
        ),
        sa.ForeignKeyConstraint(
            ["commune_id"],
            ["commune.id"],
            name=op.f("fk_citizen_request_commune_id_commune"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"],
            ["citizen_request.id"],
            name=op.f("fk_citizen_request_duplicate_of_id_citizen_request"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entered_by"],
            ["user_account.id"],
            name=op.f("fk_citizen_request_entered_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_citizen_request_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_request")),
        sa.UniqueConstraint("code", name=op.f("uq_citizen_request_code")),
        sa.UniqueConstraint("public_id", name=op.f("uq_citizen_request_public_id")),
    )
    op.create_index(
        "ix_citizen_request_tenant_category",
        "citizen_request",
        ["tenant_id", "category_id", "lat", "lon"],
        unique=False,
    )
    op.create_index(
        "ix_citizen_request_tenant_created",
        "citizen_request",
        ["tenant_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_citizen_request_tenant_status", "citizen_request", ["tenant_id", "status"], unique=False
    )
    op.create_table(
        "request_routing_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("commune_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.String(length=36), nullable=True),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("skill", sa.String(length=64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["request_category.id"],
            name=op.f("fk_request_routing_rule_category_id_request_category"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["commune_id"],
            ["commune.id"],
            name=op.f("fk_request_routing_rule_commune_id_commune"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_routing_rule_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_routing_rule")),
    )
    op.create_index(
        op.f("ix_request_routing_rule_tenant_id"),
        "request_routing_rule",
        ["tenant_id"],
        unique=False,
    )
    op.create_table(
        "request_contact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["citizen_request.id"],
            name=op.f("fk_request_contact_request_id_citizen_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_contact_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_contact")),
        sa.UniqueConstraint("request_id", name=op.f("uq_request_contact_request_id")),
    )
    op.create_table(
        "request_contact_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("fields", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=300), nullable=False),
        sa.Column("accessed_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["citizen_request.id"],
            name=op.f("fk_request_contact_access_request_id_citizen_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_contact_access_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_request_contact_access_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_contact_access")),
    )
    op.create_index(
        op.f("ix_request_contact_access_request_id"),
        "request_contact_access",
        ["request_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_request_contact_access_tenant_id"),
        "request_contact_access",
        ["tenant_id"],
        unique=False,
    )
    op.create_table(
        "request_follower",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("unsubscribed_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["citizen_request.id"],
            name=op.f("fk_request_follower_request_id_citizen_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_follower_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_follower")),
        sa.UniqueConstraint(
            "request_id", "email", name=op.f("uq_request_follower_request_id_email")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_request_follower_token")),
    )
    op.create_index(
        op.f("ix_request_follower_request_id"), "request_follower", ["request_id"], unique=False
    )
    op.create_table(
        "request_photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("exif_lat", sa.Float(), nullable=True),
        sa.Column("exif_lon", sa.Float(), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("redacted_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["citizen_request.id"],
            name=op.f("fk_request_photo_request_id_citizen_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_photo_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_photo")),
        sa.UniqueConstraint("public_id", name=op.f("uq_request_photo_public_id")),
    )
    op.create_index(
        op.f("ix_request_photo_request_id"), "request_photo", ["request_id"], unique=False
    )
    op.create_table(
        "request_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("old_status", STATUS, nullable=True),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("source", UPDATE_SOURCE, nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("media_url", sa.String(length=500), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["open311_api_key.id"],
            name=op.f("fk_request_update_api_key_id_open311_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_request_update_author_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["citizen_request.id"],
            name=op.f("fk_request_update_request_id_citizen_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_update_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_update")),
        sa.UniqueConstraint(
            "api_key_id", "external_id", name=op.f("uq_request_update_api_key_id_external_id")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_request_update_public_id")),
    )
    op.create_index(
        op.f("ix_request_update_request_id"), "request_update", ["request_id"], unique=False
    )
    op.create_index(
        "ix_request_update_tenant_created",
        "request_update",
        ["tenant_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "request_notification_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.Integer(), nullable=True),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("state", OUTBOX_STATE, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["request_follower.id"],
            name=op.f("fk_request_notification_outbox_follower_id_request_follower"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["citizen_request.id"],
            name=op.f("fk_request_notification_outbox_request_id_citizen_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_request_notification_outbox_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["update_id"],
            ["request_update.id"],
            name=op.f("fk_request_notification_outbox_update_id_request_update"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_notification_outbox")),
    )
    op.create_index(
        op.f("ix_request_notification_outbox_follower_id"),
        "request_notification_outbox",
        ["follower_id"],
        unique=False,
    )
    op.create_index(
        "ix_request_outbox_state_created",
        "request_notification_outbox",
        ["state", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_request_notification_outbox_follower_id", table_name="request_notification_outbox"
    )
    op.drop_index("ix_request_outbox_state_created", table_name="request_notification_outbox")
    op.drop_table("request_notification_outbox")
    op.drop_index("ix_request_update_request_id", table_name="request_update")
    op.drop_index("ix_request_update_tenant_created", table_name="request_update")
    op.drop_table("request_update")
    op.drop_index("ix_request_photo_request_id", table_name="request_photo")
    op.drop_table("request_photo")
    op.drop_index("ix_request_follower_request_id", table_name="request_follower")
    op.drop_table("request_follower")
    op.drop_index("ix_request_contact_access_request_id", table_name="request_contact_access")
    op.drop_index("ix_request_contact_access_tenant_id", table_name="request_contact_access")
    op.drop_table("request_contact_access")
    op.drop_table("request_contact")
    op.drop_index("ix_request_routing_rule_tenant_id", table_name="request_routing_rule")
    op.drop_table("request_routing_rule")
    op.drop_index("ix_citizen_request_tenant_category", table_name="citizen_request")
    op.drop_index("ix_citizen_request_tenant_created", table_name="citizen_request")
    op.drop_index("ix_citizen_request_tenant_status", table_name="citizen_request")
    op.drop_table("citizen_request")
    op.drop_table("request_tenant_settings")
    op.drop_index("ix_request_category_tenant_id", table_name="request_category")
    op.drop_table("request_category")
    op.drop_table("request_answer_template")
    op.drop_index("ix_open311_api_key_tenant_id", table_name="open311_api_key")
    op.drop_table("open311_api_key")
