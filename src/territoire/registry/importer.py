"""Bulk import of entities from GeoJSON or CSV, all or nothing.

Every row is checked before anything is written; rejected rows are reported with their
reasons. Nothing is imported when a row is rejected, unless the caller accepts a
partial import, and then the accepted rows go in one transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from territoire.errors import DomainError, invalid
from territoire.registry import service

RESERVED_CSV_COLUMNS = {"id", "type", "name", "lon", "lat", "longitude", "latitude", "geometry"}
MAX_IMPORT_BYTES = 512 * 1024 * 1024


@dataclass
class Rejection:
    row: int
    entity_id: str | None
    reason: str


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


def _number_or_text(value: str) -> Any:
    text = value.strip()
    if text == "":
        return None
    for convert in (int, float):
        try:
            number = convert(text)
        except ValueError:
            continue
        return number
    if text[0] in "[{":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    return text


def _split_attributes(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributes named ref<Something> holding URNs are relationships (SDM convention)."""
    properties: dict[str, Any] = {}
    relationships: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        is_ref = key.startswith("ref") and key[3:4].isupper()
        (relationships if is_ref else properties)[key] = value
    return properties, relationships


def drafts_from_geojson(
    data: bytes, default_type: str | None
) -> Iterator[tuple[int, service.EntityDraft | str]]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise invalid("file", f"not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise invalid("file", "a GeoJSON FeatureCollection is expected")
    features = document.get("features")
    if not isinstance(features, list):
        raise invalid("file", "'features' must be an array")
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            yield number, "not a GeoJSON Feature"
            continue
        attributes = dict(feature.get("properties") or {})
        entity_type = attributes.pop("type", None) or default_type
        if not entity_type:
            yield number, "no 'type' property and no default type given"
            continue
        entity_id = feature.get("id") or attributes.pop("id", None)
        attributes.pop("id", None)
        name = attributes.pop("name", None)
        properties, relationships = _split_attributes(attributes)
        yield (
            number,
            service.EntityDraft(
                type=str(entity_type),
                id=str(entity_id) if entity_id else None,
                name=name,
                properties=properties,
                relationships=relationships,
                location=feature.get("geometry"),
            ),
        )


def drafts_from_csv(
    data: bytes, default_type: str | None
) -> Iterator[tuple[int, service.EntityDraft | str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise invalid("file", "CSV files must be UTF-8") from error
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = set(reader.fieldnames or [])
    lon_key = "lon" if "lon" in columns else "longitude"
    lat_key = "lat" if "lat" in columns else "latitude"
    for number, record in enumerate(reader, start=1):
        entity_type = (record.get("type") or "").strip() or default_type
        if not entity_type:
            yield number, "no 'type' column value and no default type given"
            continue
        location: Any = None
        if record.get("geometry"):
            location = _number_or_text(record["geometry"])
        elif record.get(lon_key) or record.get(lat_key):
            try:
                coordinates = [float(record[lon_key] or ""), float(record[lat_key] or "")]
            except (ValueError, KeyError):
                yield number, "longitude and latitude must be numbers"
                continue
            location = {"type": "Point", "coordinates": coordinates}
        attributes = {
            key: _number_or_text(value or "")
            for key, value in record.items()
            if key and key not in RESERVED_CSV_COLUMNS
        }
        properties, relationships = _split_attributes(attributes)
        yield (
            number,
            service.EntityDraft(
                type=entity_type,
                id=(record.get("id") or "").strip() or None,
                name=(record.get("name") or "").strip() or None,
                properties=properties,
                relationships=relationships,
                location=location,
            ),
        )


def read_drafts(
    path: Path, default_type: str | None
) -> Iterator[tuple[int, service.EntityDraft | str]]:
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise invalid("file", f"larger than {MAX_IMPORT_BYTES} bytes")
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix in {".geojson", ".json"}:
        return drafts_from_geojson(data, default_type)
    if suffix in {".csv", ".tsv", ".txt"}:
        return drafts_from_csv(data, default_type)
    raise invalid("file", "use a .geojson/.json or a .csv file")


def import_entities(
    session: Session,
    tenant_id: int,
    drafts: Iterator[tuple[int, service.EntityDraft | str]],
    *,
    allow_partial: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate every row, then insert all of them (or the valid ones if allowed)."""
    report = ImportReport()
    locator = service.commune_locator(session, tenant_id)
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, draft in drafts:
        report.read += 1
        if progress:
            progress(1)
        if isinstance(draft, str):
            report.rejected.append(Rejection(number, None, draft))
            continue
        try:
            row = service.validated_row(draft, tenant_id, locator)
        except DomainError as error:
            report.rejected.append(Rejection(number, draft.id, error.message))
            continue
        if row["urn"] in seen:
            report.rejected.append(Rejection(number, row["urn"], "duplicate id in the file"))
            continue
        seen.add(row["urn"])
        rows.append((number, row))
    taken = service.existing_urns(session, tenant_id, seen)
    accepted = []
    for number, row in rows:
        if row["urn"] in taken:
            report.rejected.append(Rejection(number, row["urn"], "an entity with this id exists"))
        else:
            accepted.append(row)
    report.rejected.sort(key=lambda rejection: rejection.row)
    if report.rejected and not allow_partial:
        return report
    report.imported = service.insert_entities(session, accepted)
    return report
