"""E-mail to followers: an outbox drained by a worker, one digest per address.

Every public change of a request puts one outbox item per follower (service.py). The
worker sends, for each address whose oldest pending item is older than the digest
window, one message gathering all its pending items — several changes in a short time
make one e-mail, not a flood. A failing SMTP server leaves the items pending (with the
error and an attempt count), so nothing is lost; after MAX_ATTEMPTS an item is marked
failed and kept for inspection.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from territoire.config import Settings
from territoire.db import Database
from territoire.db.base import utcnow
from territoire.requests.labels import status_label
from territoire.requests.models import (
    Category,
    CitizenRequest,
    Follower,
    OutboxItem,
    OutboxState,
)
from territoire.tenancy import service as tenancy

log = logging.getLogger("territoire.requests.notifications")
MAX_ATTEMPTS = 5
DISPLAY_ZONE = ZoneInfo("Europe/Paris")
Sender = Callable[[EmailMessage], None]


@dataclass(frozen=True)
class DeliveryReport:
    messages: int = 0
    items: int = 0
    failed_messages: int = 0
    waiting: int = 0


def base_url(settings: Settings) -> str:
    return (settings.base_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def smtp_sender(settings: Settings) -> Sender:
    def send(message: EmailMessage) -> None:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)

    return send


@dataclass
class _Line:
    item: OutboxItem
    follower: Follower
    request: CitizenRequest
    category: Category


def _pending(session: Session) -> dict[tuple[int, str], list[_Line]]:
    rows = session.execute(
        select(OutboxItem, Follower, CitizenRequest, Category)
        .join(Follower, Follower.id == OutboxItem.follower_id)
        .join(CitizenRequest, CitizenRequest.id == OutboxItem.request_id)
        .join(Category, Category.id == CitizenRequest.category_id)
        .where(OutboxItem.state == OutboxState.PENDING, Follower.unsubscribed_at.is_(None))
        .order_by(OutboxItem.created_at, OutboxItem.id)
    )
    groups: dict[tuple[int, str], list[_Line]] = {}
    for item, follower, request, category in rows:
        groups.setdefault((item.tenant_id, follower.email), []).append(
            _Line(item, follower, request, category)
        )
    return groups


def compose(
    settings: Settings, tenant_name: str, slug: str, email: str, lines: list[_Line]
) -> EmailMessage:
    """A plain-text French message listing every change, with follow and unsubscribe links."""
    root = base_url(settings)
    codes = list(dict.fromkeys(line.request.code for line in lines))
    if len(codes) == 1:
        subject = f"[{tenant_name}] Du nouveau sur votre signalement {codes[0]}"
    else:
        subject = f"[{tenant_name}] Du nouveau sur {len(codes)} signalements suivis"
    parts = ["Bonjour,", ""]
    unsubscribe_links: list[str] = []
    for code in codes:
        mine = [line for line in lines if line.request.code == code]
        first = mine[0]
        parts.append(f"Signalement {code} ({first.category.name}) :")
        for line in mine:
            moment = line.item.created_at.astimezone(DISPLAY_ZONE).strftime("%d/%m/%Y %H:%M")
            parts.append(f"  - {moment} : {status_label(line.item.status)}")
            if line.item.note:
                parts.append(f"    « {line.item.note} »")
        parts.append(f"  Suivre : {root}/c/{slug}/requests/{code}")
        link = f"{root}/c/{slug}/unsubscribe/{first.follower.token}"
        unsubscribe_links.append(link)
        parts.append(f"  Ne plus être informé(e) de ce signalement : {link}")
        parts.append("")
    parts.append(f"— {tenant_name}")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.smtp_from
    message["To"] = email
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="territoire.local")
    message["List-Unsubscribe"] = ", ".join(f"<{link}>" for link in unsubscribe_links)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(parts))
    return message


def deliver_due(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    window_seconds: int | None = None,
    send: Sender | None = None,
) -> DeliveryReport:
    """Send one digest per address whose oldest pending change is older than the window."""
    moment = now or utcnow()
    window = settings.notification_digest_seconds if window_seconds is None else window_seconds
    due_before = moment - timedelta(seconds=window)
    sender = send or smtp_sender(settings)
    messages = items = failed = waiting = 0
    for (tenant_id, email), lines in _pending(session).items():
        if lines[0].item.created_at > due_before:
            waiting += len(lines)
            continue
        tenant = tenancy.get_tenant(session, tenant_id)
        message = compose(settings, tenant.name, tenant.slug, email, lines)
        try:
            sender(message)
        except (smtplib.SMTPException, OSError) as error:
            failed += 1
            _failed(lines, str(error))
            continue
        for line in lines:
            line.item.state = OutboxState.SENT
            line.item.sent_at = moment
            line.item.attempts += 1
        messages += 1
        items += len(lines)
    session.flush()
    return DeliveryReport(messages, items, failed, waiting)


def _failed(lines: list[_Line], error: str) -> None:
    log.warning("notification not sent (kept in the outbox): %s", error)
    for line in lines:
        line.item.attempts += 1
        line.item.last_error = error[:500]
        if line.item.attempts >= MAX_ATTEMPTS:
            line.item.state = OutboxState.FAILED


def outbox_counts(session: Session) -> dict[str, int]:
    counts = {state.value: 0 for state in OutboxState}
    for state in session.scalars(select(OutboxItem.state)):
        counts[state.value] += 1
    return counts


async def run_forever(database: Database, settings: Settings) -> None:
    """The embedded default's background sender (one process; see docs/requests.md)."""
    while True:
        try:
            await asyncio.to_thread(_one_pass, database, settings)
        except Exception:  # a bad pass must not stop later ones
            log.exception("notification pass failed")
        await asyncio.sleep(max(1, settings.notification_poll_seconds))


def _one_pass(database: Database, settings: Settings) -> DeliveryReport:
    with database.session() as session:
        return deliver_due(session, settings)
