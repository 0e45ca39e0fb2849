"""Plain data passed between decoders, the store and listeners (no ORM objects: speed)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, overload

import numpy as np
import numpy.typing as npt

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
    only when a listener looks at it (most batches meet no rule that wants them all).
    Columns may be numpy arrays: they become lists only if a listener reads them, so a
    batch of a tenant without rules costs nothing to describe."""

    __slots__ = ("_columns", "_describe", "_lists")

    def __init__(
        self,
        series_ids: Sequence[int] | npt.NDArray[np.int64],
        ms: Sequence[int] | npt.NDArray[np.int64],
        values: Sequence[float] | npt.NDArray[np.float64],
        describe: Mapping[int, tuple[Any, ...]],
    ) -> None:
        self._columns = (series_ids, ms, values)
        self._lists: tuple[list[int], list[int], list[float]] | None = None
        # series id -> (entity, attribute, ...): the tenant cache's own map will do
        self._describe = describe

    @property
    def series_ids(self) -> list[int]:
        return self._as_lists()[0]

    @property
    def ms(self) -> list[int]:
        return self._as_lists()[1]

    @property
    def values(self) -> list[float]:
        return self._as_lists()[2]

    def _as_lists(self) -> tuple[list[int], list[int], list[float]]:
        if self._lists is None:
            series_ids, ms, values = self._columns
            self._lists = (_listed(series_ids), _listed(ms), _listed(values))
        return self._lists

    def __len__(self) -> int:
        return len(self._columns[1])

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
        for sid, ms, value in zip(*self._as_lists(), strict=True):
            entity, attribute = describe[sid][:2]
            yield StoredReading(sid, entity, attribute, from_ms(ms), value)

    def _item(self, i: int) -> StoredReading:
        series_ids, ms, values = self._as_lists()
        sid = series_ids[i]
        entity, attribute = self._describe[sid][:2]
        return StoredReading(sid, entity, attribute, from_ms(ms[i]), values[i])


def _listed(column: Sequence[Any] | npt.NDArray[Any]) -> list[Any]:
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


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
