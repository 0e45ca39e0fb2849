"""`GET /events`: the live stream of alarm and work-order changes, over a real HTTP server.

Starlette's TestClient waits for a response to end, so the stream is read with httpx from
uvicorn serving the app in a thread. Changes are written through the services in their
own database sessions, as a worker in another process would, and must come through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.live import routes as live
from tests.alarms.test_alarm_service import signal
from tests.browser.live import serve
from tests.conftest import Account, World
from tests.interventions.helpers import LAMPS, territory, user_id


@dataclass
class Message:
    event: str
    id: str
    data: dict[str, Any]


@dataclass
class Stream:
    """A parsed event stream; comments (heartbeats) are kept apart."""

    lines: Iterator[str]
    comments: list[str] = field(default_factory=list)
    ended: bool = False

    def next_message(self) -> Message:
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if "event" in fields or "data" in fields:
                    data = json.loads(fields.get("data", "{}"))
                    return Message(fields.get("event", "message"), fields.get("id", ""), data)
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        self.ended = True
        raise AssertionError("the stream ended")

    def until(self, predicate: Any) -> list[Message]:
        seen: list[Message] = []
        while True:
            message = self.next_message()
            seen.append(message)
            if predicate(message):
                return seen


@pytest.fixture
def fast_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)


@pytest.fixture
def base_url(app: Any) -> Iterator[str]:
    with serve(app) as url:
        yield url


@contextmanager
def signed_in(base_url: str, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield _login(client, account)


def _login(client: httpx.Client, account: Account) -> httpx.Client:
    response = client.post(
        "/api/v1/auth/login",
        json={"email": account.email, "password": account.password, "tenant": account.tenant.slug},
    )
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def test_anonymous_and_bad_resume_ids_are_refused(world: World, base_url: str) -> None:
    place = territory(world, "ville-a", "operator")
    anonymous = httpx.get(f"{base_url}/events", headers={"Accept": "text/event-stream"})
    assert anonymous.status_code == 401
    with signed_in(base_url, place.operator) as client:
        for bad in ("12", "a.b", "1.2.3", "-1.0"):
            refused = client.get("/events", headers={"Last-Event-ID": bad})
            assert refused.status_code == 422, bad
            assert "Last-Event-ID" in refused.json()["error"]["message"]


def test_changes_from_another_session_are_streamed_for_the_tenant_only(
    world: World, base_url: str, fast_stream: None
) -> None:
    place = territory(world, "ville-a", "operator")
    other = territory(world, "ville-b")
    with world.database.session() as session:
        operator = user_id(session, place.operator)
    with (
        signed_in(base_url, place.operator) as client,
        client.stream("GET", "/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response.iter_lines())
        with world.database.session() as session:
            alarms.raise_alarm(session, other.id, signal(LAMPS[0], message="Autre collectivité"))
        with world.database.session() as session:
            raised = alarms.raise_alarm(session, place.id, signal(LAMPS[1], message="Lampe 2"))
            alarm_id = raised.public_id
        first = stream.next_message()
        assert (first.event, first.data["event"], first.data["id"]) == ("alarm", "raised", alarm_id)
        assert first.data["message"] == "Lampe 2", "the other tenant's alarm is never sent"
        assert first.data["severity"] == Severity.MAJOR.value and first.data["active"]
        with world.database.session() as session:
            alarms.acknowledge(session, place.id, alarm_id, by_user=operator)
            options = alarms.WorkOrderOptions()
            order = alarms.create_work_order(session, place.id, alarm_id, options, by_user=operator)
            order_id = order.public_id
        seen = stream.until(lambda m: m.event == "work-order")
        kinds = [m.data["event"] for m in seen if m.event == "alarm"]
        assert kinds[:1] == ["acknowledged"] and "work_order_created" in kinds
        assert seen[-1].data["id"] == order_id
        assert seen[-1].data["url"] == f"/work-orders/{order_id}"
        ids = [first.id, *(m.id for m in seen)]
        assert len(set(ids)) == len(ids), "every message has its own resume id"


def test_resume_with_last_event_id_sends_only_what_followed(
    world: World, base_url: str, fast_stream: None
) -> None:
    place = territory(world, "ville-a", "operator")
    with world.database.session() as session:
        first = alarms.raise_alarm(session, place.id, signal(LAMPS[0], message="Première"))
        alarms.raise_alarm(session, place.id, signal(LAMPS[1], message="Deuxième"))
        first_id = first.public_id
    with signed_in(base_url, place.operator) as client:
        with client.stream("GET", "/events", headers={"Last-Event-ID": "0.0"}) as response:
            everything = Stream(response.iter_lines()).until(
                lambda m: m.data["message"] == "Deuxième"
            )
        assert [m.data["message"] for m in everything] == ["Première", "Deuxième"]
        assert everything[0].data["id"] == first_id
        resume = everything[0].id
        with client.stream("GET", "/events", headers={"Last-Event-ID": resume}) as response:
            after = Stream(response.iter_lines()).next_message()
        assert after.data["message"] == "Deuxième"


def test_signing_out_ends_the_stream_and_heartbeats_keep_it_open(
    world: World, base_url: str, fast_stream: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.0)
    place = territory(world, "ville-a", "operator")
    with signed_in(base_url, place.operator) as client:
        watcher = httpx.Client(base_url=base_url, cookies=client.cookies, timeout=10)
        with watcher, watcher.stream("GET", "/events") as response:
            stream = Stream(response.iter_lines())
            assert client.post("/api/v1/auth/logout").status_code == 204
            last = stream.next_message()
            assert last.event == "signed-out"
            with pytest.raises(AssertionError, match="ended"):
                stream.next_message()
        assert "heartbeat" in stream.comments
