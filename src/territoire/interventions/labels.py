"""Names shown for the interventions domain's values (English message ids, translated
when shown). Data and APIs keep the values themselves."""

from __future__ import annotations

from territoire.interventions.models import Priority, Skill, WorkOrderStatus
from territoire.interventions.sla import ClockState, Milestone
from territoire.web.i18n import N_

STATUS_LABELS: dict[WorkOrderStatus, str] = {
    WorkOrderStatus.NEW: N_("New"),
    WorkOrderStatus.ASSIGNED: N_("Assigned"),
    WorkOrderStatus.IN_PROGRESS: N_("In progress"),
    WorkOrderStatus.ON_HOLD: N_("On hold"),
    WorkOrderStatus.DONE: N_("Done"),
    WorkOrderStatus.CLOSED: N_("Closed out"),
    WorkOrderStatus.CANCELLED: N_("Cancelled"),
}

PRIORITY_LABELS: dict[Priority, str] = {
    Priority.URGENT: N_("Urgent"),
    Priority.HIGH: N_("High"),
    Priority.NORMAL: N_("Normal"),
    Priority.LOW: N_("Low"),
}

SKILL_LABELS: dict[Skill, str] = {
    Skill.LIGHTING: N_("Street lighting"),
    Skill.WATER: N_("Water"),
    Skill.WASTE: N_("Waste"),
    Skill.ROADS: N_("Roads"),
    Skill.BUILDINGS: N_("Buildings"),
    Skill.PARKING: N_("Parking"),
    Skill.GREEN_SPACES: N_("Green spaces"),
    Skill.CLEANLINESS: N_("Cleanliness"),
    Skill.OTHER: N_("Other"),
}

ACTION_LABELS: dict[str, str] = {
    "create": N_("Creation"),
    "assign": N_("Assign"),
    "dispatch": N_("Dispatched"),
    "start": N_("Start"),
    "hold": N_("Put on hold"),
    "resume": N_("Resume"),
    "done": N_("Mark done"),
    "close": N_("Close out"),
    "cancel": N_("Cancel"),
    "reopen": N_("Reopen"),
    "edit": N_("Edited"),
    "note": N_("Note"),
    "report": N_("Field report"),
}

MILESTONE_LABELS: dict[Milestone, str] = {
    Milestone.ACKNOWLEDGE: N_("Acknowledgement"),
    Milestone.START: N_("Start of work"),
    Milestone.RESOLVE: N_("Resolution"),
}

CLOCK_LABELS: dict[ClockState, str] = {
    ClockState.MET: N_("Met"),
    ClockState.BREACHED: N_("Breached"),
    ClockState.PENDING: N_("Running"),
    ClockState.NOT_APPLICABLE: N_("Not applicable"),
}

BOARD_COLUMNS = (
    WorkOrderStatus.NEW,
    WorkOrderStatus.ASSIGNED,
    WorkOrderStatus.IN_PROGRESS,
    WorkOrderStatus.ON_HOLD,
    WorkOrderStatus.DONE,
)
