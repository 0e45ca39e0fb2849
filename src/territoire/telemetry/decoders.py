"""Payload decoders: plain JSON batch, SenML (RFC 8428 JSON), ChirpStack v4 uplink events
and The Things Stack v3 uplinks.

Each turns bytes into `Reading`s plus `Rejection`s with a reason. The common case is
decoded in one msgspec pass into typed structs; only when that fails is the payload
walked item by item, so one bad reading is refused without refusing its neighbours.
Checks that apply to every path (finite value, time window, unit, names) live in
`service.ingest`, so readings given directly to `ingest` get them too.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import msgspec

from territoire.telemetry import units
from territoire.telemetry.records import (
    ATTRIBUTE_PATTERN,
    DecodeOutcome,
    DeviceLike,
    MappingTarget,
    ReadingColumns,
    from_ms,
    seconds_to_ms,
    to_ms,
)

PACK_CUT_SHORT = "pack_cut_short"  # records after one that ended the pack
SENML_RELATIVE_LIMIT = 2**28  # RFC 8428: smaller times are relative to "now"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# gc=False: a batch holds thousands of these; they hold no containers, so the cyclic
# garbage collector need not track them (it would otherwise run during every decode).
class BatchItem(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    value: float
    attribute: str | None = None
    entity: str | None = None
    series: int | None = None
    ts: datetime | None = None
    unit: str | None = None


class SenMLRecord(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    bn: str | None = None
    bt: float | None = None
    bu: str | None = None
    bv: float | None = None
    bs: float | None = None
    bver: int | None = None
    n: str | None = None
    u: str | None = None
    v: float | None = None
    vs: str | None = None
    vb: bool | None = None
    vd: str | None = None
    s: float | None = None
    t: float | None = None
    ut: float | None = None


class FlatSenMLRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The usual record of a pack: a numeric value, a name, maybe a unit and a time, and
    no other field. Decoding into these few fields is a fifth faster than into every
    SenML field, and leaves fewer columns to look at; a pack with any other field (a
    version, a base value, a sum, a string value…) takes `SenMLRecord`."""

    v: float
    bn: str | None = None
    n: str | None = None
    bu: str | None = None
    u: str | None = None
    bt: float | None = None
    t: float | None = None


class CompleteItem(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    """The usual batch item, every field a batch needs present: decoding straight into it
    leaves nothing to check item by item. Times stay text: a batch repeats few of them,
    so each distinct one is parsed once."""

    value: float
    attribute: str
    ts: str
    entity: Annotated[str, msgspec.Meta(min_length=1)]
    unit: str | None = None
    series: int | None = None  # present: the batch takes the general path


_batch_decoder = msgspec.json.Decoder(list[BatchItem])
_complete_decoder = msgspec.json.Decoder(list[CompleteItem])
_senml_decoder = msgspec.json.Decoder(list[SenMLRecord])
_flat_senml_decoder = msgspec.json.Decoder(list[FlatSenMLRecord])
_any_decoder = msgspec.json.Decoder()
_raw_items_decoder = msgspec.json.Decoder(list[msgspec.Raw])
PIECE_READINGS = 1000


def decode(
    payload_format: str,
    body: bytes,
    device: DeviceLike | None,
    *,
    now: datetime | None = None,
) -> DecodeOutcome:
    """Decode one payload. `device` gives the default entity and the field mapping."""
    decoder = DECODERS.get(payload_format)
    outcome = DecodeOutcome()
    if decoder is None:
        outcome.reject(
            "unsupported_format",
            f"unknown payload format {payload_format!r}; use one of {', '.join(DECODERS)}",
        )
        return outcome
    decoder(body, device, now or datetime.now(UTC), outcome)
    return outcome


def decode_pieces(
    payload_format: str,
    body: bytes,
    device: DeviceLike | None,
    *,
    now: datetime | None = None,
    size: int | None = PIECE_READINGS,
) -> Iterator[DecodeOutcome]:
    """`decode`, one piece of at most `size` readings at a time, for a caller that stores
    each piece while the next is decoded. JSON batches and SenML packs are cut between
    array items (SenML base fields carry over the cut); any other payload, or one that is
    not a JSON array, is a single piece, decoded and refused exactly as by `decode`; so is
    every payload when `size` is None."""
    now = now or datetime.now(UTC)
    cut = payload_format in ("json", "senml")
    items = _array_items(body, size) if size is not None and cut else None
    if items is None or size is None:
        yield decode(payload_format, body, device, now=now)
        return
    base = SenMLBase()
    # A short first piece: the database starts on it sooner, and keeps the lead.
    cuts = [0, *range(max(1, size // 4), len(items), size), len(items)]
    for start, end in itertools.pairwise(cuts):
        piece = b"[" + b",".join(items[start:end]) + b"]"
        outcome = DecodeOutcome()
        if payload_format == "json":
            decode_json(piece, device, now, outcome)
        else:
            base = decode_senml_piece(piece, device, now, outcome, base)
            if base.refused_rest:
                # What `decode` would have said of the records not decoded.
                _refuse_rest(
                    [bytes(item).decode(errors="replace") for item in items[end:]], outcome
                )
        yield outcome
        if base.refused_rest:
            return


def _array_items(body: bytes, size: int) -> list[msgspec.Raw] | None:
    """The items of a JSON array longer than `size`, undecoded (a fifth of the cost of
    decoding them); None for anything else."""
    if body.lstrip()[:1] != b"[":
        return None
    try:
        items = _raw_items_decoder.decode(body)
    except msgspec.DecodeError:
        return None
    return items if len(items) > size else None


# --- plain JSON ----------------------------------------------------------------------


def decode_json(body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome) -> None:
    """`[{entity|series, attribute, ts, value, unit?}]`; with a device, entity may be left
    out, and a single object `{"ts": …, "<field>": <number>, …}` is read through its mapping."""
    if body.lstrip()[:1] == b"[":
        try:
            complete = _complete_decoder.decode(body)
        except msgspec.DecodeError:  # a validation error included: a closer look below
            pass
        else:
            if _complete_columns(complete, out):
                return
        try:
            items = _batch_decoder.decode(body)
        except msgspec.ValidationError:
            _decode_json_slowly(body, device, now, out)
            return
        except msgspec.DecodeError as error:
            out.reject("malformed_json", f"not valid JSON: {error}", body[:200])
            return
        default_entity = device.entity if device is not None else ""
        if not _batch_columns(items, default_entity, out):
            now_ms = to_ms(now)
            for item in items:
                _append_batch_item(item, default_entity, now_ms, out)
        return
    parsed = _parse_any(body, out)
    if parsed is None:
        return
    if isinstance(parsed, dict) and device is not None:
        ms = time_ms(parsed.pop("ts", None), now, out)
        if ms is not None:
            fields_to_readings(parsed, ms, device, out)
        return
    out.reject(
        "bad_structure",
        "a JSON batch is an array of {entity, attribute, ts, value} objects",
        body[:200],
    )


def _complete_columns(items: list[CompleteItem], out: DecodeOutcome) -> bool:
    """Complete items into columns; False if a time needs a closer look (or if readings
    were already decoded)."""
    if [item.series for item in items].count(None) != len(items):
        return False
    stamps = [item.ts for item in items]
    millis: dict[str, int] = {}
    for text in set(stamps):
        moment = _parse_iso(text)
        if moment is None or moment.tzinfo is None:
            return False
        millis[text] = to_ms(moment)
    if len(out.columns):
        return False
    out.columns = ReadingColumns(
        entity=[item.entity for item in items],
        attribute=[item.attribute for item in items],
        ms=list(map(millis.__getitem__, stamps)),
        value=[item.value for item in items],
        unit=[item.unit for item in items],
    )
    return True


def _batch_columns(items: list[BatchItem], default_entity: str, out: DecodeOutcome) -> bool:
    """The common batch (every item complete, times with offsets) straight into columns,
    a few C-level passes over the items; False when an item needs a closer look."""
    maybe_stamps = [item.ts for item in items]
    maybe_attributes = [item.attribute for item in items]
    maybe_entities = [item.entity for item in items]
    if None in maybe_stamps or None in maybe_attributes or len(out.columns):
        return False
    stamps = cast(list[datetime], maybe_stamps)
    distinct = set(stamps)
    if any(stamp.tzinfo is None for stamp in distinct):
        return False
    if None in maybe_entities or "" in maybe_entities:
        if not default_entity:
            return False
        maybe_entities = [entity or default_entity for entity in maybe_entities]
    series: list[int | None] | None = [item.series for item in items]
    if series is not None and series.count(None) == len(series):
        series = None
    millis = {stamp: to_ms(stamp) for stamp in distinct}
    out.columns = ReadingColumns(
        entity=cast(list[str], maybe_entities),
        attribute=cast(list[str], maybe_attributes),
        ms=[millis[stamp] for stamp in stamps],
        value=[item.value for item in items],
        unit=[item.unit for item in items],
        series=series,
    )
    return True


def _append_batch_item(
    item: BatchItem, default_entity: str, now_ms: int, out: DecodeOutcome
) -> None:
    if item.attribute is None:
        out.reject("bad_structure", "a reading needs an 'attribute'", item)
        return
    if item.ts is None:
        ms = now_ms
    elif item.ts.tzinfo is None:
        _reject_naive_time(out, item.ts.isoformat(), item)
        return
    else:
        ms = to_ms(item.ts)
    entity = item.entity or default_entity
    if not entity and item.series is None:
        out.reject("bad_structure", "a reading needs an 'entity' or a 'series' id", item)
        return
    out.columns.append(entity, item.attribute, ms, item.value, item.unit, item.series)


def _decode_json_slowly(
    body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome
) -> None:
    parsed = _parse_any(body, out)
    if not isinstance(parsed, list):
        return
    default_entity = device.entity if device is not None else ""
    for raw in parsed:
        if not isinstance(raw, dict):
            out.reject("bad_structure", "each reading must be a JSON object", raw)
            continue
        value = _number(raw.get("value"))
        if value is None:
            out.reject("wrong_type", "value must be a number", raw)
            continue
        series = raw.get("series")
        if series is not None and (not isinstance(series, int) or isinstance(series, bool)):
            out.reject("wrong_type", "series must be an integer id", raw)
            continue
        attribute, entity, unit = raw.get("attribute"), raw.get("entity"), raw.get("unit")
        if not isinstance(attribute, str) or not isinstance(entity or "", str):
            out.reject("wrong_type", "attribute and entity must be strings", raw)
            continue
        if unit is not None and not isinstance(unit, str):
            out.reject("wrong_type", "unit must be a string code", raw)
            continue
        ms = time_ms(raw.get("ts"), now, out, raw)
        if ms is None:
            continue
        entity = entity or default_entity
        if not entity and series is None:
            out.reject("bad_structure", "a reading needs an 'entity' or a 'series' id", raw)
            continue
        out.columns.append(entity, attribute, ms, value, unit, series)


# --- SenML ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SenMLBase:
    """The SenML base fields in force at a point of a pack: a pack cut into pieces hands
    them from one piece to the next."""

    name: str = ""
    unit: str | None = None
    time: float = 0.0
    value: float = 0.0
    sum: float = 0.0
    # A version we do not read, or base fields we could not, refuse the rest of the pack.
    refused_rest: bool = False


def decode_senml(body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome) -> None:
    decode_senml_piece(body, device, now, out, SenMLBase())


def decode_senml_piece(
    body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome, base: SenMLBase
) -> SenMLBase:
    """Decode a pack, or a piece of one, starting with `base`; return the base fields in
    force after its last record."""
    resolver = _SenMLResolver(device, to_ms(now), out)
    try:
        # Flat records have no field to add a base value to theirs.
        flat = _flat_senml_decoder.decode(body) if not base.value else None
    except msgspec.DecodeError:  # also a ValidationError: another shape, or an error
        pass  # told by the general decoder below, which also knows every field
    else:
        if flat is not None and _flat_columns(flat, resolver, base):
            return _base_after(flat, base)
    try:
        records = _senml_decoder.decode(body)
    except msgspec.ValidationError:
        readable = _senml_records_one_by_one(body, out)
        if readable is None:
            return base
        records = readable
    except msgspec.DecodeError as error:
        out.reject("malformed_json", f"not valid JSON: {error}", body[:200])
        return base
    else:
        if _senml_columns(records, resolver, base):
            return _base_after(records, base)
    base_name, base_unit, base_time = base.name, base.unit, base.time
    base_value, base_sum = base.value, base.sum
    for index, record in enumerate(records):
        if record is _REFUSED_BASE:
            return replace(base, refused_rest=True)
        if record.bver is not None and record.bver > 10:
            out.reject("unsupported_version", f"SenML version {record.bver} is not supported")
            _refuse_rest(records[index + 1 :], out)
            return replace(base, refused_rest=True)
        if record.bn is not None:
            base_name = record.bn
        if record.bu is not None:
            base_unit = record.bu
        if record.bt is not None:
            base_time = record.bt
        if record.bv is not None:
            base_value = record.bv
        if record.bs is not None:
            base_sum = record.bs
        name = base_name + record.n if record.n else base_name
        if record.v is not None:
            value = base_value + record.v
        elif record.vb is not None:
            value = 1.0 if record.vb else 0.0
        elif record.s is not None:
            value = base_sum + record.s
        elif record.vs is not None or record.vd is not None:
            out.reject("non_numeric", f"{name}: string and data values are not stored", record)
            continue
        else:
            out.reject("missing_value", f"{name}: the record has no value", record)
            continue
        moment = base_time + record.t if record.t else base_time
        symbol = record.u if record.u is not None else base_unit
        resolver.add(name, symbol, moment, value, record)
    return SenMLBase(base_name, base_unit, base_time, base_value, base_sum)


# Stands for a refused record that set base fields: what follows it cannot be read.
_REFUSED_BASE = SenMLRecord()
_BASE_FIELDS = frozenset(("bn", "bt", "bu", "bv", "bs", "bver"))


def _senml_records_one_by_one(body: bytes, out: DecodeOutcome) -> list[SenMLRecord] | None:
    """The records of a pack where some are not well typed, each refused on its own; a
    refused record that set base fields ends the pack (the names, times or units of the
    records after it would be guessed)."""
    parsed = _parse_any(body, out)
    if not isinstance(parsed, list):
        if parsed is not None:
            out.reject("wrong_type", "a SenML pack is an array of records", body[:200])
        return None
    records: list[SenMLRecord] = []
    for index, item in enumerate(parsed):
        try:
            records.append(msgspec.convert(item, SenMLRecord))
        except msgspec.ValidationError as error:
            out.reject("wrong_type", f"not a SenML record: {error}", item)
            if isinstance(item, dict) and _BASE_FIELDS & item.keys():
                _refuse_rest(parsed[index + 1 :], out)
                records.append(_REFUSED_BASE)
                break
    return records


def _refuse_rest(records: Sequence[Any], out: DecodeOutcome) -> None:
    for record in records:
        out.reject(PACK_CUT_SHORT, "an earlier record of the pack could not be read", record)


def _base_after(records: list[SenMLRecord] | list[FlatSenMLRecord], base: SenMLBase) -> SenMLBase:
    general = bool(records) and isinstance(records[0], SenMLRecord)
    return SenMLBase(
        name=_last_given([record.bn for record in records], base.name),
        unit=_last_given([record.bu for record in records], base.unit),
        time=_last_given([record.bt for record in records], base.time),
        value=_last_given([r.bv for r in records], base.value) if general else base.value,  # type: ignore[union-attr]
        sum=_last_given([r.bs for r in records], base.sum) if general else base.sum,  # type: ignore[union-attr]
    )


def _last_given(column: list[Any], current: Any) -> Any:
    for value in reversed(column):
        if value is not None:
            return value
    return current


def _senml_columns(records: list[SenMLRecord], resolver: _SenMLResolver, base: SenMLBase) -> bool:
    """The usual pack (a numeric `v` in every record, names, units and times that all
    resolve) straight into columns, one pass per field; False means: go record by record,
    which says what is wrong with which record."""
    if not records:
        return True  # an empty pack: nothing to decode, nothing to refuse
    values = [record.v for record in records]
    if None in values or len(resolver.out.columns):
        return False
    versions = [record.bver for record in records]
    if versions.count(None) != len(versions) and max(v or 0 for v in versions) > 10:
        return False
    base_names = _filled([record.bn for record in records], base.name)
    suffixes = [record.n for record in records]
    suffix = suffixes[0] or ""
    if suffixes.count(suffixes[0]) == len(suffixes):
        # One name per record, the base name differing (a pack of many entities' same
        # attribute): names are resolved per base name, not built record by record.
        names = base_names
    else:
        names, suffix = [b + n if n else b for b, n in zip(base_names, suffixes, strict=True)], ""
    own_units = [record.u for record in records]
    if own_units.count(None) == len(own_units):
        symbols = _filled([record.bu for record in records], base.unit)
    else:
        base_units = _filled([record.bu for record in records], base.unit)
        symbols = [u if u is not None else b for u, b in zip(own_units, base_units, strict=True)]
    moments = _moments(
        [record.bt for record in records], [record.t for record in records], base.time
    )
    base_values = [record.bv for record in records]
    if base.value or base_values.count(None) != len(base_values):
        filled = _filled(base_values, base.value)
        values = [b + v for b, v in zip(filled, values, strict=True)]
    return resolver.add_columns(names, suffix, symbols, moments, values)  # type: ignore[arg-type]


def _flat_columns(
    records: list[FlatSenMLRecord], resolver: _SenMLResolver, base: SenMLBase
) -> bool:
    """`_senml_columns` for a pack of flat records (the fields of `FlatSenMLRecord` only)."""
    if not records:
        return True
    base_names = _filled([record.bn for record in records], base.name)
    suffixes = [record.n for record in records]
    suffix = suffixes[0] or ""
    if suffixes.count(suffixes[0]) == len(suffixes):
        names = base_names
    else:
        names, suffix = [b + n if n else b for b, n in zip(base_names, suffixes, strict=True)], ""
    symbols = [record.u for record in records]
    if None in symbols:
        base_units = _filled([record.bu for record in records], base.unit)
        symbols = [u if u is not None else b for u, b in zip(symbols, base_units, strict=True)]
    moments = _moments(
        [record.bt for record in records], [record.t for record in records], base.time
    )
    values = [record.v for record in records]
    return resolver.add_columns(names, suffix, symbols, moments, values)


def _moments(
    base_times: list[float | None], offsets: list[float | None], initial: float
) -> list[float]:
    """Each record's time (base time plus its own); the usual packs give only one of the
    two, which then is the answer as it stands."""
    if not initial and base_times.count(None) == len(base_times) and None not in offsets:
        return offsets  # type: ignore[return-value]
    if offsets.count(None) == len(offsets):
        return _filled(base_times, initial)
    filled = _filled(base_times, initial)
    return [b + t if t else b for b, t in zip(filled, offsets, strict=True)]


def _filled(column: list[Any], initial: Any) -> list[Any]:
    """SenML base fields hold until the next record that sets them again."""
    missing = column.count(None)
    if missing == 0:
        return column
    if missing == len(column):
        return [initial] * len(column)
    if column[0] is not None and missing == len(column) - 1:
        return [column[0]] * len(column)
    filled, current = [], initial
    for value in column:
        if value is not None:
            current = value
        filled.append(current)
    return filled


class _SenMLResolver:
    """Turns resolved SenML records into column entries; names, units and times repeat a
    lot within a pack, so each is worked out once."""

    def __init__(self, device: DeviceLike | None, now_ms: int, out: DecodeOutcome) -> None:
        self.device = device
        self.now_ms = now_ms
        self.out = out
        self.targets: dict[str, tuple[str, str, str | None, float]] = {}
        self.units: dict[str | None, str | None] = {None: None}
        self.times: dict[float, int | None] = {}

    def add(
        self, name: str, symbol: str | None, moment: float, value: float, record: SenMLRecord
    ) -> None:
        out = self.out
        if symbol in self.units:
            unit = self.units[symbol]
        else:
            unit = self.units[symbol] = units.from_senml(symbol)  # type: ignore[arg-type]
        if symbol is not None and unit is None:
            out.reject("unknown_unit", f"{name}: unknown SenML unit {symbol!r}", record)
            return
        ms = self.times.get(moment)
        if ms is None:
            ms = self._time(name, moment, record)
            if ms is None:
                return
        target = self.targets.get(name)
        if target is None:
            # Only names that resolve are remembered: a refusal is reported per record.
            target = _senml_target(name, self.device, out, record)
            if target is None:
                return
            self.targets[name] = target
        entity, attribute, mapped_unit, scale = target
        out.columns.append(entity, attribute, ms, value * scale, mapped_unit or unit)

    def add_columns(
        self,
        names: list[str],
        suffix: str,
        symbols: list[str | None],
        moments: list[float],
        values: list[float],
    ) -> bool:
        """Whole columns at once; False (nothing added) if any of them needs a refusal.
        Each record's name is its entry in `names` followed by `suffix`."""
        quiet = DecodeOutcome()  # refusals here only mean: take the slow path
        unit_of: dict[str | None, str | None] = {}
        for symbol in set(symbols):
            unit_of[symbol] = units.from_senml(symbol) if symbol is not None else None
            if symbol is not None and unit_of[symbol] is None:
                return False
        ms_of: dict[float, int] = {}
        for moment in set(moments):
            if not math.isfinite(moment) or moment < -SENML_RELATIVE_LIMIT:
                return False
            relative = moment < SENML_RELATIVE_LIMIT
            ms_of[moment] = seconds_to_ms(moment) + (self.now_ms if relative else 0)
        targets: dict[str, tuple[str, str, str | None, float]] = {}
        for name in set(names):
            if self.device is None:
                target = _named_target(name + suffix)
            else:
                target = _senml_target(name + suffix, self.device, quiet, None)
            if target is None:
                return False
            targets[name] = target
        # One dictionary per column, looked up by C-level map: no tuple per record.
        entity_of = {name: target[0] for name, target in targets.items()}
        attribute_of = {name: target[1] for name, target in targets.items()}
        if any(target[3] != 1.0 for target in targets.values()):
            scale_of = {name: target[3] for name, target in targets.items()}
            values = [v * scale_of[n] for v, n in zip(values, names, strict=True)]
        self.out.columns = ReadingColumns(
            entity=list(map(entity_of.__getitem__, names)),
            attribute=list(map(attribute_of.__getitem__, names)),
            ms=list(map(ms_of.__getitem__, moments)),
            value=values,
            unit=self._unit_column(targets, names, symbols, unit_of),
        )
        return True

    @staticmethod
    def _unit_column(
        targets: dict[str, tuple[str, str, str | None, float]],
        names: list[str],
        symbols: list[str | None],
        unit_of: dict[str | None, str | None],
    ) -> list[str | None]:
        """A mapped unit wins over the record's; a pack with one symbol and no mapped
        unit (the usual case) is one unit repeated."""
        mapped_of = {name: target[2] for name, target in targets.items()}
        if len(unit_of) == 1 and not any(mapped_of.values()):
            return [next(iter(unit_of.values()))] * len(names)
        mapped = map(mapped_of.__getitem__, names)
        return [m or unit_of[s] for m, s in zip(mapped, symbols, strict=True)]

    def _time(self, name: str, moment: float, record: SenMLRecord) -> int | None:
        if not math.isfinite(moment):
            self.out.reject("bad_timestamp", f"{name}: time is not finite", record)
            return None
        if moment < -SENML_RELATIVE_LIMIT:
            self.out.reject("bad_timestamp", f"{name}: relative time too far in the past", record)
            return None
        if moment < SENML_RELATIVE_LIMIT:
            ms = self.now_ms + seconds_to_ms(moment)
        else:
            ms = seconds_to_ms(moment)
        self.times[moment] = ms
        return ms


@functools.lru_cache(maxsize=65_536)
def _named_target(name: str) -> tuple[str, str, str | None, float] | None:
    """`_senml_target` without a device, remembered: a gateway names the same series in
    every pack, so each name is split once per process rather than once per pack."""
    return _senml_target(name, None, DecodeOutcome(), None)


def _senml_target(
    name: str, device: DeviceLike | None, out: DecodeOutcome, record: SenMLRecord | None
) -> tuple[str, str, str | None, float] | None:
    """Entity and attribute of a resolved SenML name.

    Without a device the name is `<entity URN>/<attribute>` (or `<URN>:<attribute>`);
    with one, the last segment of the name is a field looked up in the device mapping.
    """
    if device is None:
        cut = name.rfind("/")
        cut = cut if cut >= 0 else name.rfind(":")
        if cut <= 0:
            out.reject("bad_entity", f"{name!r} is not <entity URN>/<attribute>", record)
            return None
        return name[:cut], name[cut + 1 :], None, 1.0
    cut = max(name.rfind("/"), name.rfind(":"))
    target = resolve_field(name[cut + 1 :], device, out, record, quiet=bool(device.mapping))
    if target is None:
        return None
    return target.entity or device.entity, target.attribute, target.unit, target.scale


# --- LoRaWAN network servers ---------------------------------------------------------


def decode_chirpstack(
    body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome
) -> None:
    """ChirpStack v4 `up` event: the codec's decoded `object`, timed by `time`."""
    event = _parse_any(body, out)
    if event is None:
        return
    if not isinstance(event, dict) or not isinstance(event.get("deviceInfo"), dict):
        out.reject("bad_structure", "not a ChirpStack v4 uplink event (no deviceInfo)", body[:200])
        return
    fields = event.get("object")
    if not isinstance(fields, dict):
        out.reject(
            "no_decoded_payload", "the uplink has no decoded 'object' (no codec?)", body[:200]
        )
        return
    if device is None:
        out.reject("unknown_device", "ChirpStack uplinks need a registered device")
        return
    ms = time_ms(event.get("time"), now, out, event.get("time"))
    if ms is not None:
        fields_to_readings(fields, ms, device, out)


def decode_tts(body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome) -> None:
    """The Things Stack v3 uplink: `uplink_message.decoded_payload`, timed by `received_at`."""
    event = _parse_any(body, out)
    if event is None:
        return
    message = event.get("uplink_message") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not isinstance(message, dict):
        out.reject("bad_structure", "not a The Things Stack uplink (no uplink_message)", body[:200])
        return
    fields = message.get("decoded_payload")
    if not isinstance(fields, dict):
        out.reject(
            "no_decoded_payload", "the uplink has no decoded_payload (no formatter?)", body[:200]
        )
        return
    if device is None:
        out.reject("unknown_device", "The Things Stack uplinks need a registered device")
        return
    stamp = event.get("received_at") or message.get("received_at")
    ms = time_ms(stamp, now, out, stamp)
    if ms is not None:
        fields_to_readings(fields, ms, device, out)


def lorawan_device_ids(payload_format: str, body: bytes) -> list[str]:
    """Identifiers a network-server uplink gives for its device, most specific first."""
    try:
        event = _any_decoder.decode(body)
    except msgspec.DecodeError:
        return []
    if not isinstance(event, dict):
        return []
    ids: list[Any] = []
    if payload_format == "chirpstack":
        info = event.get("deviceInfo")
        if isinstance(info, dict):
            ids = [info.get("devEui")]
    elif payload_format == "tts":
        ends = event.get("end_device_ids")
        if isinstance(ends, dict):
            ids = [ends.get("dev_eui"), ends.get("device_id")]
    return [normalise_device_id(i) for i in ids if isinstance(i, str) and i]


def normalise_device_id(device_id: str) -> str:
    """DevEUIs arrive in either case; other identifiers keep their spelling."""
    if len(device_id) == 16 and all(c in "0123456789abcdefABCDEF" for c in device_id):
        return device_id.lower()
    return device_id


# --- shared helpers ------------------------------------------------------------------


def fields_to_readings(
    fields: dict[str, Any], ms: int, device: DeviceLike, out: DecodeOutcome
) -> None:
    quiet = bool(device.mapping)
    columns = out.columns
    for path, raw in _flatten(fields):
        target = resolve_field(path, device, out, {path: raw}, quiet=quiet)
        if target is None:
            continue
        value = _number(raw)
        if value is None:
            out.reject("non_numeric", f"field {path!r} is not a number", {path: raw})
            continue
        entity = target.entity or device.entity
        columns.append(entity, target.attribute, ms, value * target.scale, target.unit)


def resolve_field(
    path: str, device: DeviceLike, out: DecodeOutcome, excerpt: Any, *, quiet: bool = False
) -> MappingTarget | None:
    """The mapping's target for a field; with no mapping, the field name is the attribute.

    With a mapping, unmapped fields are ignored (`quiet`): decoders emit diagnostics
    (battery, RSSI…) that nobody asked to store.
    """
    mapping = device.mapping
    if mapping:
        spec = mapping.get(path)
        if spec is None:
            if not quiet:
                out.reject("no_mapping", f"field {path!r} is not in the device mapping", excerpt)
            return None
        return mapping_target(spec)
    if not ATTRIBUTE_PATTERN.match(path):
        out.reject("no_mapping", f"field {path!r} is not an attribute name; map it", excerpt)
        return None
    return MappingTarget(attribute=path)


def mapping_target(spec: Any) -> MappingTarget:
    if isinstance(spec, MappingTarget):
        return spec
    if isinstance(spec, str):
        return MappingTarget(attribute=spec)
    key = (spec["attribute"], spec.get("unit"), spec.get("scale", 1.0), spec.get("entity"))
    found = _targets.get(key)
    if found is None:
        found = MappingTarget(attribute=key[0], unit=key[1], scale=float(key[2]), entity=key[3])
        if len(_targets) < 100_000:  # mappings are few; the bound only guards memory
            _targets[key] = found
    return found


# Mapping specs come from the database as dicts; the same few are read for every message.
_targets: dict[tuple[Any, ...], MappingTarget] = {}


def _flatten(fields: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    flat: list[tuple[str, Any]] = []
    for key, value in fields.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.extend(_flatten(value, path + "."))
        else:
            flat.append((path, value))
    return flat


def _parse_any(body: bytes, out: DecodeOutcome) -> Any:
    try:
        return _any_decoder.decode(body)
    except msgspec.DecodeError as error:
        out.reject("malformed_json", f"not valid JSON: {error}", body[:200])
        return None


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int | float):
        return float(raw)
    return None


def _reject_naive_time(out: DecodeOutcome, text: str, excerpt: Any) -> None:
    """One wording whichever path met the time (typed or record by record)."""
    out.reject(
        "naive_timestamp",
        f"{text!r} has no UTC offset; give one, e.g. 2025-01-31T10:00:00+01:00",
        excerpt,
    )


def time_ms(raw: Any, now: datetime, out: DecodeOutcome, excerpt: Any = "") -> int | None:
    """A time given as ISO 8601 text with an offset, or as Unix seconds, in epoch
    milliseconds; absent means now."""
    if raw is None:
        return to_ms(now)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            out.reject("bad_timestamp", "time is not finite", excerpt)
            return None
        return seconds_to_ms(float(raw))
    if isinstance(raw, str):
        parsed = _parse_iso(raw)
        if parsed is None:
            out.reject("bad_timestamp", f"{raw!r} is not an ISO 8601 date-time", excerpt)
            return None
        if parsed.tzinfo is None:
            _reject_naive_time(out, raw, excerpt)
            return None
        return to_ms(parsed)
    out.reject("wrong_type", "time must be ISO 8601 text or Unix seconds", excerpt)
    return None


def time_field(raw: Any, now: datetime, out: DecodeOutcome, excerpt: Any = "") -> datetime | None:
    """As `time_ms`, as an aware datetime (file imports build `Reading`s)."""
    ms = time_ms(raw, now, out, excerpt)
    if ms is None:
        return None
    try:
        return from_ms(ms)
    except OverflowError:
        return EPOCH  # out of any calendar: the retention check refuses it as too old


_iso_decoder = msgspec.json.Decoder(datetime)


def _parse_iso(text: str) -> datetime | None:
    try:
        return _iso_decoder.decode(b'"' + text.encode() + b'"')
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


Decoder = Callable[[bytes, DeviceLike | None, datetime, DecodeOutcome], None]

DECODERS: dict[str, Decoder] = {
    "json": decode_json,
    "senml": decode_senml,
    "chirpstack": decode_chirpstack,
    "tts": decode_tts,
}
