"""Names shown for the alarms domain's values (English message ids, translated when
shown)."""

from __future__ import annotations

from territoire.alarms.models import AlarmStatus, Severity
from territoire.web.i18n import N_

SEVERITY_LABELS: dict[Severity, str] = {
    Severity.CRITICAL: N_("Critical"),
    Severity.MAJOR: N_("Major"),
    Severity.MINOR: N_("Minor"),
    Severity.WARNING: N_("Warning"),
}

STATUS_LABELS: dict[AlarmStatus, str] = {
    AlarmStatus.UNACKNOWLEDGED: N_("Active, not acknowledged"),
    AlarmStatus.ACKNOWLEDGED: N_("Active, acknowledged"),
    AlarmStatus.CLEARED: N_("Cleared"),
    AlarmStatus.CLOSED: N_("Alarm closed"),
}

EVENT_LABELS: dict[str, str] = {
    "raised": N_("Raised"),
    "severity_changed": N_("Severity changed"),
    "acknowledged": N_("Acknowledged"),
    "cleared": N_("Cleared"),
    "closed": N_("Alarm closed"),
    "comment": N_("Comment"),
    "assigned": N_("Assignment"),
    "unassigned": N_("Assignment removed"),
    "grouped": N_("Grouped under a parent alarm"),
    "work_order_created": N_("Work order created"),
    "work_order_done": N_("Work order done"),
    "work_order_cancelled": N_("Work order cancelled"),
    "work_order_reopened": N_("Work order reopened"),
    "fix_reported": N_("Fix reported, awaiting data"),
}
