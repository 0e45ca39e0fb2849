"""Reactions to other domains' events: a request follows the work order made from it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from territoire import events
from territoire.requests import service
from territoire.requests.handover import SOURCE_KIND


def on_work_order_status_changed(session: Session, event: events.Event) -> None:
    payload = event.payload
    if payload.get("source_kind") != SOURCE_KIND or not payload.get("source_ref"):
        return
    service.on_work_order_status(
        session, event.tenant_id, str(payload["source_ref"]), str(payload.get("new_status"))
    )


events.subscribe("work_order.status_changed", on_work_order_status_changed)
