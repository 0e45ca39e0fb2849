"""A small territory for the requests tests: a commune with a street, two categories."""

from __future__ import annotations

import email
import email.policy
import io
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from PIL import Image
from PIL.ExifTags import IFD
from sqlalchemy import func, select

from territoire.db import Database
from territoire.registry import service as registry
from territoire.requests import catalogue
from territoire.requests.models import CitizenRequest
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Tenant
from tests.conftest import World

# Clairval-les-Tests: a square of about 7.5 km × 11 km.
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[5.0, 47.0], [5.1, 47.0], [5.1, 47.1], [5.0, 47.1], [5.0, 47.0]]],
}
INSIDE = (47.05, 5.05)  # lat, lon
OUTSIDE = (48.85, 2.35)
LAMP_QUESTION = {
    "code": "lamp_state",
    "datatype": "singlevaluelist",
    "required": True,
    "description": "La lampe est…",
    "values": [{"key": "off", "name": "Éteinte"}, {"key": "blinking", "name": "Clignote"}],
}


@dataclass
class Place:
    tenant: Tenant
    commune_id: int
    insee: str


def territory(world: World, slug: str, insee: str = "21008") -> Place:
    """A tenant with one commune, one named street and the categories `eclairage`
    (one required question) and `voirie` (none)."""
    tenant = world.tenant(slug)
    with world.database.session() as session:
        commune = tenancy.create_commune(
            session, tenant.id, insee_code=insee, name="Clairval-les-Tests", boundary=SQUARE
        )
        registry.create_entity(
            session,
            tenant.id,
            registry.EntityDraft(
                type="RoadSegment",
                id=f"urn:ngsi-ld:RoadSegment:{slug}-lilas",
                name=f"Rue des Lilas ({insee})",
                location={"type": "LineString", "coordinates": [[5.02, 47.02], [5.04, 47.02]]},
            ),
        )
        catalogue.create_category(
            session,
            tenant.id,
            catalogue.CategoryDraft(
                code="eclairage",
                name="Éclairage public",
                group="voirie",
                keywords="lampe, candélabre",
                notice="En cas de danger immédiat, appelez le 112.",
                service_notice="Un technicien passera sous 5 jours ouvrés.",
                attributes=[LAMP_QUESTION],
                duplicate_radius_m=80,
            ),
        )
        catalogue.create_category(
            session,
            tenant.id,
            catalogue.CategoryDraft(
                code="voirie", name="Nid-de-poule", group="voirie", duplicate_radius_m=100
            ),
        )
        commune_id = commune.id
    return Place(tenant, commune_id, insee)


def open311_key(database: Database, tenant: Tenant, *, trusted: bool = False) -> str:
    with database.session() as session:
        _key, raw = catalogue.create_open311_key(
            session, tenant.id, name="app mobile", trusted=trusted
        )
    return raw


def request_count(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(CitizenRequest)) or 0)


def jpeg(
    *, gps: tuple[float, float] | None = None, size: tuple[int, int] = (64, 48), colour: str = "red"
) -> bytes:
    """A small JPEG, with an EXIF GPS block (and a camera model) when asked."""
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x0110] = "Téléphone de test"  # Model
    if gps is not None:
        lat, lon = gps
        exif[IFD.GPSInfo] = {
            1: "N" if lat >= 0 else "S",
            2: _dms(abs(lat)),
            3: "E" if lon >= 0 else "W",
            4: _dms(abs(lon)),
        }
    output = io.BytesIO()
    image.save(output, "JPEG", exif=exif)
    return output.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
    return (float(degrees), float(minutes), seconds)


def parse_xml(body: bytes) -> ET.Element:
    """Parse our own server's answer (trusted input in a test)."""
    return ET.fromstring(body)


def xml_items(body: bytes, item: str) -> list[dict[str, Any]]:
    """The children of each <item> as a dict of texts (nested lists left as elements)."""
    root = parse_xml(body)
    return [{child.tag: child.text for child in element} for element in root.findall(item)]


@dataclass
class Sink:
    """An SMTP server's handler (aiosmtpd) that keeps what it receives."""

    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")
