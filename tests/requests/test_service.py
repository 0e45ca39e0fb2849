"""Service tests: creation checks, photos, routing, statuses, merge, duplicates, the
hand-over to interventions and back, moderation, personal data and its access log."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from territoire.config import Settings
from territoire.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from territoire.interventions import service as interventions
from territoire.requests import catalogue, service
from territoire.requests.models import (
    Channel,
    ContactAccess,
    Follower,
    OutboxItem,
    Photo,
    Status,
    UpdateSource,
)
from territoire.requests.text import redact_personal_data
from territoire.tenancy.models import Role
from tests.conftest import World

from .helpers import INSIDE, OUTSIDE, jpeg, request_count, territory

AGENT = service.Actor(UpdateSource.AGENT)
CITIZEN = service.Actor(UpdateSource.CITIZEN)


def draft(**changes: Any) -> service.RequestDraft:
    values: dict[str, Any] = {
        "category_code": "voirie",
        "description": "Nid-de-poule dangereux",
        "lat": INSIDE[0],
        "lon": INSIDE[1],
    }
    values.update(changes)
    return service.RequestDraft(**values)


def limits(settings: Settings) -> service.PhotoLimits:
    return service.PhotoLimits(settings.uploads_dir, 150_000, 3)


def create(world: World, tenant_id: int, **changes: Any) -> str:
    with world.database.session() as session:
        return service.create_request(session, tenant_id, draft(**changes), actor=CITIZEN).code


# --- creation ------------------------------------------------------------------------


def test_created_request_has_a_readable_code_a_commune_and_an_open_history(
    world: World,
) -> None:
    place = territory(world, "ville-a")
    code = create(world, place.tenant.id)
    assert len(code) == 9 and code[4] == "-"
    assert not set(code.replace("-", "")) & set("01IO")  # easy to read out on the phone
    with world.database.session() as session:
        found = service.get_request(session, place.tenant.id, code.lower())
        assert found.commune_id == place.commune_id
        assert found.channel is Channel.WEB
        (first,) = service.history(session, found, public_only=True)
        assert first.status is Status.OPEN and first.old_status is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category_code": "inconnue"}, None),
        ({"lat": None, "lon": None}, "location"),
        ({"lat": OUTSIDE[0], "lon": OUTSIDE[1]}, "lat"),
        ({"lat": 95.0}, "lat"),
        ({"lon": float("nan")}, "lat"),
        ({"description": "<b>gras</b>"}, "description"),
        ({"phone": "appelez-moi"}, "phone"),
        ({"first_name": "<script>"}, "first_name"),
        ({"photos": [b"GIF89a not really"]}, "media[0]"),
    ],
)
def test_bad_drafts_are_refused_before_anything_is_stored(
    world: World, settings: Settings, changes: dict[str, Any], field: str | None
) -> None:
    place = territory(world, "ville-a")
    with pytest.raises((InvalidInput, NotFound)) as caught, world.database.session() as session:
        service.create_request(
            session, place.tenant.id, draft(**changes), actor=CITIZEN, photo_limits=limits(settings)
        )
    if field is not None:
        assert caught.value.problems[0].field == field
    assert request_count(world.database) == 0
    uploads = settings.uploads_dir / "requests"
    assert not uploads.exists() or not any(uploads.rglob("*.jpg"))


def test_photo_checks_size_count_and_decompression_bombs(world: World, settings: Settings) -> None:
    place = territory(world, "ville-a")
    with pytest.raises(PayloadTooLarge), world.database.session() as session:
        big = jpeg(size=(300, 300)) + b"\0" * 160_000
        service.create_request(
            session,
            place.tenant.id,
            draft(photos=[big]),
            actor=CITIZEN,
            photo_limits=limits(settings),
        )
    with pytest.raises(InvalidInput, match="at most 3"), world.database.session() as session:
        service.create_request(
            session,
            place.tenant.id,
            draft(photos=[jpeg()] * 4),
            actor=CITIZEN,
            photo_limits=limits(settings),
        )
    bomb = io.BytesIO()
    Image.new("1", (9000, 6000)).save(bomb, "PNG")  # 54 megapixels in a few kilobytes
    assert len(bomb.getvalue()) < 150_000
    with pytest.raises(InvalidInput, match="megapixels"), world.database.session() as session:
        service.create_request(
            session,
            place.tenant.id,
            draft(photos=[bomb.getvalue()]),
            actor=CITIZEN,
            photo_limits=limits(settings),
        )
    assert request_count(world.database) == 0


def test_photo_is_reencoded_without_metadata_and_places_the_request(
    world: World, settings: Settings
) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        created = service.create_request(
            session,
            place.tenant.id,
            draft(lat=None, lon=None, photos=[jpeg(gps=(47.033, 5.066))]),
            actor=CITIZEN,
            photo_limits=limits(settings),
        )
        (photo,) = service.photos_of(session, created, public_only=True)
        assert created.lat == pytest.approx(47.033, abs=1e-4)
        assert photo.exif_lat == pytest.approx(47.033, abs=1e-4)
        stored = (settings.uploads_dir / photo.path).read_bytes()
    assert stored.startswith(b"\xff\xd8")
    with Image.open(io.BytesIO(stored)) as image:
        assert not image.getexif()  # no EXIF at all: GPS, camera model… gone
        assert image.size == (64, 48)


def test_an_address_that_names_only_a_commune_places_it_in_that_commune(world: World) -> None:
    place = territory(world, "ville-a")
    code = create(
        world, place.tenant.id, lat=None, lon=None, address="Place du marché, Clairval-les-Tests"
    )
    with world.database.session() as session:
        found = service.get_request(session, place.tenant.id, code)
        assert found.commune_id == place.commune_id and found.lat is None


def test_answers_are_checked_against_the_categorys_questions(world: World) -> None:
    place = territory(world, "ville-a")
    code = create(
        world, place.tenant.id, category_code="eclairage", attributes={"lamp_state": "off"}
    )
    with world.database.session() as session:
        assert service.get_request(session, place.tenant.id, code).attributes == {
            "lamp_state": "off"
        }
    with pytest.raises(InvalidInput, match="required"):
        create(world, place.tenant.id, category_code="eclairage")


# --- routing -------------------------------------------------------------------------


def test_routing_takes_the_most_specific_rule(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        team = interventions.create_team(session, place.tenant.id, name="Voirie Nord")
        team_id = team.public_id
        catalogue.replace_routing(
            session,
            place.tenant.id,
            [
                catalogue.RoutingDraft(None, None, None, agency="Accueil de la mairie"),
                catalogue.RoutingDraft("voirie", None, None, agency="Service voirie"),
                catalogue.RoutingDraft("voirie", place.commune_id, team_id, agency=""),
            ],
        )
    road = create(world, place.tenant.id)
    light = create(
        world, place.tenant.id, category_code="eclairage", attributes={"lamp_state": "off"}
    )
    elsewhere = create(world, place.tenant.id, lat=None, lon=None, address="quelque part")
    with world.database.session() as session:
        assert service.get_request(session, place.tenant.id, road).team_id == team_id
        assert service.get_request(session, place.tenant.id, light).agency == "Accueil de la mairie"
        assert service.get_request(session, place.tenant.id, elsewhere).agency == "Service voirie"
        with pytest.raises(InvalidInput, match="no team"):
            catalogue.replace_routing(
                session, place.tenant.id, [catalogue.RoutingDraft(None, None, "nope")]
            )


# --- statuses ------------------------------------------------------------------------


def test_status_rules_and_closure_time(world: World) -> None:
    place = territory(world, "ville-a")
    code = create(world, place.tenant.id)
    tid = place.tenant.id
    with world.database.session() as session:
        with pytest.raises(InvalidInput, match="merging"):
            service.add_update(
                session, tid, code, status=Status.DUPLICATE, note="", public=True, actor=AGENT
            )
        with pytest.raises(InvalidInput, match="only a closed"):
            service.add_update(
                session, tid, code, status=Status.REOPENED, note="", public=True, actor=AGENT
            )
        with pytest.raises(InvalidInput, match="always public"):
            service.add_update(
                session, tid, code, status=Status.FIXED, note="", public=False, actor=AGENT
            )
        with pytest.raises(InvalidInput, match="new status or a note"):
            service.add_update(session, tid, code, status=None, note="  ", public=True, actor=AGENT)
        service.add_update(
            session, tid, code, status=Status.FIXED, note="Réparé", public=True, actor=AGENT
        )
        found = service.get_request(session, tid, code)
        assert found.closed_at is not None
        with pytest.raises(InvalidInput, match="reopen it first"):
            service.add_update(
                session, tid, code, status=Status.IN_PROGRESS, note="", public=True, actor=AGENT
            )
        service.add_update(
            session, tid, code, status=Status.REOPENED, note="", public=True, actor=AGENT
        )
        assert service.get_request(session, tid, code).closed_at is None


# --- duplicates and merge ------------------------------------------------------------


def test_duplicate_candidates_are_open_same_category_within_the_radius(world: World) -> None:
    place = territory(world, "ville-a")
    tid = place.tenant.id
    base = create(world, tid)
    near = create(world, tid, lat=INSIDE[0] + 0.0005)  # ~55 m north: inside 100 m
    far = create(world, tid, lat=INSIDE[0] + 0.002)  # ~220 m
    other_kind = create(world, tid, category_code="eclairage", attributes={"lamp_state": "off"})
    closed = create(world, tid, lat=INSIDE[0] - 0.0003)
    with world.database.session() as session:
        service.add_update(
            session, tid, closed, status=Status.FIXED, note="", public=True, actor=AGENT
        )
        found = service.duplicate_candidates(session, tid, base)
    codes = [r.code for r, _ in found]
    assert codes == [near]
    assert far not in codes and other_kind not in codes and closed not in codes
    assert 40 < found[0][1] < 70


def test_merge_marks_the_duplicate_and_moves_its_followers(world: World) -> None:
    place = territory(world, "ville-a")
    tid = place.tenant.id
    original = create(world, tid, email="a@example.org")
    duplicate = create(world, tid, email="b@example.org")
    with world.database.session() as session:
        service.merge(session, tid, duplicate, original, actor=AGENT)
        merged = service.get_request(session, tid, duplicate)
        assert merged.status is Status.DUPLICATE and merged.closed_at is not None
        target = service.get_request(session, tid, original)
        assert merged.duplicate_of_id == target.id
        followers = session.scalars(select(Follower.email).where(Follower.request_id == target.id))
        assert set(followers) == {"a@example.org", "b@example.org"}
        last = service.history(session, merged, public_only=True)[-1]
        assert original in last.note
        with pytest.raises(Conflict):
            service.merge(session, tid, duplicate, original, actor=AGENT)
        with pytest.raises(InvalidInput, match="itself"):
            service.merge(session, tid, original, original, actor=AGENT)
        with pytest.raises(InvalidInput, match="itself a duplicate"):
            service.merge(session, tid, original, duplicate, actor=AGENT)


# --- hand-over to interventions ------------------------------------------------------


def test_a_request_follows_its_work_order_to_fixed(world: World) -> None:
    place = territory(world, "ville-a")
    tid = place.tenant.id
    code = create(world, tid, email="suivi@example.org")
    with world.database.session() as session:
        team = interventions.create_team(session, tid, name="Éclairage", skills=["lighting"])
        work_order_id = service.create_work_order(
            session, tid, code, actor=AGENT, team_id=team.public_id, priority="high"
        )
        order = interventions.get_work_order(session, tid, work_order_id)
        assert order.source_kind.value == "request"
        assert order.priority.value == "high" and order.team_id == team.id
        assert order.location == {"type": "Point", "coordinates": [INSIDE[1], INSIDE[0]]}
        assert service.get_request(session, tid, code).status is Status.ACTION_SCHEDULED
        with pytest.raises(Conflict, match="already has a work order"):
            service.create_work_order(session, tid, code, actor=AGENT)
    with world.database.session() as session:
        interventions.transition(session, tid, work_order_id, "start", by_user=None)
    with world.database.session() as session:
        assert service.get_request(session, tid, code).status is Status.IN_PROGRESS
        interventions.transition(session, tid, work_order_id, "done", by_user=None)
    with world.database.session() as session:
        found = service.get_request(session, tid, code)
        assert found.status is Status.FIXED and found.closed_at is not None
        notes = [u.note for u in service.history(session, found, public_only=True)]
        assert any("résolu" in note for note in notes)
        statuses = list(session.scalars(select(OutboxItem.status).order_by(OutboxItem.id)))
    assert statuses == [Status.ACTION_SCHEDULED, Status.IN_PROGRESS, Status.FIXED]


def test_a_bad_priority_or_team_creates_no_work_order(world: World) -> None:
    place = territory(world, "ville-a")
    code = create(world, place.tenant.id)
    with world.database.session() as session, pytest.raises(InvalidInput, match="priority"):
        service.create_work_order(session, place.tenant.id, code, actor=AGENT, priority="asap")
    with world.database.session() as session:
        assert service.get_request(session, place.tenant.id, code).work_order_id is None
        with pytest.raises(InvalidInput, match="team"):
            service.create_work_order(session, place.tenant.id, code, actor=AGENT, team_id="x")


# --- moderation ----------------------------------------------------------------------


def test_redaction_masks_emails_and_phone_numbers() -> None:
    text = "Appelez Jean au 06 12 34 56 78 ou +33 6 12 34 56 78, jean.dupont@mail.fr. Rue 12."
    masked = redact_personal_data(text)
    assert "06 12" not in masked and "+33" not in masked and "jean.dupont" not in masked
    assert masked.count("[masqué]") == 3
    assert "Rue 12." in masked


def test_moderation_hides_redacts_and_blurs(world: World, settings: Settings) -> None:
    place = territory(world, "ville-a")
    tid = place.tenant.id
    with world.database.session() as session:
        created = service.create_request(
            session,
            tid,
            draft(description="Voiture garée, plaque AB-123-CD, mon tél 0612345678"),
            actor=CITIZEN,
            photo_limits=limits(settings),
        )
        code = created.code
        service.redact_description(session, tid, code, None, actor=AGENT)
        assert "0612345678" not in service.get_request(session, tid, code).description
        service.redact_description(session, tid, code, "Voiture garée sur le trottoir", actor=AGENT)
        assert (
            service.get_request(session, tid, code).description == "Voiture garée sur le trottoir"
        )
        service.set_hidden(session, tid, code, True, actor=AGENT)
        with pytest.raises(NotFound):
            service.get_public_request(session, tid, code)
        assert service.get_request(session, tid, code).hidden
        internal = [u for u in service.history(session, created, public_only=False) if not u.public]
        assert len(internal) == 3  # each moderation step is recorded, not shown


def test_blurring_a_photo_overwrites_its_pixels(world: World, settings: Settings) -> None:
    place = territory(world, "ville-a")
    tid = place.tenant.id
    picture = Image.new("RGB", (80, 60), "white")
    for x in range(0, 80, 2):
        for y in range(60):
            picture.putpixel((x, y), (0, 0, 0))
    raw = io.BytesIO()
    picture.save(raw, "PNG")
    with world.database.session() as session:
        created = service.create_request(
            session,
            tid,
            draft(photos=[raw.getvalue()]),
            actor=CITIZEN,
            photo_limits=limits(settings),
        )
        (photo,) = service.photos_of(session, created, public_only=False)
        path = Path(settings.uploads_dir / photo.path)
        before = Image.open(path).convert("L").getextrema()
        service.moderate_photo(
            session,
            tid,
            created.code,
            photo.public_id,
            hidden=True,
            blur=True,
            uploads_dir=settings.uploads_dir,
            actor=AGENT,
        )
        after = Image.open(path).convert("L").getextrema()
        assert before[1] - before[0] > 200 and after[1] - after[0] < 120  # stripes are gone
        with pytest.raises(NotFound):
            service.get_photo(session, tid, photo.public_id, public=True)
        assert service.get_photo(session, tid, photo.public_id, public=False).redacted_at


# --- personal data -------------------------------------------------------------------


def test_contact_is_shown_only_with_a_reason_and_every_view_is_logged(world: World) -> None:
    place = territory(world, "ville-a")
    tid = place.tenant.id
    code = create(
        world, tid, email="Claire@Example.org", phone="06 00 00 00 01", last_name="Martin"
    )
    with world.database.session() as session:
        with pytest.raises(InvalidInput, match="why"):
            service.view_contact(session, tid, code, purpose=" ", user_id=None, token_id=None)
        seen = service.view_contact(
            session, tid, code, purpose="Rappeler pour préciser le lieu", user_id=None, token_id=7
        )
        assert (seen.email, seen.last_name, seen.phone) == (
            "claire@example.org",
            "Martin",
            "06 00 00 00 01",
        )
        (access,) = service.contact_accesses(session, tid, code)
        assert access.purpose == "Rappeler pour préciser le lieu" and access.token_id == 7
        count = session.scalar(select(func.count()).select_from(ContactAccess))
    assert count == 1


def test_api_hides_contacts_from_readers_and_logs_operators(world: World) -> None:
    place = territory(world, "ville-a")
    code = create(world, place.tenant.id, email="claire@example.org")
    viewer = world.api(place.tenant, Role.VIEWER)
    detail = viewer.get(f"/api/v1/requests/{code}")
    assert detail.status_code == 200
    assert detail.json()["has_contact"] is True and "claire" not in detail.text
    refused = viewer.post(f"/api/v1/requests/{code}/contact", json={"purpose": "curiosité"})
    assert refused.status_code == 403
    operator = world.api(place.tenant, Role.OPERATOR)
    shown = operator.post(f"/api/v1/requests/{code}/contact", json={"purpose": "rappel"})
    assert shown.status_code == 200 and shown.json()["email"] == "claire@example.org"
    with world.database.session() as session:
        assert len(service.contact_accesses(session, place.tenant.id, code)) == 1


def test_assisted_entry_records_the_channel_and_the_agent(world: World) -> None:
    place = territory(world, "ville-a")
    operator = world.browser(world.account(place.tenant, Role.OPERATOR))
    created = operator.client.post(
        "/api/v1/requests",
        json={
            "service_code": "voirie",
            "channel": "phone",
            "description": "Appel de Mme Durand : trou rue des Lilas",
            "address": "rue des Lilas",
            "last_name": "Durand",
            "phone": "03 84 00 00 00",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"].endswith(f"/c/ville-a/requests/{body['code']}")
    detail = operator.client.get(f"/api/v1/requests/{body['code']}").json()
    assert detail["channel"] == "phone" and detail["has_contact"]
    assert detail["lat"] == pytest.approx(47.02)  # placed on the named street
    web = operator.client.post(
        "/api/v1/requests", json={"service_code": "voirie", "channel": "web", "address": "x"}
    )
    assert web.status_code == 422 and "channel" in web.text
    with world.database.session() as session:
        assert service.get_request(session, place.tenant.id, body["code"]).entered_by is not None


def test_other_tenants_never_see_each_others_requests(world: World) -> None:
    a = territory(world, "ville-a")
    b = territory(world, "ville-b", insee="21009")
    code_b = create(world, b.tenant.id)
    with world.database.session() as session:
        with pytest.raises(NotFound):
            service.get_request(session, a.tenant.id, code_b)
        assert service.list_requests(session, a.tenant.id, service.RequestFilter()).total == 0
    admin_a = world.api(a.tenant, Role.ADMIN)
    assert admin_a.get(f"/api/v1/requests/{code_b}").status_code == 404
    assert (
        admin_a.post(f"/api/v1/requests/{code_b}/contact", json={"purpose": "x" * 5}).status_code
        == 404
    )
    assert world.app.__class__  # the app is shared; B's page under A's slug is 404 too
    client = world.api(a.tenant, Role.VIEWER)
    assert client.get(f"/c/ville-a/requests/{code_b}").status_code == 404
    assert client.get(f"/c/ville-b/requests/{code_b}").status_code == 200


def test_count_photos_rows_match_files(world: World, settings: Settings) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        service.create_request(
            session,
            place.tenant.id,
            draft(photos=[jpeg(), jpeg(colour="green")]),
            actor=CITIZEN,
            photo_limits=limits(settings),
        )
        rows = session.scalar(select(func.count()).select_from(Photo))
    files = list((settings.uploads_dir / "requests").rglob("*.jpg"))
    assert rows == 2 and len(files) == 2
