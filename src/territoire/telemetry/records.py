"""Plain data passed between decoders, the store and listeners (no ORM objects: speed)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

ATTRIBUTE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
ENTITY_PATTERN = re.compile(r"^urn:ngsi-ld:[A-Za-z][A-Za-z0-9_]{0,99}:[A-Za-z0-9\-_.:~%@]{1,150}$")
PAYLOAD_FORMATS = ("json", "senml", "chirpstack", "tts")


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement, already decoded."""

    entity: str
    attribute: str
    ts: datetime
    value: float
    unit: str | None = None
    series_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading that was newly stored (duplicates are never reported twice)."""

    series_id: int
    entity: str
    attribute: str
    ts: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    excerpt: str = ""


@dataclass
class DecodeOutcome:
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, reason: str, detail: str, excerpt: Any = "") -> None:
        self.rejections.append(Rejection(reason, detail, _excerpt(excerpt)))


@dataclass(frozen=True, slots=True)
class MappingTarget:
    """Where one field of a decoded payload goes: attribute, unit, optional scale factor,
    and optionally another entity (a gateway or multi-sensor feeding several assets)."""

    attribute: str
    unit: str | None = None
    scale: float = 1.0
    entity: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"attribute": self.attribute}
        if self.unit is not None:
            data["unit"] = self.unit
        if self.scale != 1.0:
            data["scale"] = self.scale
        if self.entity is not None:
            data["entity"] = self.entity
        return data


class DeviceLike(Protocol):
    """What decoders need to know of a device: the ORM row or a cached copy both fit."""

    @property
    def entity(self) -> str: ...

    @property
    def mapping(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DeviceInfo:
    """A cached, detached copy of a device row (the MQTT handler keeps these)."""

    id: int
    tenant_id: int
    device_id: str
    entity: str
    payload_format: str
    mapping: dict[str, Any]


def _excerpt(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
