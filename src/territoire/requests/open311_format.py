"""Open311 GeoReport v2 bodies in XML and JSON.

The JSON is the "Spark convention" mapping of the XML: a list becomes an array, the
XML wraps each item in an element named after the list (services → service, …).
XML is built with the standard library, so every text is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.responses import Response

from territoire.errors import DomainError, Forbidden, NotAuthenticated, NotFound, PayloadTooLarge

FORMATS = ("xml", "json")
MEDIA_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
# Container element → item element, as in the specification's examples.
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "service_request_updates": "request_update",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


def w3_datetime(moment: datetime | None) -> str | None:
    """ISO 8601 with the zone, as the spec requires: 2010-01-01T00:00:00Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, list):
        item_name = ITEM_NAMES.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, item_name), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def to_xml(root: str, value: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, value)
    text: str = ET.tostring(element, encoding="unicode")
    return XML_DECLARATION + text.encode("utf-8")


def respond(fmt: str, root: str, value: Any, status_code: int = 200) -> Response:
    body = to_xml(root, value) if fmt == "xml" else orjson.dumps(value)
    return Response(body, status_code=status_code, media_type=MEDIA_TYPES[fmt])


def status_for(error: DomainError) -> int:
    """404 for what does not exist, 403 for a missing or bad api_key, 400 for the rest —
    except 413 and 429, which say more than 400 to a client that can react."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Forbidden | NotAuthenticated):
        return 403
    if isinstance(error, PayloadTooLarge) or error.status_code in (413, 429):
        return error.status_code
    return 400


def error_response(fmt: str, status_code: int, *descriptions: str) -> Response:
    errors = [{"code": status_code, "description": text} for text in descriptions]
    return respond(fmt, "errors", errors, status_code)


def domain_error_response(fmt: str, error: DomainError) -> Response:
    descriptions = [f"{p.field}: {p.reason}" for p in error.problems] or [error.message]
    return error_response(fmt, status_for(error), *descriptions)
