"""The map page and its GeoJSON endpoints: viewport, layers, tenant isolation, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from territoire.registry import service as registry
from territoire.tenancy.models import Role
from tests.conftest import World

from .conftest import add_commune, add_entities, lights, point, signed_in_client


def street(local_id: str, lon: float) -> registry.EntityDraft:
    return registry.EntityDraft(
        type="RoadSegment",
        id=f"urn:ngsi-ld:RoadSegment:{local_id}",
        name=f"Rue {local_id}",
        location={"type": "LineString", "coordinates": [[lon, 47.02], [lon + 0.01, 47.02]]},
    )


def ids(collection: dict[str, Any]) -> set[str]:
    return {feature["id"] for feature in collection["features"]}


@pytest.fixture
def territory(world: World) -> dict[str, Any]:
    mine = world.tenant("ville-a")
    theirs = world.tenant("ville-b")
    add_commune(world, mine)
    add_entities(
        world,
        mine,
        [
            *lights(3, prefix="centre", lon=5.05),
            *lights(2, prefix="est", lon=5.30),
            street("grande-rue", 5.04),
            registry.EntityDraft(
                type="WasteContainer",
                id="urn:ngsi-ld:WasteContainer:bac-1",
                location=point(5.051, 47.011),
            ),
            registry.EntityDraft(type="Device", id="urn:ngsi-ld:Device:sans-lieu"),
        ],
    )
    # Same place, other tenant: must never show up.
    add_entities(world, theirs, [*lights(4, prefix="voisin", lon=5.05), street("leur-rue", 5.04)])
    client = signed_in_client(world, world.account(mine, Role.VIEWER))
    return {"client": client, "world": world, "theirs": theirs}


def test_features_are_those_of_the_viewport_and_tenant(territory: dict[str, Any]) -> None:
    response = territory["client"].get("/map/features", params={"bbox": "5.0,47.0,5.1,47.1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    assert ids(collection) == {
        "urn:ngsi-ld:Streetlight:centre-000",
        "urn:ngsi-ld:Streetlight:centre-001",
        "urn:ngsi-ld:Streetlight:centre-002",
        "urn:ngsi-ld:RoadSegment:grande-rue",
        "urn:ngsi-ld:WasteContainer:bac-1",
    }
    east = territory["client"].get("/map/features", params={"bbox": "5.25,47.0,5.35,47.1"})
    assert ids(east.json()) == {
        "urn:ngsi-ld:Streetlight:est-000",
        "urn:ngsi-ld:Streetlight:est-001",
    }


def test_features_carry_what_the_map_draws(territory: dict[str, Any]) -> None:
    collection = (
        territory["client"].get("/map/features", params={"bbox": "5.0,47.0,5.1,47.1"}).json()
    )
    by_id = {feature["id"]: feature for feature in collection["features"]}
    road = by_id["urn:ngsi-ld:RoadSegment:grande-rue"]
    assert road["geometry"]["type"] == "LineString"
    assert road["properties"]["layer"] == "mobility"
    assert road["properties"]["typeLabel"] == "Rue"
    assert road["properties"]["url"] == "/entities/urn:ngsi-ld:RoadSegment:grande-rue"
    light = by_id["urn:ngsi-ld:Streetlight:centre-000"]
    assert light["properties"]["layer"] == "lighting"
    assert light["properties"]["colour"].startswith("#")
    assert collection["layers"]["lighting"] == {"count": 3, "total": 3}
    assert collection["layers"]["waste"] == {"count": 1, "total": 1}


def test_layers_can_be_chosen(territory: dict[str, Any]) -> None:
    only_roads = (
        territory["client"]
        .get("/map/features", params={"bbox": "5.0,47.0,5.1,47.1", "layers": "mobility"})
        .json()
    )
    assert ids(only_roads) == {"urn:ngsi-ld:RoadSegment:grande-rue"}
    assert set(only_roads["layers"]) == {"mobility"}
    two = (
        territory["client"]
        .get("/map/features", params={"bbox": "5.0,47.0,5.1,47.1", "layers": "waste,lighting"})
        .json()
    )
    assert len(ids(two)) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "bbox"),
        ({"bbox": "5,47,5.1"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "5.1,47,5.0,47.1"}, "bbox"),
        ({"bbox": "5,47,5.1,nan"}, "bbox"),
        ({"bbox": "5,47,5.1,47.1", "layers": "lighting,licornes"}, "layers"),
    ],
)
def test_bad_map_queries_are_422_with_a_reason(
    territory: dict[str, Any], params: dict[str, str], field: str
) -> None:
    response = territory["client"].get(
        "/map/features", params=params, headers={"Accept": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["problems"][0]["field"] == field


def test_map_data_needs_a_signed_in_reader(world: World) -> None:
    from fastapi.testclient import TestClient

    anonymous = TestClient(world.app)  # type: ignore[arg-type]
    response = anonymous.get("/map/features", params={"bbox": "5,47,5.1,47.1"})
    assert response.status_code == 401
    assert anonymous.get("/map/communes").status_code == 401


def test_map_data_works_with_an_api_token_of_the_tenant(territory: dict[str, Any]) -> None:
    api = territory["world"].api(territory["theirs"], Role.VIEWER)
    collection = api.get("/map/features", params={"bbox": "5.0,47.0,5.1,47.1"}).json()
    assert ids(collection) == {
        *(f"urn:ngsi-ld:Streetlight:voisin-{i:03d}" for i in range(4)),
        "urn:ngsi-ld:RoadSegment:leur-rue",
    }


def test_communes_come_with_their_boundaries(territory: dict[str, Any]) -> None:
    collection = territory["client"].get("/map/communes").json()
    assert [f["properties"] for f in collection["features"]] == [
        {"name": "Bourg", "insee": "39001"}
    ]
    assert collection["features"][0]["geometry"]["type"] == "Polygon"


def test_map_page_offers_the_tenants_layers_and_configures_tiles(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_entities(world, tenant, [*lights(2), street("r", 5.0)])
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    html = client.get("/map").text
    assert 'id="layer-lighting"' in html and 'id="layer-mobility"' in html
    assert 'id="layer-waste"' not in html  # nothing of that domain in this tenant
    assert 'data-tile-url=""' in html
    assert "Aucun fond de carte n’est configuré" in html
    assert 'src="/static/js/map.js' in html and "preferCanvas" not in html


def test_map_page_with_a_tile_server(world: World, settings: Any, database: Any) -> None:
    from fastapi.testclient import TestClient

    from territoire.app import create_app
    from tests.web.conftest import HTML, sign_in

    configured = settings.model_copy(
        update={"tile_url": "https://tiles.example.org/{z}/{x}/{y}.png", "tile_attribution": "© X"}
    )
    app = create_app(configured, database)
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.VIEWER)
    client = TestClient(app)
    client.headers["Accept"] = HTML
    assert sign_in(client, account).status_code == 303
    response = client.get("/map")
    assert 'data-tile-url="https://tiles.example.org/{z}/{x}/{y}.png"' in response.text
    assert 'data-tile-attribution="© X"' in response.text
    assert "https://tiles.example.org" in response.headers["content-security-policy"]


def test_a_crowded_layer_is_capped_and_says_so(
    territory: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from territoire.web import maplayers

    monkeypatch.setattr(maplayers, "MAX_FEATURES_PER_LAYER", 2)
    collection = (
        territory["client"]
        .get("/map/features", params={"bbox": "5.0,47.0,5.1,47.1", "layers": "lighting"})
        .json()
    )
    assert len(collection["features"]) == 2
    assert collection["layers"]["lighting"] == {"count": 2, "total": 3}
