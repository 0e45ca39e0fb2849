"""Request and response types of the registry API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EntityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, description="urn:ngsi-ld:<Type>:<id>; generated if absent")
    type: str = Field(max_length=100, description="Smart Data Model type, e.g. Streetlight")
    name: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)
    relationships: dict[str, str | list[str]] = Field(default_factory=dict)
    location: dict[str, Any] | None = Field(default=None, description="GeoJSON geometry")


class EntityPatch(BaseModel):
    """Fields to change; `properties` is merged key by key, a null value removes a key."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] | None = None
    relationships: dict[str, str | list[str]] | None = None
    location: dict[str, Any] | None = None


class EntityOut(BaseModel):
    id: str
    type: str
    name: str | None
    properties: dict[str, Any]
    relationships: dict[str, Any]
    location: dict[str, Any] | None
    commune: str | None = Field(description="INSEE code of the commune it falls in")
    createdAt: datetime
    modifiedAt: datetime


class EntityPageOut(BaseModel):
    items: list[EntityOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class EntityTypeOut(BaseModel):
    type: str
    domain: str
    count: int
