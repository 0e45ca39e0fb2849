"""Request and response types of the telemetry API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class MappingIn(BaseModel):
    attribute: str
    unit: str | None = None
    scale: float = 1.0
    entity: str | None = None


class DeviceIn(BaseModel):
    device_id: str = Field(description="DevEUI (16 hex digits) or another identifier")
    entity: str = Field(description="URN of the entity the device measures")
    payload_format: str = Field(description="json, senml, chirpstack or tts")
    mapping: dict[str, MappingIn] | None = Field(
        default=None, description="Payload field (dotted path) → attribute, unit, scale"
    )


class DeviceOut(BaseModel):
    device_id: str
    entity: str
    payload_format: str
    mapping: dict[str, Any]
    created_at: datetime


class DeviceCreatedOut(DeviceOut):
    ingest_token: str = Field(description="Shown once; only its hash is kept")


class IngestOut(BaseModel):
    accepted: int
    rejected: int
    stored: int
    reasons: dict[str, int]
    problems: list[dict[str, str]]


class SeriesOut(BaseModel):
    id: int
    entity: str
    attribute: str
    unit: str | None
    last_ts: datetime | None
    last_value: float | None


class SeriesPageOut(BaseModel):
    items: list[SeriesOut]
    total: int
    limit: int
    offset: int


class LatestIn(BaseModel):
    ids: list[int] = Field(max_length=100_000)


class RetentionIn(BaseModel):
    raw_days: int


class DeadLetterOut(BaseModel):
    received_at: datetime
    source: str
    reason: str
    detail: str
    excerpt: str


class CounterOut(BaseModel):
    source: str
    reason: str
    count: int
