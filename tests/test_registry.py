"""Entity registry: API, spatial index, commune lookup, filters and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from territoire.registry import service as registry
from territoire.registry.models import Entity
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, Tenant

from .conftest import World

SQUARE_WEST = {
    "type": "Polygon",
    "coordinates": [[[5.0, 47.0], [5.1, 47.0], [5.1, 47.1], [5.0, 47.1], [5.0, 47.0]]],
}
SQUARE_EAST = {
    "type": "Polygon",
    "coordinates": [[[5.1, 47.0], [5.2, 47.0], [5.2, 47.1], [5.1, 47.1], [5.1, 47.0]]],
}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def with_communes(world: World, slug: str) -> Tenant:
    tenant = world.tenant(slug)
    with world.database.session() as session:
        tenancy.create_commune(
            session, tenant.id, insee_code="21001", name="Ouest", boundary=SQUARE_WEST
        )
        tenancy.create_commune(
            session, tenant.id, insee_code="21002", name="Est", boundary=SQUARE_EAST
        )
    return tenant


def test_create_read_update_delete(world: World) -> None:
    tenant = with_communes(world, "ville-a")
    api = world.api(tenant, Role.OPERATOR)
    created = api.post(
        "/api/v1/entities",
        json={
            "id": "urn:ngsi-ld:Streetlight:sl-1",
            "type": "Streetlight",
            "name": "Lampadaire 1",
            "properties": {"powerConsumption": 50},
            "location": point(5.05, 47.05),
            "relationships": {
                "refStreetlightControlCabinet": "urn:ngsi-ld:StreetlightControlCabinet:c1"
            },
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["commune"] == "21001"
    fetched = api.get("/api/v1/entities/urn:ngsi-ld:Streetlight:sl-1").json()
    assert fetched["properties"] == {"powerConsumption": 50}
    assert fetched["relationships"]["refStreetlightControlCabinet"].endswith(":c1")

    moved = api.patch(
        "/api/v1/entities/urn:ngsi-ld:Streetlight:sl-1",
        json={
            "location": point(5.15, 47.05),
            "properties": {"lanternHeight": 8, "powerConsumption": None},
        },
    )
    assert moved.status_code == 200
    assert moved.json()["commune"] == "21002", "the commune follows the new location"
    assert moved.json()["properties"] == {"lanternHeight": 8}
    east = api.get("/api/v1/entities", params={"bbox": "5.14,47.04,5.16,47.06"}).json()
    west = api.get("/api/v1/entities", params={"bbox": "5.04,47.04,5.06,47.06"}).json()
    assert east["total"] == 1 and west["total"] == 0, "the spatial index follows updates"

    assert api.delete("/api/v1/entities/urn:ngsi-ld:Streetlight:sl-1").status_code == 204
    assert api.get("/api/v1/entities/urn:ngsi-ld:Streetlight:sl-1").status_code == 404
    assert (
        api.get("/api/v1/entities", params={"bbox": "5.14,47.04,5.16,47.06"}).json()["total"] == 0
    )


def test_generated_id_is_an_ngsi_ld_urn_of_the_type(world: World) -> None:
    tenant = world.tenant("ville-a")
    api = world.api(tenant, Role.OPERATOR)
    created = api.post("/api/v1/entities", json={"type": "WasteContainer"}).json()
    assert registry.URN_PATTERN.match(created["id"])
    assert created["id"].startswith("urn:ngsi-ld:WasteContainer:")


def test_filters_type_commune_bbox_text(world: World) -> None:
    tenant = with_communes(world, "ville-a")
    with world.database.session() as session:
        for index in range(10):
            registry.create_entity(
                session,
                tenant.id,
                registry.EntityDraft(
                    type="Streetlight" if index % 2 else "WasteContainer",
                    id=f"urn:ngsi-ld:{'Streetlight' if index % 2 else 'WasteContainer'}:x{index}",
                    name=f"Objet numéro {index}",
                    location=point(5.01 + index * 0.019, 47.05),
                ),
            )
    api = world.api(tenant, Role.VIEWER)

    def total(**params: str) -> int:
        response = api.get("/api/v1/entities", params=params)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert total() == 10
    assert total(type="Streetlight") == 5
    assert total(type="Streetlight,WasteContainer") == 10
    assert total(commune="21001") == 5 and total(commune="21002") == 5
    assert total(bbox="5.0,47.0,5.05,47.1") == 3
    assert total(q="NUMÉRO 7".lower()) == 1
    assert total(q="x1") == 1
    assert total(type="Streetlight", commune="21002") == 3
    assert total(domain="lighting") == 5
    assert total(q="100%") == 0, "LIKE wildcards in the text are taken literally"


def test_pagination_reports_total_and_next_offset(world: World) -> None:
    tenant = world.tenant("ville-a")
    with world.database.session() as session:
        locator = registry.commune_locator(session, tenant.id)
        registry.insert_entities(
            session,
            [
                registry.validated_row(
                    registry.EntityDraft(type="ParkingSpot", id=f"urn:ngsi-ld:ParkingSpot:p{i}"),
                    tenant.id,
                    locator,
                )
                for i in range(25)
            ],
        )
    api = world.api(tenant, Role.VIEWER)
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get("/api/v1/entities", params={"limit": 10, "offset": offset}).json()
        assert page["total"] == 25
        seen.extend(item["id"] for item in page["items"])
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 25


def test_total_count_stays_exact_past_100000_entities(world: World) -> None:
    tenant = world.tenant("grande-ville")
    other = world.tenant("voisine")
    count = 100_123
    with world.database.session() as session:
        now = registry.utcnow()
        base = {
            "type": "Streetlight",
            "name": None,
            "properties": {},
            "relationships": {},
            "location": None,
            "min_lon": None,
            "min_lat": None,
            "max_lon": None,
            "max_lat": None,
            "commune_id": None,
            "created_at": now,
            "modified_at": now,
        }
        for start in range(0, count, 20_000):
            rows = [
                {**base, "tenant_id": tenant.id, "urn": f"urn:ngsi-ld:Streetlight:n{i}"}
                for i in range(start, min(start + 20_000, count))
            ]
            registry.insert_entities(session, rows)
        registry.insert_entities(
            session, [{**base, "tenant_id": other.id, "urn": "urn:ngsi-ld:Streetlight:n1"}]
        )
    api = world.api(tenant, Role.VIEWER)
    last = api.get("/api/v1/entities", params={"limit": 1000, "offset": count - 23}).json()
    assert last["total"] == count
    assert len(last["items"]) == 23
    assert last["next_offset"] is None
    assert last["items"][-1]["id"] == f"urn:ngsi-ld:Streetlight:n{count - 1}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "Lampadaire"}, "type"),
        ({"type": "Streetlight", "id": "sl-1"}, "id"),
        ({"type": "Streetlight", "id": "urn:ngsi-ld:WasteContainer:1"}, "id"),
        (
            {"type": "Streetlight", "location": {"type": "Point", "coordinates": [200, 47]}},
            "location",
        ),
        (
            {"type": "Streetlight", "location": {"type": "Point", "coordinates": ["a", 47]}},
            "location",
        ),
        (
            {"type": "Streetlight", "location": {"type": "Circle", "coordinates": [5, 47]}},
            "location",
        ),
        (
            {
                "type": "Streetlight",
                "location": {
                    "type": "Polygon",
                    "coordinates": [[[5, 47], [5.1, 47.1], [5, 47.1], [5.1, 47], [5, 47]]],
                },
            },
            "location",
        ),
        ({"type": "Streetlight", "location": "POINT(5 47)"}, "location"),
        ({"type": "Streetlight", "properties": {"bad key": 1}}, "properties.bad key"),
        ({"type": "Streetlight", "relationships": {"refX": "not-a-urn"}}, "relationships.refX"),
        ({"type": "Streetlight", "unexpected": True}, "unexpected"),
        ({"type": "Streetlight", "name": "x" * 201}, "name"),
    ],
)
def test_bad_entities_are_refused_with_the_field_and_nothing_is_stored(
    world: World, body: dict[str, Any], field: str
) -> None:
    tenant = world.tenant("ville-a")
    api = world.api(tenant, Role.OPERATOR)
    response = api.post("/api/v1/entities", json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["error"]["problems"]
    assert any(p["field"] == field for p in problems), problems
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Entity)) == 0


def test_duplicate_id_is_409_and_the_original_is_untouched(world: World) -> None:
    tenant = world.tenant("ville-a")
    api = world.api(tenant, Role.OPERATOR)
    first = {"id": "urn:ngsi-ld:Streetlight:sl-1", "type": "Streetlight", "name": "Original"}
    assert api.post("/api/v1/entities", json=first).status_code == 201
    again = api.post("/api/v1/entities", json={**first, "name": "Copie"})
    assert again.status_code == 409
    assert api.get("/api/v1/entities/urn:ngsi-ld:Streetlight:sl-1").json()["name"] == "Original"


def test_same_urn_in_two_tenants_is_allowed_and_kept_apart(world: World) -> None:
    a, b = world.tenant("ville-a"), world.tenant("ville-b")
    body = {"id": "urn:ngsi-ld:Streetlight:sl-1", "type": "Streetlight"}
    assert (
        world.api(a, Role.OPERATOR).post("/api/v1/entities", json={**body, "name": "A"}).status_code
        == 201
    )
    assert (
        world.api(b, Role.OPERATOR).post("/api/v1/entities", json={**body, "name": "B"}).status_code
        == 201
    )
    assert (
        world.api(a, Role.VIEWER)
        .get("/api/v1/entities/urn:ngsi-ld:Streetlight:sl-1")
        .json()["name"]
        == "A"
    )


def test_bad_query_parameters_are_4xx(world: World) -> None:
    tenant = world.tenant("ville-a")
    api = world.api(tenant, Role.VIEWER)
    for params in (
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "5,47,4,48"},
        {"limit": "0"},
        {"limit": "5000"},
        {"offset": "-1"},
        {"type": "Nope"},
        {"domain": "nope"},
        {"bbox": "nan,1,2,3"},
    ):
        response = api.get("/api/v1/entities", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["message"]
    assert api.get("/api/v1/entities", params={"commune": "99999"}).status_code == 404


def test_oversized_body_is_413_and_nothing_is_stored(world: World) -> None:
    tenant = world.tenant("ville-a")
    api = world.api(tenant, Role.OPERATOR)
    huge = {"type": "Streetlight", "properties": {"notes": "x" * 400_000}}
    response = api.post("/api/v1/entities", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    chunked = api.post(
        "/api/v1/entities",
        content=iter([b'{"type": "Streetlight", "name": "', b"y" * 300_000, b'"}']),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Entity)) == 0


def test_malformed_json_is_422_with_a_message(world: World) -> None:
    tenant = world.tenant("ville-a")
    api = world.api(tenant, Role.OPERATOR)
    response = api.post(
        "/api/v1/entities", content=b'{"type": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "json" in response.json()["error"]["message"].lower()


def test_viewer_may_read_but_not_write(world: World) -> None:
    tenant = world.tenant("ville-a")
    viewer = world.api(tenant, Role.VIEWER)
    assert viewer.get("/api/v1/entities").status_code == 200
    refused = viewer.post("/api/v1/entities", json={"type": "Streetlight"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
