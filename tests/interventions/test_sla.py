"""Service-level clocks computed from a status history (pure functions, no database)."""

from __future__ import annotations

from territoire.interventions.models import Priority
from territoire.interventions.models import WorkOrderStatus as S
from territoire.interventions.sla import (
    DEFAULT_TARGETS,
    ClockState,
    Milestone,
    Targets,
    clock_minutes,
    sla_report,
)
from tests.interventions.helpers import at

URGENT = DEFAULT_TARGETS[Priority.URGENT]  # acknowledge 15, start 60, resolve 240 minutes


def test_defaults_follow_the_brief_for_urgent_work() -> None:
    assert Targets(15, 60, 240) == URGENT
    for targets in DEFAULT_TARGETS.values():
        assert targets.acknowledge_minutes <= targets.start_minutes <= targets.resolve_minutes


def test_time_on_hold_does_not_count() -> None:
    timeline = [
        (at(0), S.NEW),
        (at(10), S.ASSIGNED),
        (at(50), S.IN_PROGRESS),
        (at(60), S.ON_HOLD),
        (at(180), S.IN_PROGRESS),
        (at(300), S.DONE),
    ]
    report = sla_report(at(0), timeline, URGENT, now=at(400))
    ack, start, resolve = (report.clock(m) for m in Milestone)
    assert (ack.elapsed_minutes, ack.state) == (10, ClockState.MET)
    assert (start.elapsed_minutes, start.state) == (50, ClockState.MET)
    assert resolve.reached_at == at(300)
    assert resolve.elapsed_minutes == 180, "300 minutes minus 120 on hold"
    assert resolve.state is ClockState.MET, "it would breach 240 if the hold counted"
    assert not report.breached and not report.paused


def test_running_clocks_breach_once_past_their_target() -> None:
    timeline = [(at(0), S.NEW)]
    report = sla_report(at(0), timeline, URGENT, now=at(20))
    ack, start, resolve = (report.clock(m) for m in Milestone)
    assert ack.state is ClockState.BREACHED and ack.reached_at is None
    assert start.state is ClockState.PENDING and start.due_at == at(60)
    assert resolve.due_at == at(240)
    assert report.breached


def test_a_paused_clock_has_no_due_time_and_stops_counting() -> None:
    timeline = [(at(0), S.NEW), (at(5), S.ASSIGNED), (at(20), S.IN_PROGRESS), (at(30), S.ON_HOLD)]
    report = sla_report(at(0), timeline, URGENT, now=at(1000))
    resolve = report.clock(Milestone.RESOLVE)
    assert report.paused
    assert resolve.elapsed_minutes == 30 and resolve.state is ClockState.PENDING
    assert resolve.due_at is None
    assert clock_minutes(at(0), timeline, at(25)) == 25


def test_reopened_work_is_resolved_when_done_again() -> None:
    timeline = [
        (at(0), S.NEW),
        (at(5), S.ASSIGNED),
        (at(10), S.IN_PROGRESS),
        (at(100), S.DONE),
        (at(150), S.ASSIGNED),
        (at(160), S.IN_PROGRESS),
        (at(260), S.DONE),
        (at(270), S.CLOSED),
    ]
    report = sla_report(at(0), timeline, URGENT, now=at(500))
    resolve = report.clock(Milestone.RESOLVE)
    assert resolve.reached_at == at(260)
    assert resolve.state is ClockState.BREACHED, "260 > 240: the reopening cost the target"
    reopened = sla_report(at(0), timeline[:5], URGENT, now=at(155))
    assert reopened.clock(Milestone.RESOLVE).reached_at is None


def test_cancelled_work_breaches_only_what_it_had_breached() -> None:
    early = [(at(0), S.NEW), (at(5), S.CANCELLED)]
    report = sla_report(at(0), early, URGENT, now=at(10_000))
    assert {c.state for c in report.clocks} == {ClockState.NOT_APPLICABLE}
    late = [(at(0), S.NEW), (at(30), S.CANCELLED)]
    report = sla_report(at(0), late, URGENT, now=at(10_000))
    assert report.clock(Milestone.ACKNOWLEDGE).state is ClockState.BREACHED
    assert report.clock(Milestone.START).state is ClockState.NOT_APPLICABLE
