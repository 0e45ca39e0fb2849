"""Tables of the citizen requests domain.

Personal data (the reporter's contact, followers' e-mail addresses) lives in tables of its
own so that it can be shown only to authorised agents, logged on every view and erased
by the retention job without touching the request itself.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from territoire.db.base import Base, JSONType, UTCDateTime, enum_type, utcnow


class Status(enum.StrEnum):
    """The extended Open311 status set (FixMyStreet's names), plus `reopened`."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    IN_PROGRESS = "in_progress"
    ACTION_SCHEDULED = "action_scheduled"
    FIXED = "fixed"
    CLOSED = "closed"
    DUPLICATE = "duplicate"
    NOT_RESPONSIBLE = "not_councils_responsibility"
    NO_FURTHER_ACTION = "no_further_action"
    INTERNAL_REFERRAL = "internal_referral"
    REOPENED = "reopened"


CLOSED_STATUSES = frozenset(
    {
        Status.FIXED,
        Status.CLOSED,
        Status.DUPLICATE,
        Status.NOT_RESPONSIBLE,
        Status.NO_FURTHER_ACTION,
        Status.INTERNAL_REFERRAL,
    }
)


class Channel(enum.StrEnum):
    """How a request reached the authority; agent-assisted channels keep people offline served."""

    WEB = "web"
    OPEN311 = "open311"
    PHONE = "phone"
    DESK = "desk"
    MAIL = "mail"
    SOCIAL = "social"


ASSISTED_CHANNELS = frozenset({Channel.PHONE, Channel.DESK, Channel.MAIL, Channel.SOCIAL})


class UpdateSource(enum.StrEnum):
    AGENT = "agent"
    CITIZEN = "citizen"
    OPEN311 = "open311"
    WORK_ORDER = "work_order"
    SYSTEM = "system"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Category(Base):
    """A kind of request (Open311 service) offered by one tenant."""

    __tablename__ = "request_category"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    group: Mapped[str] = mapped_column(String(100), default="")
    keywords: Mapped[str] = mapped_column(String(500), default="")
    notice: Mapped[str] = mapped_column(Text, default="")
    service_notice: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    duplicate_radius_m: Mapped[int] = mapped_column(Integer, default=50)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RoutingRule(Base):
    """Category and commune → team. Empty category or commune means any; the most
    specific rule wins."""

    __tablename__ = "request_routing_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("request_category.id", ondelete="CASCADE"), nullable=True
    )
    commune_id: Mapped[int | None] = mapped_column(
        ForeignKey("commune.id", ondelete="CASCADE"), nullable=True
    )
    # The interventions domain owns teams: only the team's public id is kept here.
    team_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    agency: Mapped[str] = mapped_column(String(200), default="")
    skill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CitizenRequest(Base):
    """A report from a resident (signalement). `code` is the public tracking number."""

    __tablename__ = "citizen_request"
    __table_args__ = (
        Index("ix_citizen_request_tenant_status", "tenant_id", "status"),
        Index("ix_citizen_request_tenant_created", "tenant_id", "created_at"),
        Index("ix_citizen_request_tenant_category", "tenant_id", "category_id", "lat", "lon"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("request_category.id"))
    status: Mapped[Status] = mapped_column(enum_type(Status), default=Status.OPEN)
    description: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    address_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    commune_id: Mapped[int | None] = mapped_column(
        ForeignKey("commune.id", ondelete="SET NULL"), nullable=True
    )
    channel: Mapped[Channel] = mapped_column(enum_type(Channel), default=Channel.WEB)
    entered_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    media_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    team_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    agency: Mapped[str] = mapped_column(String(200), default="")
    work_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizen_request.id", ondelete="SET NULL"), nullable=True
    )
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    contact_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RequestUpdate(Base):
    """One step of a request's history: a status change and/or a public answer, or an
    internal note. Public ones are Open311 `servicerequestupdates`."""

    __tablename__ = "request_update"
    __table_args__ = (
        Index("ix_request_update_tenant_created", "tenant_id", "created_at"),
        UniqueConstraint("api_key_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(
        ForeignKey("citizen_request.id", ondelete="CASCADE"), index=True
    )
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    old_status: Mapped[Status | None] = mapped_column(enum_type(Status), nullable=True)
    status: Mapped[Status] = mapped_column(enum_type(Status))
    note: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[UpdateSource] = mapped_column(enum_type(UpdateSource))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("open311_api_key.id", ondelete="SET NULL"), nullable=True
    )
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    media_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contact(Base):
    """The reporter's contact details, apart from the request (personal data)."""

    __tablename__ = "request_contact"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(
        ForeignKey("citizen_request.id", ondelete="CASCADE"), unique=True
    )
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    first_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ContactAccess(Base):
    """Every view of personal data by an agent: who, when, what and why."""

    __tablename__ = "request_contact_access"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("citizen_request.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
    )
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fields: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(300))
    accessed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Follower(Base):
    """An e-mail address informed of a request's public changes (personal data)."""

    __tablename__ = "request_follower"
    __table_args__ = (UniqueConstraint("request_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(
        ForeignKey("citizen_request.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Photo(Base):
    """An uploaded image, re-encoded without metadata; hidden ones are never served publicly."""

    __tablename__ = "request_photo"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(
        ForeignKey("citizen_request.id", ondelete="CASCADE"), index=True
    )
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    path: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    exif_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    exif_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AnswerTemplate(Base):
    """A reusable public answer, optionally with the status it usually goes with."""

    __tablename__ = "request_answer_template"
    __table_args__ = (UniqueConstraint("tenant_id", "title"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[Status | None] = mapped_column(enum_type(Status), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Open311Key(Base):
    """An `api_key` given to an Open311 client (a mobile app, a partner's CRM).

    Only a hash is stored. A trusted key (the authority's own systems) may change
    statuses through servicerequestupdates; others may only add comments.
    """

    __tablename__ = "open311_api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TenantRequestSettings(Base):
    """Per-tenant settings of the domain; a missing row means the defaults."""

    __tablename__ = "request_tenant_settings"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True
    )
    contact_retention_days: Mapped[int] = mapped_column(Integer, default=365)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxItem(Base):
    """One change to tell one follower; items due for the same address go out as one
    digest e-mail. Kept until sent, so a failing SMTP server loses nothing."""

    __tablename__ = "request_notification_outbox"
    __table_args__ = (Index("ix_request_outbox_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    follower_id: Mapped[int] = mapped_column(
        ForeignKey("request_follower.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int] = mapped_column(ForeignKey("citizen_request.id", ondelete="CASCADE"))
    update_id: Mapped[int | None] = mapped_column(
        ForeignKey("request_update.id", ondelete="CASCADE"), nullable=True
    )
    status: Mapped[Status] = mapped_column(enum_type(Status))
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[OutboxState] = mapped_column(enum_type(OutboxState), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
