"""The alarms domain follows the work orders dispatched for its alarms."""

from __future__ import annotations

from sqlalchemy.orm import Session

from territoire import events
from territoire.alarms import service


def on_work_order_status_changed(session: Session, event: events.Event) -> None:
    payload = event.payload
    if payload.get("source_kind") != "alarm" or not payload.get("source_ref"):
        return
    service.work_order_changed(
        session,
        event.tenant_id,
        str(payload["source_ref"]),
        str(payload["id"]),
        str(payload["new_status"]),
    )


events.subscribe("work_order.status_changed", on_work_order_status_changed)
