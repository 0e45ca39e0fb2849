"""Open311 GeoReport v2 conformance, written from the specification (wiki.open311.org
GeoReport_v2 and Service_Discovery) and FixMyStreet's servicerequestupdates extension.

Every endpoint is exercised in both formats; XML is parsed, JSON decoded, and both are
compared through one normalised view so that the two formats are proved equivalent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from territoire.requests import service
from territoire.requests.models import CitizenRequest, RequestUpdate, Status, UpdateSource
from territoire.tenancy.models import Role
from tests.conftest import World

from .helpers import (
    INSIDE,
    OUTSIDE,
    jpeg,
    open311_key,
    parse_xml,
    request_count,
    territory,
)

FORMATS = ["json", "xml"]
BASE = "/open311/v2"
CONTAINERS = {"requests": "request", "services": "service", "errors": "error"}


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def items(response: Any, fmt: str, item: str) -> list[dict[str, Any]]:
    """The list of objects of a response, as {field: text}, whatever the format."""
    if fmt == "json":
        assert response.headers["content-type"].startswith("application/json")
        assert "charset=utf-8" in response.headers["content-type"]
        return [
            {k: v if isinstance(v, list | dict) else _scalar(v) for k, v in entry.items()}
            for entry in response.json()
        ]
    assert response.headers["content-type"].startswith("text/xml")
    assert "charset=utf-8" in response.headers["content-type"]
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = parse_xml(response.content)
    return [{child.tag: child.text for child in element} for element in root.findall(item)]


def errors(response: Any, fmt: str) -> list[dict[str, Any]]:
    found = items(response, fmt, "error")
    assert found, response.text
    for error in found:
        assert error["code"] == str(response.status_code)
        assert error["description"]
    return found


def error_text(response: Any, fmt: str) -> str:
    return " ".join(e["description"] for e in errors(response, fmt))


@pytest.fixture
def town(world: World) -> Any:
    place = territory(world, "ville-a")
    place.key = open311_key(world.database, place.tenant)  # type: ignore[attr-defined]
    return place


@pytest.fixture
def client(app: Any) -> TestClient:
    return TestClient(app)


def post_request(client: TestClient, fmt: str, town: Any, **fields: Any) -> Any:
    data = {
        "jurisdiction_id": town.tenant.slug,
        "api_key": town.key,
        "service_code": "voirie",
        "lat": str(INSIDE[0]),
        "long": str(INSIDE[1]),
        "description": "Un trou profond devant le n° 12",
    }
    data.update({k: v for k, v in fields.items() if v is not None})
    for key in [k for k, v in fields.items() if v is None]:
        data.pop(key, None)
    return client.post(f"{BASE}/requests.{fmt}", data=data)


def new_code(client: TestClient, town: Any, **fields: Any) -> str:
    response = post_request(client, "json", town, **fields)
    assert response.status_code == 200, response.text
    return str(response.json()[0]["service_request_id"])


# --- discovery -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_lists_the_georeport_v2_endpoint_and_both_formats(
    client: TestClient, town: Any, fmt: str
) -> None:
    response = client.get(f"{BASE}/discovery.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        body = response.json()
        endpoint = body["endpoints"][0]
        formats = endpoint["formats"]
    else:
        root = parse_xml(response.content)
        assert root.tag == "discovery"
        body = {child.tag: child.text for child in root}
        xml_endpoint = root.find("endpoints/endpoint")
        assert xml_endpoint is not None
        endpoint = {child.tag: child.text for child in xml_endpoint}
        formats = [f.text for f in xml_endpoint.findall("formats/format")]
    for required in ("changeset", "contact", "key_service"):
        assert body[required]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["type"] == "production"
    assert set(formats) == {"text/xml", "application/json"}


# --- services ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_list_gives_codes_names_metadata_and_type(
    client: TestClient, town: Any, fmt: str
) -> None:
    response = client.get(f"{BASE}/services.{fmt}", params={"jurisdiction_id": "ville-a"})
    assert response.status_code == 200
    found = {s["service_code"]: s for s in items(response, fmt, "service")}
    assert set(found) == {"eclairage", "voirie"}
    lighting = found["eclairage"]
    assert lighting["service_name"] == "Éclairage public"
    assert lighting["metadata"] == "true"  # it has a question: call the definition
    assert found["voirie"]["metadata"] == "false"
    assert lighting["type"] == "realtime"
    assert lighting["keywords"] == "lampe, candélabre"
    assert lighting["group"] == "voirie"


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_definition_describes_the_questions(
    client: TestClient, town: Any, fmt: str
) -> None:
    response = client.get(f"{BASE}/services/eclairage.{fmt}", params={"jurisdiction_id": "ville-a"})
    assert response.status_code == 200
    if fmt == "json":
        body = response.json()
        attribute = body["attributes"][0]
        values = attribute["values"]
        assert attribute["required"] is True and attribute["variable"] is True
        assert attribute["order"] == 1
    else:
        root = parse_xml(response.content)
        assert root.tag == "service_definition"
        body = {"service_code": root.findtext("service_code")}
        element = root.find("attributes/attribute")
        assert element is not None
        attribute = {child.tag: child.text for child in element}
        values = [{v.tag: v.text for v in value} for value in element.findall("values/value")]
        assert attribute["required"] == "true" and attribute["variable"] == "true"
        assert attribute["order"] == "1"
    assert body["service_code"] == "eclairage"
    assert attribute["code"] == "lamp_state"
    assert attribute["datatype"] == "singlevaluelist"
    assert attribute["description"] == "La lampe est…"
    assert {v["key"] for v in values} == {"off", "blinking"}
    assert {v["name"] for v in values} == {"Éteinte", "Clignote"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_service_code_is_404_in_the_spec_error_format(
    client: TestClient, town: Any, fmt: str
) -> None:
    response = client.get(f"{BASE}/services/nope.{fmt}", params={"jurisdiction_id": "ville-a"})
    assert response.status_code == 404
    assert "nope" in error_text(response, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_jurisdiction_selects_the_tenant_and_is_required_with_several(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    # One tenant only: jurisdiction_id may be left out, as the spec allows.
    alone = client.get(f"{BASE}/services.{fmt}")
    assert alone.status_code == 200 and len(items(alone, fmt, "service")) == 2
    territory(world, "ville-b", insee="21009")
    missing = client.get(f"{BASE}/services.{fmt}")
    assert missing.status_code == 400
    assert "jurisdiction_id" in error_text(missing, fmt)
    unknown = client.get(f"{BASE}/services.{fmt}", params={"jurisdiction_id": "atlantis"})
    assert unknown.status_code == 404
    assert "atlantis" in error_text(unknown, fmt)
    by_siren = client.get(f"{BASE}/services.{fmt}", params={"jurisdiction_id": town.tenant.siren})
    assert by_siren.status_code == 200


# --- POST requests -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_request_returns_its_id_and_notice_then_it_can_be_read(
    client: TestClient, town: Any, fmt: str
) -> None:
    response = post_request(
        client,
        fmt,
        town,
        service_code="eclairage",
        **{"attribute[lamp_state]": "off"},
        email="Camille@Example.org",
        first_name="Camille",
        phone="06 12 34 56 78",
    )
    assert response.status_code == 200, response.text
    created = items(response, fmt, "request")
    assert len(created) == 1
    code = created[0]["service_request_id"]
    assert code and "token" not in created[0]  # realtime: an id, not a token
    assert created[0]["service_notice"] == "Un technicien passera sous 5 jours ouvrés."

    read = client.get(f"{BASE}/requests/{code}.{fmt}", params={"jurisdiction_id": "ville-a"})
    assert read.status_code == 200
    (found,) = items(read, fmt, "request")
    assert found["service_request_id"] == code
    assert found["status"] == "open"
    assert found["service_code"] == "eclairage"
    assert found["service_name"] == "Éclairage public"
    assert found["description"] == "Un trou profond devant le n° 12"
    assert float(found["lat"]) == pytest.approx(INSIDE[0])
    assert float(found["long"]) == pytest.approx(INSIDE[1])
    assert found["requested_datetime"].endswith("Z")
    assert datetime.fromisoformat(found["requested_datetime"].replace("Z", "+00:00"))
    # Personal data never appears in public answers.
    assert "camille" not in read.text.lower() and "06 12" not in read.text


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_request_located_by_address_only(client: TestClient, town: Any, fmt: str) -> None:
    response = post_request(
        client,
        fmt,
        town,
        lat=None,
        long=None,
        address_string="12 rue des Lilas, Clairval-les-Tests",
    )
    assert response.status_code == 200, response.text
    code = items(response, fmt, "request")[0]["service_request_id"]
    (found,) = items(client.get(f"{BASE}/requests/{code}.{fmt}"), fmt, "request")
    assert found["address"] == "12 rue des Lilas, Clairval-les-Tests"
    # Geocoded on the tenant's own street: the middle of Rue des Lilas.
    assert float(found["lat"]) == pytest.approx(47.02)
    assert float(found["long"]) == pytest.approx(5.03)


def test_post_request_with_an_unknown_address_is_kept_unplaced(
    client: TestClient, town: Any
) -> None:
    code = new_code(client, town, lat=None, long=None, address_string="Lieu-dit Les Trois Chênes")
    (found,) = client.get(f"{BASE}/requests/{code}.json").json()
    assert found["address"] == "Lieu-dit Les Trois Chênes"
    assert found["lat"] is None and found["long"] is None


BAD_POSTS: list[tuple[dict[str, Any], int, str]] = [
    ({"api_key": None}, 403, "api_key"),
    ({"api_key": "o311_not-a-key"}, 403, "api_key"),
    ({"service_code": None}, 400, "service_code"),
    ({"service_code": "licorne"}, 404, "licorne"),
    ({"lat": None, "long": None}, 400, "location"),
    ({"long": None}, 400, "long"),
    ({"lat": "nord"}, 400, "lat"),
    ({"lat": str(OUTSIDE[0]), "long": str(OUTSIDE[1])}, 400, "territory"),
    ({"description": "<script>alert(1)</script>"}, 400, "description"),
    ({"description": "x" * 4001}, 400, "4000"),
    ({"service_code": "eclairage"}, 400, "attribute[lamp_state]"),
    ({"service_code": "eclairage", "attribute[lamp_state]": "on-fire"}, 400, "lamp_state"),
    ({"attribute[colour]": "blue"}, 400, "colour"),
    ({"email": "not-an-address"}, 400, "email"),
    ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ({"jurisdiction_id": "atlantis"}, 404, "atlantis"),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_post_request_is_refused_with_the_spec_error_and_stores_nothing(
    client: TestClient, world: World, town: Any, app: Any, fmt: str
) -> None:
    for fields, status, words in BAD_POSTS:
        app.state.requests_limiter = None  # each case as if from its own address
        response = post_request(client, fmt, town, **fields)
        assert response.status_code == status, (fields, response.text)
        assert words in error_text(response, fmt), fields
        assert request_count(world.database) == 0, fields


def test_a_key_of_another_tenant_is_refused(client: TestClient, world: World, town: Any) -> None:
    other = territory(world, "ville-b", insee="21009")
    response = post_request(client, "xml", town, api_key=open311_key(world.database, other.tenant))
    assert response.status_code == 403
    assert request_count(world.database) == 0


def test_a_revoked_key_is_refused(client: TestClient, world: World, town: Any) -> None:
    admin = world.api(town.tenant, Role.ADMIN)
    created = admin.post("/api/v1/open311-keys", json={"name": "partenaire"}).json()
    assert post_request(client, "json", town, api_key=created["api_key"]).status_code == 200
    assert admin.delete(f"/api/v1/open311-keys/{created['id']}").status_code == 200
    response = post_request(client, "json", town, api_key=created["api_key"])
    assert response.status_code == 403


def test_a_json_body_is_refused_with_a_clear_error(client: TestClient, town: Any) -> None:
    response = client.post(
        f"{BASE}/requests.json", json={"api_key": town.key, "service_code": "voirie"}
    )
    assert response.status_code == 400
    assert "x-www-form-urlencoded" in error_text(response, "json")


@pytest.mark.parametrize("fmt", FORMATS)
def test_multivaluelist_answers_use_the_brackets_form(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    admin = world.api(town.tenant, Role.ADMIN)
    question = {
        "code": "objets",
        "datatype": "multivaluelist",
        "required": True,
        "description": "Qu'est-ce qui a été déposé ?",
        "values": [{"key": "gravats", "name": "Gravats"}, {"key": "meubles", "name": "Meubles"}],
    }
    assert (
        admin.post(
            "/api/v1/request-categories",
            json={"code": "depot", "name": "Dépôt sauvage", "attributes": [question]},
        ).status_code
        == 201
    )
    data = [
        ("jurisdiction_id", "ville-a"),
        ("api_key", town.key),
        ("service_code", "depot"),
        ("lat", str(INSIDE[0])),
        ("long", str(INSIDE[1])),
        ("attribute[objets][]", "gravats"),
        ("attribute[objets][]", "meubles"),
    ]
    response = client.post(
        f"{BASE}/requests.{fmt}",
        content="&".join(f"{k}={v}" for k, v in data).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    code = items(response, fmt, "request")[0]["service_request_id"]
    detail = admin.get(f"/api/v1/requests/{code}").json()
    assert detail["attributes"] == {"objets": ["gravats", "meubles"]}


# --- photos (the Media Handling extension: a `media` file part) -----------------------


def test_photo_is_stripped_of_exif_and_served_publicly(
    client: TestClient, world: World, town: Any
) -> None:
    photo = jpeg(gps=(47.061, 5.071))
    assert b"Exif" in photo
    response = client.post(
        f"{BASE}/requests.json",
        data={"api_key": town.key, "service_code": "voirie", "description": "Trou"},
        files={"media": ("trou.jpg", photo, "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    code = response.json()[0]["service_request_id"]
    (found,) = client.get(f"{BASE}/requests/{code}.json").json()
    # No coordinates were sent: the photo's GPS position placed the request.
    assert found["lat"] == pytest.approx(47.061, abs=1e-4)
    assert found["long"] == pytest.approx(5.071, abs=1e-4)
    assert "/c/ville-a/photos/" in found["media_url"]
    served = client.get(urlsplit(found["media_url"]).path)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.content.startswith(b"\xff\xd8")
    assert b"Exif" not in served.content and "Téléphone".encode() not in served.content


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_that_is_not_an_image_is_refused(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    response = client.post(
        f"{BASE}/requests.{fmt}",
        data={"api_key": town.key, "service_code": "voirie", "lat": "47.05", "long": "5.05"},
        files={"media": ("photo.jpg", b"%PDF-1.7 not an image at all", "image/jpeg")},
    )
    assert response.status_code == 400
    assert "JPEG, PNG or WebP" in error_text(response, fmt)
    assert request_count(world.database) == 0


def test_an_oversized_photo_is_413_in_the_spec_format(
    client: TestClient, world: World, town: Any
) -> None:
    big = jpeg(size=(900, 900), colour="blue") + b"\0" * 200_000  # > the 150 kB test limit
    response = client.post(
        f"{BASE}/requests.xml",
        data={"api_key": town.key, "service_code": "voirie", "lat": "47.05", "long": "5.05"},
        files={"media": ("big.jpg", big, "image/jpeg")},
    )
    assert response.status_code == 413
    assert "bytes" in error_text(response, "xml")
    assert request_count(world.database) == 0


# --- GET requests --------------------------------------------------------------------


def _age(database: Any, code: str, days: int) -> None:
    with database.session() as session:
        session.execute(
            update(CitizenRequest)
            .where(CitizenRequest.code == code)
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_requests_defaults_to_the_last_90_days(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    recent = new_code(client, town)
    old = new_code(client, town)
    _age(world.database, old, 100)
    listed = {
        r["service_request_id"] for r in items(client.get(f"{BASE}/requests.{fmt}"), fmt, "request")
    }
    assert listed == {recent}
    start = (datetime.now(UTC) - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ranged = client.get(f"{BASE}/requests.{fmt}", params={"start_date": start, "end_date": end})
    assert {r["service_request_id"] for r in items(ranged, fmt, "request")} == {old}


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_requests_filters_by_service_code_and_status(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    pothole = new_code(client, town)
    lamp = new_code(client, town, service_code="eclairage", **{"attribute[lamp_state]": "off"})
    with world.database.session() as session:
        service.add_update(
            session,
            town.tenant.id,
            pothole,
            status=Status.FIXED,
            note="Rebouché",
            public=True,
            actor=service.Actor(UpdateSource.AGENT),
        )

    def listed(**params: str) -> set[str]:
        response = client.get(f"{BASE}/requests.{fmt}", params=params)
        assert response.status_code == 200, response.text
        return {r["service_request_id"] for r in items(response, fmt, "request")}

    assert listed(service_code="eclairage") == {lamp}
    assert listed(service_code="eclairage,voirie") == {lamp, pothole}
    assert listed(status="closed") == {pothole}
    assert listed(status="open") == {lamp}
    assert listed(status="open,closed") == {lamp, pothole}
    assert listed(status="fixed") == {pothole}  # extended statuses are accepted too
    closed = items(client.get(f"{BASE}/requests/{pothole}.{fmt}"), fmt, "request")[0]
    assert closed["status"] == "closed" and closed["status_notes"] == "Rebouché"


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_request_id_overrides_every_other_filter(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    first, second, third = new_code(client, town), new_code(client, town), new_code(client, town)
    _age(world.database, second, 200)
    response = client.get(
        f"{BASE}/requests.{fmt}",
        params={"service_request_id": f"{first},{second}", "service_code": "eclairage"},
    )
    assert {r["service_request_id"] for r in items(response, fmt, "request")} == {first, second}
    assert third not in response.text


@pytest.mark.parametrize("fmt", FORMATS)
def test_page_and_page_size(client: TestClient, world: World, town: Any, fmt: str) -> None:
    codes = [new_code(client, town) for _ in range(5)]
    seen: list[str] = []
    for page in (1, 2, 3):
        response = client.get(f"{BASE}/requests.{fmt}", params={"page": page, "page_size": 2})
        seen.extend(r["service_request_id"] for r in items(response, fmt, "request"))
    assert sorted(seen) == sorted(codes) and len(seen) == 5  # every one once, newest first


BAD_QUERIES: list[tuple[dict[str, str], int, str]] = [
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, 400, "90 days"),
    ({"start_date": "hier"}, 400, "start_date"),
    ({"start_date": "2026-01-01T00:00:00"}, 400, "zone"),
    ({"end_date": "2026-01-01T00:00:00Z", "start_date": "2026-02-01T00:00:00Z"}, 400, "end_date"),
    ({"status": "lost"}, 400, "status"),
    ({"page": "0"}, 400, "page"),
    ({"page_size": "1001"}, 400, "page_size"),
    ({"page_size": "ten"}, 400, "page"),
    ({"service_code": "licorne"}, 404, "licorne"),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_get_requests_parameters_are_400_or_404(
    client: TestClient, town: Any, fmt: str
) -> None:
    for params, status, words in BAD_QUERIES:
        response = client.get(f"{BASE}/requests.{fmt}", params=params)
        assert response.status_code == status, (params, response.text)
        assert words in error_text(response, fmt), params


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_one_request_unknown_or_hidden_is_404(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    assert client.get(f"{BASE}/requests/ZZZZ-ZZZZ.{fmt}").status_code == 404
    code = new_code(client, town)
    with world.database.session() as session:
        service.set_hidden(
            session, town.tenant.id, code, True, actor=service.Actor(UpdateSource.AGENT)
        )
    response = client.get(f"{BASE}/requests/{code}.{fmt}")
    assert response.status_code == 404
    assert code in error_text(response, fmt)
    assert code not in client.get(f"{BASE}/requests.{fmt}").text


def test_another_jurisdictions_request_is_404(client: TestClient, world: World, town: Any) -> None:
    territory(world, "ville-b", insee="21009")
    code = new_code(client, town, jurisdiction_id="ville-a")
    assert (
        client.get(
            f"{BASE}/requests/{code}.json", params={"jurisdiction_id": "ville-b"}
        ).status_code
        == 404
    )
    assert (
        client.get(
            f"{BASE}/requests/{code}.json", params={"jurisdiction_id": "ville-a"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_is_escaped_in_xml_and_json(client: TestClient, town: Any, fmt: str) -> None:
    text = 'Plaque « soulevée » & dangereuse: 3 < 5 "cm" ]]>'
    code = new_code(client, town, description=text)
    (found,) = items(client.get(f"{BASE}/requests/{code}.{fmt}"), fmt, "request")
    assert found["description"] == text


# --- tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_token_gives_the_service_request_id(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    code = new_code(client, town)
    with world.database.session() as session:
        token = service.get_request(session, town.tenant.id, code).public_id
    response = client.get(f"{BASE}/tokens/{token}.{fmt}")
    assert response.status_code == 200
    assert items(response, fmt, "request") == [{"service_request_id": code, "token": token}]
    missing = client.get(f"{BASE}/tokens/00000000-0000-0000-0000-000000000000.{fmt}")
    assert missing.status_code == 404
    errors(missing, fmt)


# --- servicerequestupdates (FixMyStreet extension) -----------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_updates_lists_public_changes_with_extended_statuses(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    code = new_code(client, town)
    agent = world.api(town.tenant, Role.OPERATOR)
    assert (
        agent.post(
            f"/api/v1/requests/{code}/updates", json={"status": "investigating", "note": "Vu"}
        ).status_code
        == 201
    )
    assert (
        agent.post(
            f"/api/v1/requests/{code}/updates", json={"note": "Note interne", "public": False}
        ).status_code
        == 201
    )
    response = client.get(f"{BASE}/servicerequestupdates.{fmt}")
    assert response.status_code == 200
    found = items(response, fmt, "request_update")
    mine = [u for u in found if u["service_request_id"] == code]
    statuses = [u["status"] for u in mine]
    assert "investigating" in statuses and "open" in statuses
    assert "Note interne" not in response.text  # internal notes are not public
    investigating = next(u for u in mine if u["status"] == "investigating")
    assert investigating["description"] == "Vu"
    assert investigating["update_id"] and investigating["updated_datetime"].endswith("Z")
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        items(
            client.get(f"{BASE}/servicerequestupdates.{fmt}", params={"start_date": later}),
            fmt,
            "request_update",
        )
        == []
    )


def post_update(client: TestClient, fmt: str, key: str, code: str, **fields: str) -> Any:
    data = {
        "api_key": key,
        "service_request_id": code,
        "update_id": "fms-42",
        "updated_datetime": "2026-11-22T10:00:00+01:00",
        "status": "OPEN",
        "description": "Toujours pas réparé",
        "first_name": "Dominique",
    }
    data.update(fields)
    return client.post(f"{BASE}/servicerequestupdates.{fmt}", data=data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_update_adds_a_comment_once_even_when_retried(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    code = new_code(client, town)
    first = post_update(client, fmt, town.key, code)
    assert first.status_code == 200, first.text
    (created,) = items(first, fmt, "request_update")
    again = post_update(client, fmt, town.key, code)
    assert items(again, fmt, "request_update") == [created]
    with world.database.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(RequestUpdate)
            .where(RequestUpdate.external_id == "fms-42")
        )
    assert count == 1
    listed = client.get(f"{BASE}/servicerequestupdates.json").json()
    assert any(
        u["update_id"] == created["update_id"] and u["description"] == "Toujours pas réparé"
        for u in listed
    )
    assert "Dominique" not in client.get(f"{BASE}/servicerequestupdates.json").text


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_a_trusted_key_may_change_the_status(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    code = new_code(client, town)
    refused = post_update(client, fmt, town.key, code, status="FIXED", update_id="u1")
    assert refused.status_code == 403
    assert "status" in error_text(refused, fmt)
    trusted = open311_key(world.database, town.tenant, trusted=True)
    accepted = post_update(client, fmt, trusted, code, status="FIXED", update_id="u2")
    assert accepted.status_code == 200, accepted.text
    (found,) = items(client.get(f"{BASE}/requests/{code}.{fmt}"), fmt, "request")
    assert found["status"] == "closed"
    reopened = post_update(client, fmt, trusted, code, status="OPEN", update_id="u3")
    assert reopened.status_code == 200
    with world.database.session() as session:
        assert service.get_request(session, town.tenant.id, code).status is Status.REOPENED


BAD_UPDATES: list[tuple[dict[str, str], int, str]] = [
    ({"api_key": ""}, 403, "api_key"),
    ({"update_id": ""}, 400, "update_id"),
    ({"description": ""}, 400, "description"),
    ({"updated_datetime": "demain"}, 400, "updated_datetime"),
    ({"status": "PERDU"}, 400, "status"),
    ({"service_request_id": "ZZZZ-ZZZZ"}, 404, "ZZZZ-ZZZZ"),
    ({"description": "<img src=x onerror=alert(1)>"}, 400, "note"),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_post_update_is_refused(client: TestClient, world: World, town: Any, fmt: str) -> None:
    code = new_code(client, town)
    for fields, status, words in BAD_UPDATES:
        response = post_update(client, fmt, town.key, code, **fields)
        assert response.status_code == status, (fields, response.text)
        assert words in error_text(response, fmt), fields
        with world.database.session() as session:
            count = session.scalar(select(func.count()).select_from(RequestUpdate))
        assert count == 1, fields  # only the creation


# --- abuse ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_flood_from_one_address_is_rate_limited(
    client: TestClient, world: World, town: Any, fmt: str
) -> None:
    accepted = [post_request(client, fmt, town).status_code for _ in range(5)]
    assert accepted == [200] * 5
    response = post_request(client, fmt, town)
    assert response.status_code == 429
    assert "too many" in error_text(response, fmt)
    assert request_count(world.database) == 5
    # The authority's own trusted systems are not limited.
    trusted = open311_key(world.database, town.tenant, trusted=True)
    assert post_request(client, fmt, town, api_key=trusted).status_code == 200
