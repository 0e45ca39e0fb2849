"""Request and response types of the tenancy API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from territoire.tenancy.models import Role


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    tenant: str | None = Field(default=None, description="Tenant slug; default the first")


class TenantOut(BaseModel):
    slug: str
    name: str
    siren: str
    kind: str


class MeOut(BaseModel):
    tenant: TenantOut
    role: Role
    user_email: str | None
    via: str
    csrf_token: str | None


class CommuneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    insee_code: str = Field(max_length=5)
    name: str = Field(max_length=200)
    boundary: dict[str, Any] | None = None
    population: int | None = Field(default=None, ge=0)


class CommuneOut(BaseModel):
    insee_code: str
    name: str
    population: int | None
    boundary: dict[str, Any] | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="Shown once; store it now")


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    full_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, max_length=1024)
    role: Role


class MemberOut(BaseModel):
    email: str
    full_name: str
    role: Role
