"""Plain data passed between decoders, the store and listeners (no ORM objects: speed)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, overload

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


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch (UTC), rounded down; `moment` must be aware."""
    return (moment - EPOCH) // MILLISECOND


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def seconds_to_ms(seconds: float) -> int:
    """Unix seconds (a float, as JSON and SenML give them) to whole milliseconds, rounded
    down after rounding to the microsecond, as `timedelta(seconds=…)` would."""
    return round(seconds * 1_000_000) // 1000


@dataclass(slots=True)
class ReadingColumns:
    """A batch of readings as parallel columns: the hot path builds no object per reading.

    `series` is None when no reading names its series by id (the common case); otherwise
    it holds one id or None per reading. Times are epoch milliseconds (UTC).
    """

    entity: list[str] = field(default_factory=list)
    attribute: list[str] = field(default_factory=list)
    ms: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    unit: list[str | None] = field(default_factory=list)
    series: list[int | None] | None = None

    def __len__(self) -> int:
        return len(self.ms)

    def append(
        self,
        entity: str,
        attribute: str,
        ms: int,
        value: float,
        unit: str | None,
        series: int | None = None,
    ) -> None:
        if series is not None and self.series is None:
            self.series = [None] * len(self.ms)
        self.entity.append(entity)
        self.attribute.append(attribute)
        self.ms.append(ms)
        self.value.append(value)
        self.unit.append(unit)
        if self.series is not None:
            self.series.append(series)

    def extend(self, other: ReadingColumns) -> None:
        if other.series is not None and self.series is None:
            self.series = [None] * len(self.ms)
        if self.series is not None:
            self.series.extend(other.series if other.series is not None else [None] * len(other))
        self.entity.extend(other.entity)
        self.attribute.extend(other.attribute)
        self.ms.extend(other.ms)
        self.value.extend(other.value)
        self.unit.extend(other.unit)

    def slice(self, start: int, stop: int) -> ReadingColumns:
        return ReadingColumns(
            self.entity[start:stop],
            self.attribute[start:stop],
            self.ms[start:stop],
            self.value[start:stop],
            self.unit[start:stop],
            self.series[start:stop] if self.series is not None else None,
        )

    def readings(self) -> list[Reading]:
        series = self.series if self.series is not None else [None] * len(self.ms)
        return [
            Reading(entity, attribute, from_ms(ms), value, unit, sid)
            for entity, attribute, ms, value, unit, sid in zip(
                self.entity, self.attribute, self.ms, self.value, self.unit, series, strict=True
            )
        ]


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    excerpt: str = ""


class StoredBatch(Sequence[StoredReading]):
    """The newly stored readings of a batch, kept as columns; a `StoredReading` is built
    only when a listener looks at it (most batches meet no rule that wants them all)."""

    __slots__ = ("_describe", "ms", "series_ids", "values")

    def __init__(
        self,
        series_ids: list[int],
        ms: list[int],
        values: list[float],
        describe: dict[int, tuple[str, str]],
    ) -> None:
        self.series_ids = series_ids
        self.ms = ms
        self.values = values
        self._describe = describe  # series id -> (entity, attribute)

    def __len__(self) -> int:
        return len(self.ms)

    @overload
    def __getitem__(self, index: int) -> StoredReading: ...

    @overload
    def __getitem__(self, index: slice) -> list[StoredReading]: ...

    def __getitem__(self, index: int | slice) -> StoredReading | list[StoredReading]:
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._item(index)

    def __iter__(self) -> Iterator[StoredReading]:
        describe = self._describe
        for sid, ms, value in zip(self.series_ids, self.ms, self.values, strict=True):
            entity, attribute = describe[sid]
            yield StoredReading(sid, entity, attribute, from_ms(ms), value)

    def _item(self, i: int) -> StoredReading:
        sid = self.series_ids[i]
        entity, attribute = self._describe[sid]
        return StoredReading(sid, entity, attribute, from_ms(self.ms[i]), self.values[i])


@dataclass
class DecodeOutcome:
    columns: ReadingColumns = field(default_factory=ReadingColumns)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def readings(self) -> list[Reading]:
        """The accepted readings as objects (tests, small payloads; the hot path reads
        `columns`)."""
        return self.columns.readings()

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
