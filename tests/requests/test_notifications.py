"""E-mail to followers through a real SMTP server (aiosmtpd on a free local port), the
digest, unsubscribing, a failing server, and the retention purge of personal data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from typer.testing import CliRunner

from territoire.config import Settings
from territoire.db.base import utcnow
from territoire.requests import catalogue, notifications, service
from territoire.requests.demo import seed_demo_requests
from territoire.requests.models import (
    CitizenRequest,
    Contact,
    Follower,
    OutboxItem,
    OutboxState,
    Status,
    UpdateSource,
)
from tests.conftest import World

from .helpers import INSIDE, Sink, body_of, free_port, territory

AGENT = service.Actor(UpdateSource.AGENT)


def new_request(world: World, tenant_id: int, email_address: str | None) -> str:
    with world.database.session() as session:
        return service.create_request(
            session,
            tenant_id,
            service.RequestDraft(
                category_code="voirie",
                description="Trou",
                lat=INSIDE[0],
                lon=INSIDE[1],
                email=email_address,
            ),
            actor=service.Actor(UpdateSource.CITIZEN),
        ).code


def change(world: World, tenant_id: int, code: str, status: Status | None, note: str) -> None:
    with world.database.session() as session:
        service.add_update(
            session, tenant_id, code, status=status, note=note, public=True, actor=AGENT
        )


def deliver(world: World, settings: Settings, **options: Any) -> notifications.DeliveryReport:
    with world.database.session() as session:
        return notifications.deliver_due(session, settings, **options)


def test_changes_within_the_window_make_one_digest_with_an_unsubscribe_link(
    world: World, settings: Settings, sink: Sink
) -> None:
    place = territory(world, "ville-a")
    code = new_request(world, place.tenant.id, "riverain@example.org")
    change(world, place.tenant.id, code, Status.INVESTIGATING, "Nous regardons.")
    change(world, place.tenant.id, code, None, "Un agent passe demain.")
    change(world, place.tenant.id, code, Status.FIXED, "C'est réparé.")
    # The window has not passed yet: the changes wait to be sent together.
    waiting = deliver(world, settings, window_seconds=600)
    assert waiting.messages == 0 and waiting.waiting == 3 and sink.messages == []
    report = deliver(world, settings, now=utcnow() + timedelta(minutes=11), window_seconds=600)
    assert (report.messages, report.items) == (1, 3)
    (message,) = sink.messages
    assert sink.recipients == [["riverain@example.org"]]
    assert code in message["Subject"] and "Collectivité ville-a" in message["Subject"]
    text = body_of(message)
    for expected in ("En cours d'examen", "Résolu", "Nous regardons.", "Un agent passe demain."):
        assert expected in text
    assert f"/c/ville-a/requests/{code}" in text
    with world.database.session() as session:
        token = session.scalar(select(Follower.token))
    assert f"/c/ville-a/unsubscribe/{token}" in text
    assert token in message["List-Unsubscribe"]
    # Sent items are not sent again.
    assert deliver(world, settings, window_seconds=0).messages == 0


def test_unsubscribing_stops_the_emails(
    world: World, settings: Settings, sink: Sink, client: Any
) -> None:
    place = territory(world, "ville-a")
    code = new_request(world, place.tenant.id, "riverain@example.org")
    change(world, place.tenant.id, code, Status.INVESTIGATING, "")
    with world.database.session() as session:
        token = session.scalar(select(Follower.token))
    page = client.get(f"/c/ville-a/unsubscribe/{token}")
    assert page.status_code == 200 and code in page.text
    assert client.post(f"/c/ville-b/unsubscribe/{token}").status_code == 404
    assert client.post(f"/c/ville-a/unsubscribe/{token}").status_code == 200
    # The app's own background sender (every second in these tests) may have sent the
    # first change before the unsubscription: only what comes after it is judged.
    sent_before = len(sink.messages)
    change(world, place.tenant.id, code, Status.FIXED, "")
    assert deliver(world, settings, window_seconds=0).messages == 0
    assert len(sink.messages) == sent_before <= 1
    with world.database.session() as session:
        pending = select(func.count()).where(OutboxItem.state == OutboxState.PENDING)
        assert session.scalar(pending) == 0


def test_a_failing_smtp_server_loses_nothing(world: World, settings: Settings, sink: Sink) -> None:
    place = territory(world, "ville-a")
    code = new_request(world, place.tenant.id, "riverain@example.org")
    change(world, place.tenant.id, code, Status.INVESTIGATING, "Vu")
    working_port = settings.smtp_port
    settings.smtp_port = free_port()  # nothing listens there
    failed = deliver(world, settings, window_seconds=0)
    assert failed.failed_messages == 1 and failed.messages == 0
    with world.database.session() as session:
        item = session.scalar(select(OutboxItem))
        assert item is not None and item.state is OutboxState.PENDING
        assert item.attempts == 1 and item.last_error
    settings.smtp_port = working_port
    assert deliver(world, settings, window_seconds=0).messages == 1
    assert len(sink.messages) == 1 and "Vu" in body_of(sink.messages[0])


def test_several_requests_followed_by_one_address_make_one_message(
    world: World, settings: Settings, sink: Sink
) -> None:
    place = territory(world, "ville-a")
    first = new_request(world, place.tenant.id, "voisin@example.org")
    second = new_request(world, place.tenant.id, "voisin@example.org")
    other = new_request(world, place.tenant.id, "autre@example.org")
    for code in (first, second, other):
        change(world, place.tenant.id, code, Status.INVESTIGATING, "")
    assert deliver(world, settings, window_seconds=0).messages == 2
    by_recipient = {r[0]: m for r, m in zip(sink.recipients, sink.messages, strict=True)}
    text = body_of(by_recipient["voisin@example.org"])
    assert first in text and second in text and other not in text
    assert "2 signalements" in by_recipient["voisin@example.org"]["Subject"]


def test_the_background_sender_runs_when_smtp_is_configured(
    world: World, settings: Settings, sink: Sink, app: Any
) -> None:
    from fastapi.testclient import TestClient

    place = territory(world, "ville-a")
    code = new_request(world, place.tenant.id, "riverain@example.org")
    change(world, place.tenant.id, code, Status.FIXED, "Fini")
    import time

    with TestClient(app):  # runs the application's lifespan, hence the sender
        deadline = time.monotonic() + 10
        while not sink.messages and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(sink.messages) == 1 and "Résolu" in body_of(sink.messages[0])


# --- retention -----------------------------------------------------------------------


def _close(world: World, code: str, days_ago: int) -> None:
    with world.database.session() as session:
        session.execute(
            update(CitizenRequest)
            .where(CitizenRequest.code == code)
            .values(closed_at=utcnow() - timedelta(days=days_ago))
        )


def test_retention_erases_contacts_after_the_tenants_period(world: World) -> None:
    place = territory(world, "ville-a")
    tid = place.tenant.id
    old = new_request(world, tid, "ancien@example.org")
    recent = new_request(world, tid, "recent@example.org")
    still_open = new_request(world, tid, "ouvert@example.org")
    for code in (old, recent):
        change(world, tid, code, Status.FIXED, "")
    _close(world, old, 400)
    _close(world, recent, 40)
    with world.database.session() as session:
        report = service.purge_personal_data(session, tid)
    assert (report.requests, report.contacts, report.followers) == (1, 1, 1)
    with world.database.session() as session:
        emails = set(session.scalars(select(Contact.email)))
        assert emails == {"recent@example.org", "ouvert@example.org"}
        erased = service.get_request(session, tid, old)
        assert erased.contact_erased_at is not None
        assert erased.description == "Trou" and erased.status is Status.FIXED  # the request stays
        seen = service.view_contact(
            session, tid, old, purpose="contrôle", user_id=None, token_id=None
        )
        assert seen.erased and seen.email is None
        catalogue.set_retention_days(session, tid, 30)
        assert service.purge_personal_data(session, tid).requests == 1  # now `recent` too
        assert service.purge_personal_data(session, tid).requests == 0  # idempotent
        assert set(session.scalars(select(Contact.email))) == {"ouvert@example.org"}
    assert still_open


def test_purge_command(
    world: World, settings: Settings, database_url: str, monkeypatch: Any
) -> None:
    from territoire.cli import app as cli

    place = territory(world, "ville-a")
    code = new_request(world, place.tenant.id, "ancien@example.org")
    change(world, place.tenant.id, code, Status.CLOSED, "")
    _close(world, code, 366)
    monkeypatch.setenv("TERRITOIRE_DATABASE_URL", database_url)
    monkeypatch.setenv("TERRITOIRE_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(cli, ["requests", "purge", "--tenant", "ville-a"])
    assert result.exit_code == 0, result.output
    assert "1 requests, 1 contacts and 1 followers erased" in result.output
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
    unknown = CliRunner().invoke(cli, ["requests", "purge", "--tenant", "atlantis"])
    assert unknown.exit_code == 1


def test_demo_seeding_is_idempotent(world: World) -> None:
    tenant = world.tenant("demo-test")
    with world.database.session() as session:
        assert seed_demo_requests(session, tenant.id) == 5
    with world.database.session() as session:
        assert seed_demo_requests(session, tenant.id) == 0
        codes = {c.code for c in catalogue.list_categories(session, tenant.id)}
        assert {"eclairage", "voirie-nid-de-poule", "proprete-depot-sauvage"} <= codes
        page = service.list_requests(session, tenant.id, service.RequestFilter())
        assert page.total == 5
        assert {r.status for r in page.items} >= {Status.FIXED, Status.OPEN}
