"""Service-level clocks of a work order, computed from its status history.

Three clocks start when the work order is created: acknowledge (first dispatch to a team
or an agent), start (first time in progress) and resolve (last time done, if it is
still done or closed). Time spent on hold does not count. Pure functions: no database.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from territoire.interventions.models import Priority, WorkOrderStatus

S = WorkOrderStatus

ACKNOWLEDGED_STATUSES = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.ON_HOLD, S.DONE, S.CLOSED})
STARTED_STATUSES = frozenset({S.IN_PROGRESS, S.ON_HOLD, S.DONE, S.CLOSED})
RESOLVED_STATUSES = frozenset({S.DONE, S.CLOSED})


@dataclass(frozen=True)
class Targets:
    acknowledge_minutes: int
    start_minutes: int
    resolve_minutes: int

    def minutes(self, milestone: Milestone) -> int:
        return {
            Milestone.ACKNOWLEDGE: self.acknowledge_minutes,
            Milestone.START: self.start_minutes,
            Milestone.RESOLVE: self.resolve_minutes,
        }[milestone]


# Sensible defaults for a municipal technical service; each tenant may change them.
DEFAULT_TARGETS: dict[Priority, Targets] = {
    Priority.URGENT: Targets(15, 60, 4 * 60),
    Priority.HIGH: Targets(60, 4 * 60, 24 * 60),
    Priority.NORMAL: Targets(4 * 60, 24 * 60, 3 * 24 * 60),
    Priority.LOW: Targets(24 * 60, 3 * 24 * 60, 10 * 24 * 60),
}


class Milestone(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    START = "start"
    RESOLVE = "resolve"


class ClockState(enum.StrEnum):
    MET = "met"
    BREACHED = "breached"
    PENDING = "pending"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Clock:
    milestone: Milestone
    target_minutes: int
    elapsed_minutes: float
    reached_at: datetime | None
    due_at: datetime | None  # None once reached, or while the clock is paused
    state: ClockState


@dataclass(frozen=True)
class SlaReport:
    clocks: list[Clock]
    paused: bool

    @property
    def breached(self) -> bool:
        return any(clock.state is ClockState.BREACHED for clock in self.clocks)

    def clock(self, milestone: Milestone) -> Clock:
        return next(clock for clock in self.clocks if clock.milestone is milestone)


Timeline = Sequence[tuple[datetime, WorkOrderStatus]]


def paused_minutes(created_at: datetime, timeline: Timeline, until: datetime) -> float:
    """Minutes spent on hold between creation and `until`."""
    total = timedelta()
    status = S.NEW
    since = created_at
    for at, new_status in timeline:
        if at > until:
            break
        if status is S.ON_HOLD:
            total += at - since
        status, since = new_status, at
    if status is S.ON_HOLD and until > since:
        total += until - since
    return total.total_seconds() / 60


def clock_minutes(created_at: datetime, timeline: Timeline, until: datetime) -> float:
    """Minutes on the service-level clock: elapsed time minus time on hold."""
    elapsed = (until - created_at).total_seconds() / 60
    return max(0.0, elapsed - paused_minutes(created_at, timeline, until))


def reached_at(timeline: Timeline, milestone: Milestone) -> datetime | None:
    if milestone is Milestone.RESOLVE:
        if not timeline or timeline[-1][1] not in RESOLVED_STATUSES:
            return None
        done_times = [at for at, status in timeline if status is S.DONE]
        return done_times[-1] if done_times else None
    wanted = ACKNOWLEDGED_STATUSES if milestone is Milestone.ACKNOWLEDGE else STARTED_STATUSES
    return next((at for at, status in timeline if status in wanted), None)


def _clock(
    milestone: Milestone, created_at: datetime, timeline: Timeline, target: int, now: datetime
) -> Clock:
    reached = reached_at(timeline, milestone)
    current = timeline[-1][1] if timeline else S.NEW
    if reached is not None:
        elapsed = clock_minutes(created_at, timeline, reached)
        state = ClockState.MET if elapsed <= target else ClockState.BREACHED
        return Clock(milestone, target, elapsed, reached, None, state)
    elapsed = clock_minutes(created_at, timeline, now)
    if elapsed > target:
        state = ClockState.BREACHED
    elif current is S.CANCELLED:
        state = ClockState.NOT_APPLICABLE
    else:
        state = ClockState.PENDING
    due = None
    if state is ClockState.PENDING and current is not S.ON_HOLD:
        due = now + timedelta(minutes=target - elapsed)
    return Clock(milestone, target, elapsed, None, due, state)


def sla_report(
    created_at: datetime, timeline: Timeline, targets: Targets, now: datetime
) -> SlaReport:
    """The three clocks of a work order at `now`. A cancelled work order breaches nothing
    it had not already breached when it was cancelled."""
    current = timeline[-1][1] if timeline else S.NEW
    if current is S.CANCELLED:
        now = timeline[-1][0]
    clocks = [
        _clock(milestone, created_at, timeline, targets.minutes(milestone), now)
        for milestone in Milestone
    ]
    return SlaReport(clocks, paused=current is S.ON_HOLD)
