"""`GET /events`: a server-sent event stream of the tenant's alarm and work-order changes.

The web process cannot rely on in-process notifications: alarms are raised by workers in
other processes. So the stream polls the database every couple of seconds for history
rows newer than the last one sent, through the alarms and interventions services (each
domain reads its own tables). Every message carries an id `<alarm event>.<work-order
event>`, which the browser sends back as `Last-Event-ID` when it reconnects, so nothing
is missed nor repeated across a reconnection. The signed-in session is checked on every
poll: signing out (or a revoked token) ends the stream.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from territoire.alarms import service as alarms
from territoire.alarms.models import ACTIVE_STATUSES
from territoire.config import Settings
from territoire.db import Database
from territoire.errors import DomainError, invalid
from territoire.http import get_database, get_settings, optional_principal, requires
from territoire.interventions import service as interventions
from territoire.tenancy.permissions import Permission
from territoire.tenancy.service import Principal

router = APIRouter(tags=["live"], include_in_schema=False)

# Module settings rather than configuration: tests shorten them on the running server.
POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0
# A stream ends after this long; the browser reconnects with Last-Event-ID at once.
# It bounds how long a server holds a connection whose client vanished silently.
LIFETIME_SECONDS = 30 * 60.0
RETRY_MILLISECONDS = 3000
BATCH = 200

CURSOR_PATTERN = re.compile(r"^(\d{1,18})\.(\d{1,18})$")


@dataclass(frozen=True)
class Cursor:
    """The last alarm event and the last work-order event sent to this client."""

    alarm_event: int
    work_order_event: int

    def __str__(self) -> str:
        return f"{self.alarm_event}.{self.work_order_event}"


def parse_cursor(value: str) -> Cursor:
    match = CURSOR_PATTERN.match(value.strip())
    if match is None:
        raise invalid(
            "Last-Event-ID",
            "must be '<alarm event id>.<work-order event id>', as sent by this stream",
        )
    return Cursor(int(match.group(1)), int(match.group(2)))


def sse_message(event: str, cursor: Cursor, data: dict[str, Any]) -> str:
    return f"event: {event}\nid: {cursor}\ndata: {orjson.dumps(data).decode()}\n\n"


def alarm_data(change: alarms.AlarmChange) -> dict[str, Any]:
    return {
        "event": change.kind,
        "id": change.alarm_id,
        "url": f"/alarms/{change.alarm_id}",
        "severity": change.severity.value,
        "status": change.status.value,
        "active": change.status in ACTIVE_STATUSES,
        "message": change.message,
        "entity_urn": change.entity_urn,
        "entity_type": change.entity_type,
        "top_level": change.top_level,
        "at": change.at.isoformat(),
    }


def work_order_data(change: interventions.WorkOrderChange) -> dict[str, Any]:
    return {
        "event": change.action,
        "id": change.work_order_id,
        "url": f"/work-orders/{change.work_order_id}",
        "title": change.title,
        "status": change.status.value,
        "from_status": change.from_status.value if change.from_status else None,
        "to_status": change.to_status.value if change.to_status else None,
        "priority": change.priority.value,
        "at": change.at.isoformat(),
    }


@dataclass
class Poll:
    messages: list[str]
    cursor: Cursor
    full: bool  # a batch was full: poll again at once


def _still_signed_in(request: Request, session: Any, settings: Settings, tenant_id: int) -> bool:
    try:
        principal = optional_principal(request, session, settings)
    except DomainError:  # a revoked or expired API token
        return False
    return principal is not None and principal.tenant_id == tenant_id


def poll_changes(
    request: Request, database: Database, settings: Settings, tenant_id: int, cursor: Cursor
) -> Poll | None:
    """The messages newer than `cursor`, or None when the client is no longer signed in."""
    with database.session() as session:
        if not _still_signed_in(request, session, settings, tenant_id):
            return None
        alarm_changes = alarms.alarm_changes_after(
            session, tenant_id, cursor.alarm_event, limit=BATCH
        )
        order_changes = interventions.work_order_changes_after(
            session, tenant_id, cursor.work_order_event, limit=BATCH
        )
    messages: list[str] = []
    for alarm_change in alarm_changes:
        cursor = Cursor(alarm_change.event_id, cursor.work_order_event)
        messages.append(sse_message("alarm", cursor, alarm_data(alarm_change)))
    for order_change in order_changes:
        cursor = Cursor(cursor.alarm_event, order_change.event_id)
        messages.append(sse_message("work-order", cursor, work_order_data(order_change)))
    full = len(alarm_changes) == BATCH or len(order_changes) == BATCH
    return Poll(messages, cursor, full)


def starting_cursor(database: Database, tenant_id: int) -> Cursor:
    """A new client wants what happens from now on, not the whole history."""
    with database.session() as session:
        return Cursor(
            alarms.last_alarm_event_id(session, tenant_id),
            interventions.last_work_order_event_id(session, tenant_id),
        )


async def event_stream(
    request: Request, database: Database, settings: Settings, tenant_id: int, cursor: Cursor
) -> AsyncIterator[str]:
    # The first line confirms the connection at once and sets the reconnection delay.
    yield f"retry: {RETRY_MILLISECONDS}\n: connected\n\n"
    started = last_beat = time.monotonic()
    while time.monotonic() - started < LIFETIME_SECONDS:
        if await request.is_disconnected():
            return
        poll = await run_in_threadpool(poll_changes, request, database, settings, tenant_id, cursor)
        if poll is None:
            yield "event: signed-out\ndata: {}\n\n"
            return
        for message in poll.messages:
            yield message
        cursor = poll.cursor
        if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
            yield ": heartbeat\n\n"
            last_beat = time.monotonic()
        if not poll.full:
            await asyncio.sleep(POLL_SECONDS)


@router.get("/events")
async def events(
    request: Request,
    principal: Annotated[Principal, Depends(requires(Permission.READ))],
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Stream the signed-in tenant's alarm and work-order changes (text/event-stream)."""
    database = get_database(request)
    settings = get_settings(request)
    if last_event_id:
        cursor = parse_cursor(last_event_id)
    else:
        cursor = await run_in_threadpool(starting_cursor, database, principal.tenant_id)
    return StreamingResponse(
        event_stream(request, database, settings, principal.tenant_id, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
