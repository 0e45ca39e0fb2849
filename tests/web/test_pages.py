"""Home, entity list (filters, pagination, htmx fragments), entity detail and error pages."""

from __future__ import annotations

import re

from territoire.registry import service as registry
from territoire.tenancy.models import Role
from tests.conftest import World

from .conftest import add_commune, add_entities, lights, page_client, point, signed_in_client

ROW = re.compile(r'<tr>\s*<th scope="row"><a href="/entities/([^"]+)">')


def listed_urns(html: str) -> list[str]:
    return ROW.findall(html)


def result_total(html: str) -> int:
    found = re.search(r'data-total="(\d+)"', html)
    assert found, "no result count in the page"
    return int(found.group(1))


def test_home_shows_tenant_communes_and_counts_by_domain(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_commune(world, tenant)
    add_entities(
        world,
        tenant,
        [
            *lights(3),
            registry.EntityDraft(type="WasteContainer", id="urn:ngsi-ld:WasteContainer:b1"),
        ],
    )
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    html = client.get("/").text
    assert "<h1>Collectivité ville-a</h1>" in html
    assert "Bourg" in html and "39001" in html
    assert "1\u202f234" in html  # population, French grouping
    assert "Éclairage public" in html and "Déchets" in html
    assert (
        '<a href="/entities?type=Streetlight">Point lumineux</a> <span class="count">3</span>'
        in html
    )
    assert '<a href="/entities?commune=39001">3</a>' in html  # the bin has no location
    assert "4 équipements enregistrés" in html


def test_entity_list_filters_by_type_commune_and_text(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_commune(world, tenant)
    add_entities(
        world,
        tenant,
        [
            *lights(5),
            *lights(2, prefix="hors", lon=6.5),  # outside the commune
            registry.EntityDraft(
                type="WasteContainer",
                id="urn:ngsi-ld:WasteContainer:b1",
                name="Bac de la place",
                location=point(5.05, 47.05),
            ),
        ],
    )
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    assert result_total(client.get("/entities").text) == 8
    by_type = client.get("/entities", params={"type": "WasteContainer"}).text
    assert listed_urns(by_type) == ["urn:ngsi-ld:WasteContainer:b1"]
    by_commune = client.get("/entities", params={"commune": "39001"}).text
    assert result_total(by_commune) == 6
    assert not [u for u in listed_urns(by_commune) if "hors" in u]
    by_text = client.get("/entities", params={"q": "HORS-001"}).text
    assert listed_urns(by_text) == ["urn:ngsi-ld:Streetlight:hors-001"]
    combined = client.get("/entities", params={"type": "Streetlight", "q": "place"}).text
    assert result_total(combined) == 0
    assert "Aucun équipement ne correspond à ces filtres." in combined


def test_entity_list_paginates_with_links_that_keep_the_filters(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_entities(world, tenant, lights(120))
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    first = client.get("/entities", params={"type": "Streetlight"}).text
    assert result_total(first) == 120
    assert "page 1 sur 3" in first
    assert 'href="/entities?type=Streetlight&amp;page=2"' in first
    assert 'rel="prev"' not in first
    second = client.get("/entities", params={"type": "Streetlight", "page": "2"}).text
    third = client.get("/entities", params={"type": "Streetlight", "page": "3"}).text
    pages = [listed_urns(first), listed_urns(second), listed_urns(third)]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert len({urn for page in pages for urn in page}) == 120
    assert 'href="/entities?type=Streetlight"' in second  # back to page 1
    assert 'rel="next"' not in third


def test_htmx_requests_get_only_the_results_fragment(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_entities(world, tenant, lights(3))
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    fragment = client.get("/entities", params={"q": "l-002"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert listed_urns(fragment.text) == ["urn:ngsi-ld:Streetlight:l-002"]
    restore = client.get(
        "/entities",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text  # a history restore needs the whole page


def test_invalid_filters_are_explained_in_the_page(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_entities(world, tenant, lights(3))
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    cases = [
        ({"type": "Licorne"}, "unknown entity type"),
        ({"commune": "99999"}, "no commune"),
        ({"page": "abc"}, "page"),
        ({"page": "0"}, "page"),
        ({"q": "x" * 201}, "at most 200"),
        ({"bbox": "1,2,3"}, "minLon,minLat,maxLon,maxLat"),
    ]
    for params, reason in cases:
        response = client.get("/entities", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"].startswith("text/html")
        assert "Ces filtres ne sont pas valides" in response.text
        assert reason in response.text, params
        assert listed_urns(response.text) == []


def test_entity_list_accepts_a_map_area(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_entities(world, tenant, [*lights(2), *lights(2, prefix="loin", lon=6.5)])
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    html = client.get("/entities", params={"bbox": "6.4,46.9,6.6,47.2"}).text
    assert sorted(listed_urns(html)) == [
        "urn:ngsi-ld:Streetlight:loin-000",
        "urn:ngsi-ld:Streetlight:loin-001",
    ]
    assert "zone affichée sur la carte" in html


def test_entity_detail_shows_properties_relationships_and_a_map(world: World) -> None:
    tenant = world.tenant("ville-a")
    add_commune(world, tenant)
    add_entities(
        world,
        tenant,
        [
            registry.EntityDraft(
                type="Streetlight",
                id="urn:ngsi-ld:Streetlight:rue-1",
                name="Lampe <rue> 1",
                location=point(5.05, 47.05),
                properties={
                    "powerConsumption": 1500.5,
                    "tags": ["led", "2024"],
                    "address": {"addressLocality": "Clairval", "streetAddress": "Rue de l’Été"},
                    "dimmable": True,
                },
                relationships={"refStreetlightControlCabinet": "urn:ngsi-ld:Device:armoire-1"},
            )
        ],
    )
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    response = client.get("/entities/urn:ngsi-ld:Streetlight:rue-1")
    assert response.status_code == 200
    html = response.text
    assert "<h1>Lampe &lt;rue&gt; 1</h1>" in html  # escaped
    assert "Bourg (39001)" in html
    assert "1\u202f500,5" in html  # number in French
    assert "led, 2024" in html
    assert "<dt><code>streetAddress</code></dt><dd>Rue de l’Été</dd>" in html
    assert "<code>true</code>" in html
    assert 'href="/entities/urn:ngsi-ld:Device:armoire-1"' in html
    assert 'id="entity-map"' in html
    assert """data-focus='{"coordinates": [5.05, 47.05], "type": "Point"}'""" in html


def test_another_tenants_entity_is_a_404_page(world: World) -> None:
    mine = world.tenant("ville-a")
    theirs = world.tenant("ville-b")
    add_entities(world, theirs, lights(1, prefix="secret"))
    client = signed_in_client(world, world.account(mine, Role.ADMIN))
    response = client.get("/entities/urn:ngsi-ld:Streetlight:secret-000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page introuvable" in response.text
    assert "Lampe secret-000" not in response.text
    listing = client.get("/entities", params={"q": "secret"}).text
    assert result_total(listing) == 0


def test_unknown_page_is_an_html_404_for_people_and_json_for_programs(world: World) -> None:
    client = page_client(world.app)
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page introuvable" in page.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
