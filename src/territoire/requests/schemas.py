"""Request and response types of the back-office JSON API (/api/v1/requests…)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from territoire.requests.models import Channel, Status


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryIn(Strict):
    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    group: str = Field(default="", max_length=100)
    keywords: str = Field(default="", max_length=500)
    notice: str = Field(default="", max_length=1000, description="Shown before reporting")
    service_notice: str = Field(default="", max_length=1000, description="What will happen")
    attributes: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    duplicate_radius_m: int = Field(default=50, ge=0, le=5000)
    active: bool = True


class CategoryOut(BaseModel):
    code: str
    name: str
    description: str
    group: str
    keywords: str
    notice: str
    service_notice: str
    attributes: list[dict[str, Any]]
    duplicate_radius_m: int
    active: bool


class RoutingRuleIn(Strict):
    category: str | None = Field(default=None, description="Category code; none means any")
    commune: str | None = Field(default=None, description="INSEE code; none means any")
    team_id: str | None = Field(default=None, description="Team (interventions) public id")
    agency: str = Field(default="", max_length=200)
    skill: str | None = Field(default=None, max_length=64)


class RoutingIn(Strict):
    rules: list[RoutingRuleIn] = Field(max_length=500)


class RoutingRuleOut(BaseModel):
    category: str | None
    commune: str | None
    team_id: str | None
    agency: str
    skill: str | None


class TemplateIn(Strict):
    title: str = Field(max_length=200)
    body: str = Field(max_length=4000)
    status: Status | None = None


class TemplateOut(BaseModel):
    id: str
    title: str
    body: str
    status: Status | None


class SettingsIn(Strict):
    contact_retention_days: int = Field(ge=1, le=3650)


class SettingsOut(BaseModel):
    contact_retention_days: int


class KeyIn(Strict):
    name: str = Field(max_length=200)
    trusted: bool = False


class KeyOut(BaseModel):
    id: str
    name: str
    trusted: bool
    created_at: datetime
    revoked_at: datetime | None


class KeyCreatedOut(KeyOut):
    api_key: str


class AssistedRequestIn(Strict):
    """A request entered by an agent for a resident (phone, desk, mail, social media)."""

    service_code: str = Field(max_length=64)
    channel: Channel
    description: str = Field(default="", max_length=4000)
    lat: float | None = None
    long: float | None = None
    address: str = Field(default="", max_length=300)
    attributes: dict[str, str | list[str]] = Field(default_factory=dict)
    email: str | None = Field(default=None, max_length=254)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=40)
    follow: bool = True


class UpdateIn(Strict):
    status: Status | None = None
    note: str = Field(default="", max_length=4000)
    public: bool = True
    template: str | None = Field(default=None, description="Answer template id")


class MergeIn(Strict):
    into: str = Field(max_length=16, description="Tracking number of the original request")


class WorkOrderIn(Strict):
    team_id: str | None = None
    priority: str | None = None


class ModerationIn(Strict):
    hidden: bool | None = None
    redact_description: bool = False
    description: str | None = Field(default=None, max_length=4000)
    photo_id: str | None = None
    photo_hidden: bool | None = None
    blur: bool = False
    box: list[float] | None = Field(default=None, min_length=4, max_length=4)


class ContactIn(Strict):
    purpose: str = Field(max_length=300, description="Why the contact is needed (logged)")


class ContactOut(BaseModel):
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    erased: bool


class UpdateOut(BaseModel):
    id: str
    status: Status
    old_status: Status | None
    note: str
    public: bool
    source: str
    created_at: datetime


class PhotoOut(BaseModel):
    id: str
    url: str
    hidden: bool
    width: int
    height: int


class RequestSummaryOut(BaseModel):
    code: str
    id: str
    status: Status
    status_label: str
    service_code: str
    service_name: str
    description: str
    lat: float | None
    long: float | None
    address: str
    commune: str | None
    channel: Channel
    agency: str
    team_id: str | None
    work_order_id: str | None
    hidden: bool
    created_at: datetime
    updated_at: datetime


class RequestOut(RequestSummaryOut):
    attributes: dict[str, Any]
    duplicate_of: str | None
    closed_at: datetime | None
    has_contact: bool
    contact_erased: bool
    followers: int
    photos: list[PhotoOut]
    history: list[UpdateOut]


class InboxOut(BaseModel):
    items: list[RequestSummaryOut]
    total: int
    limit: int
    offset: int


class SimilarOut(BaseModel):
    code: str
    status: Status
    service_code: str
    description: str
    distance_m: float
    created_at: datetime


class CreatedOut(BaseModel):
    code: str
    id: str
    url: str


class WorkOrderOut(BaseModel):
    work_order_id: str
    status: Status
