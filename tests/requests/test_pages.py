"""Residents' pages and back-office pages, through HTTP as a browser would use them
(forms, CSRF token, redirects), French by default."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from territoire.requests import catalogue, service
from territoire.requests.models import ContactAccess, Follower, Status, UpdateSource
from territoire.tenancy.models import Role
from tests.conftest import World

from .helpers import INSIDE, jpeg, request_count, territory

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def town(world: World) -> Any:
    return territory(world, "ville-a")


@pytest.fixture
def resident(app: Any) -> TestClient:
    return TestClient(app)


def form_token(client: TestClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    found = TOKEN.search(page.text)
    assert found
    return found.group(1)


def report(client: TestClient, token: str, **fields: Any) -> Any:
    data = {
        "csrf_token": token,
        "category": "eclairage",
        "attr.eclairage.lamp_state": "off",
        "description": "La rue est plongée dans le noir",
        "lat": str(INSIDE[0]),
        "lon": str(INSIDE[1]),
        "email": "riverain@example.org",
        "follow": "1",
    }
    data.update({k: v for k, v in fields.items() if k != "files"})
    return client.post(
        "/c/ville-a/requests/new", data=data, files=fields.get("files"), follow_redirects=False
    )


def test_report_page_is_french_by_default_and_english_on_request(
    resident: TestClient, town: Any
) -> None:
    page = resident.get("/c/ville-a/requests/new")
    assert page.status_code == 200
    assert 'lang="fr"' in page.text and "Signaler un problème" in page.text
    assert "Éclairage public" in page.text and "Nid-de-poule" in page.text
    assert "appelez le 112" in page.text  # the category's notice
    assert "La lampe est…" in page.text  # its question
    assert "script-src 'self'" in page.headers["content-security-policy"]
    english = resident.get("/c/ville-a/requests/new?lang=en")
    assert "Report a problem" in english.text and 'lang="en"' in english.text
    assert resident.get("/c/atlantis/requests/new").status_code == 404


def test_a_resident_reports_follows_and_subscribes(
    resident: TestClient, world: World, town: Any
) -> None:
    token = form_token(resident, "/c/ville-a/requests/new")
    sent = report(resident, token, files=[("photos", ("rue.jpg", jpeg(), "image/jpeg"))])
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    code = location.split("/")[-1].split("?")[0]
    follow = resident.get(location)
    assert follow.status_code == 200
    assert code in follow.text and "Numéro de suivi" in follow.text
    assert "Votre signalement est enregistré" in follow.text
    assert 'data-status="open"' in follow.text and "Ouvert" in follow.text
    assert "/c/ville-a/photos/" in follow.text
    assert "riverain" not in follow.text  # contact never shown publicly
    with world.database.session() as session:
        found = service.get_request(session, town.tenant.id, code)
        assert found.attributes == {"lamp_state": "off"}
        assert found.channel.value == "web"
    # Another address subscribes from the page.
    token = form_token(resident, f"/c/ville-a/requests/{code}")
    subscribed = resident.post(
        f"/c/ville-a/requests/{code}/subscribe",
        data={"csrf_token": token, "email": "voisine@example.org"},
        follow_redirects=False,
    )
    assert subscribed.status_code == 303
    assert "Vous recevrez un e-mail" in resident.get(subscribed.headers["location"]).text
    with world.database.session() as session:
        emails = set(session.scalars(select(Follower.email)))
    assert emails == {"riverain@example.org", "voisine@example.org"}
    # The tracking-number box finds it.
    lookup = resident.get(f"/c/ville-a/requests/lookup?code={code.lower()}", follow_redirects=False)
    assert lookup.headers["location"] == f"/c/ville-a/requests/{code}"
    home = resident.get("/c/ville-a/requests")
    assert code in home.text and "Signalements récents" in home.text
    geojson = resident.get("/c/ville-a/requests.geojson").json()
    assert geojson["features"][0]["properties"]["code"] == code


def test_similar_open_requests_are_suggested_before_saving(
    resident: TestClient, world: World, town: Any
) -> None:
    token = form_token(resident, "/c/ville-a/requests/new")
    first = report(resident, token)
    assert first.status_code == 303
    code = first.headers["location"].split("/")[-1].split("?")[0]
    token = form_token(resident, "/c/ville-a/requests/new")
    again = report(resident, token, lat=str(INSIDE[0] + 0.0002))
    assert again.status_code == 200  # shown, not saved
    assert "Déjà signalé ?" in again.text and code in again.text
    assert request_count(world.database) == 1
    fragment = resident.get(
        "/c/ville-a/requests/similar",
        params={"category": "eclairage", "lat": INSIDE[0], "lon": INSIDE[1]},
    )
    assert code in fragment.text
    other_kind = resident.get(
        "/c/ville-a/requests/similar",
        params={"category": "voirie", "lat": INSIDE[0], "lon": INSIDE[1]},
    )
    assert code not in other_kind.text
    confirmed = report(resident, token, lat=str(INSIDE[0] + 0.0002), confirm_new="1")
    assert confirmed.status_code == 303
    assert request_count(world.database) == 2


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"csrf_token": "forged"}, 403, "expiré"),
        ({"description": "<script>alert(1)</script>"}, 422, "plain text"),
        ({"description": ""}, 422, "Décrivez le problème"),
        ({"category": ""}, 422, "Choisissez une catégorie"),
        ({"category": "licorne"}, 404, "licorne"),
        ({"lat": "", "lon": "", "address": ""}, 422, "location"),
        ({"lat": "48.85", "lon": "2.35"}, 422, "territory"),
        ({"attr.eclairage.lamp_state": ""}, 422, "lamp_state"),
        ({"files": [("photos", ("x.jpg", b"not an image", "image/jpeg"))]}, 422, "JPEG"),
    ],
)
def test_bad_reports_show_the_form_again_with_a_message(
    resident: TestClient, world: World, town: Any, fields: dict[str, Any], status: int, words: str
) -> None:
    token = form_token(resident, "/c/ville-a/requests/new")
    response = report(resident, token, **fields)
    assert response.status_code == status
    assert words in response.text
    if "description" not in fields:  # what the resident typed is kept
        assert "La rue est plongée dans le noir" in response.text
    assert request_count(world.database) == 0


def test_the_web_form_is_rate_limited_per_address(
    resident: TestClient, world: World, town: Any
) -> None:
    statuses = []
    for index in range(6):
        token = form_token(resident, "/c/ville-a/requests/new")
        statuses.append(report(resident, token, lat=str(47.01 + index * 0.01)).status_code)
    assert statuses == [303] * 5 + [429]
    assert request_count(world.database) == 5


def test_hidden_requests_and_photos_are_not_public(
    resident: TestClient, world: World, town: Any
) -> None:
    token = form_token(resident, "/c/ville-a/requests/new")
    sent = report(resident, token, files=[("photos", ("rue.jpg", jpeg(), "image/jpeg"))])
    code = sent.headers["location"].split("/")[-1].split("?")[0]
    photo_url = re.search(
        r'src="(/c/ville-a/photos/[^"]+)"', resident.get(f"/c/ville-a/requests/{code}").text
    )
    assert photo_url and resident.get(photo_url.group(1)).status_code == 200
    with world.database.session() as session:
        service.set_hidden(
            session, town.tenant.id, code, True, actor=service.Actor(UpdateSource.AGENT)
        )
    assert resident.get(f"/c/ville-a/requests/{code}").status_code == 404
    assert resident.get(photo_url.group(1)).status_code == 404
    assert code not in resident.get("/c/ville-a/requests").text
    agent = world.api(town.tenant, Role.VIEWER)
    office_photo = photo_url.group(1).replace("/c/ville-a/photos/", "/office/photos/")
    assert agent.get(office_photo).status_code == 200


# --- back office ---------------------------------------------------------------------


def test_inbox_filters_and_shows_requests_to_readers(world: World, town: Any) -> None:
    with world.database.session() as session:
        for address in ("rue des Lilas", "place du marché"):
            service.create_request(
                session,
                town.tenant.id,
                service.RequestDraft(category_code="voirie", description="Trou", address=address),
                actor=service.Actor(UpdateSource.CITIZEN),
            )
    viewer = world.browser(world.account(town.tenant, Role.VIEWER)).client
    inbox = viewer.get("/office/requests")
    assert inbox.status_code == 200 and "2 signalements" in inbox.text
    assert "rue des Lilas" in inbox.text and "Signalements" in inbox.text
    filtered = viewer.get("/office/requests", params={"q": "marché"})
    assert "1 signalement" in filtered.text and "rue des Lilas" not in filtered.text
    closed = viewer.get("/office/requests", params={"group": "closed"})
    assert "0 signalement" in closed.text
    # A reader cannot enter requests nor see contacts.
    assert viewer.get("/office/requests/new").status_code == 403


def test_an_agent_enters_answers_and_sees_the_contact_with_a_reason(
    world: World, town: Any
) -> None:
    agent = world.browser(world.account(town.tenant, Role.OPERATOR)).client
    with world.database.session() as session:
        catalogue.create_template(
            session,
            town.tenant.id,
            title="Pris en compte",
            body="Merci, c'est transmis.",
            status=Status.INVESTIGATING,
        )
        template_id = catalogue.list_templates(session, town.tenant.id)[0].public_id
    form = agent.get("/office/requests/new")
    assert form.status_code == 200 and "Téléphone" in form.text
    created = agent.post(
        "/office/requests/new",
        data={
            "channel": "desk",
            "category": "voirie",
            "address": "12 rue des Lilas",
            "description": "Une habitante signale un trou",
            "last_name": "Martin",
            "phone": "03 84 11 22 33",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    detail_url = created.headers["location"].split("?")[0]
    code = detail_url.rsplit("/", 1)[-1]
    page = agent.get(detail_url)
    assert "Accueil" in page.text and "Martin" not in page.text  # contact only on demand
    answered = agent.post(
        f"/office/requests/{code}/update", data={"template": template_id}, follow_redirects=False
    )
    assert answered.status_code == 303
    refused = agent.post(f"/office/requests/{code}/contact", data={"purpose": ""})
    assert refused.status_code == 422 and "why" in refused.text
    shown = agent.post(f"/office/requests/{code}/contact", data={"purpose": "La rappeler"})
    assert shown.status_code == 200 and "03 84 11 22 33" in shown.text
    with world.database.session() as session:
        found = service.get_request(session, town.tenant.id, code)
        assert found.status is Status.INVESTIGATING and found.channel.value == "desk"
        assert service.latest_public_note(session, found) == "Merci, c'est transmis."
        accesses = session.scalar(select(func.count()).select_from(ContactAccess))
    assert accesses == 1
    # The form without CSRF token is refused (cookie-authenticated state change).
    del agent.headers["X-CSRF-Token"]
    assert agent.post(f"/office/requests/{code}/update", data={"note": "x"}).status_code == 403


def test_merge_and_moderation_from_the_request_page(world: World, town: Any) -> None:
    agent = world.browser(world.account(town.tenant, Role.OPERATOR)).client
    codes = []
    with world.database.session() as session:
        for offset in (0.0, 0.0003):
            codes.append(
                service.create_request(
                    session,
                    town.tenant.id,
                    service.RequestDraft(
                        category_code="voirie",
                        description="Trou, appelez-moi au 06 11 22 33 44",
                        lat=INSIDE[0] + offset,
                        lon=INSIDE[1],
                    ),
                    actor=service.Actor(UpdateSource.CITIZEN),
                ).code
            )
    page = agent.get(f"/office/requests/{codes[1]}")
    assert "Doublons possibles" in page.text and codes[0] in page.text
    merged = agent.post(
        f"/office/requests/{codes[1]}/merge", data={"into": codes[0]}, follow_redirects=False
    )
    assert merged.status_code == 303
    redacted = agent.post(
        f"/office/requests/{codes[0]}/moderate", data={"action": "redact"}, follow_redirects=False
    )
    assert redacted.status_code == 303
    hidden = agent.post(
        f"/office/requests/{codes[0]}/moderate", data={"action": "hide"}, follow_redirects=False
    )
    assert hidden.status_code == 303
    with world.database.session() as session:
        assert service.get_request(session, town.tenant.id, codes[1]).status is Status.DUPLICATE
        original = service.get_request(session, town.tenant.id, codes[0])
        assert "06 11" not in original.description and original.hidden
    bad = agent.post(f"/office/requests/{codes[0]}/moderate", data={"action": "explode"})
    assert bad.status_code == 422
