"""The loop end to end: a simulated fault raises an alarm, an operator dispatches it, a
field agent does the work, the work order closes, the KPI moves, and the data confirms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from territoire.alarms.models import AlarmStatus
from territoire.registry import service as registry
from territoire.rules import service as rules
from territoire.simulator import service as simulation_service
from territoire.simulator.engine import Simulation
from territoire.simulator.faults import FaultKind
from territoire.simulator.sizes import Size
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import Reading
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.rules.helpers import alarms_of

START = date(2025, 11, 3)
ONLY_LAMPS_OUT = {kind: 0.0 for kind in FaultKind} | {FaultKind.LAMP_OUT: 4.0}


def _simulate(world: World, tenant_id: int, days: int) -> Simulation:
    simulation = Simulation(7, Size.SMALL, START, ONLY_LAMPS_OUT)
    with world.database.session() as session:
        simulation_service.seed_territory(session, tenant_id, simulation.territory)
        rules.install_rules(
            session,
            tenant_id,
            [
                rules.RuleDraft("Lampe éteinte", {"kind": "lamp_out"}, "major", key="lamp-out"),
                rules.RuleDraft("Armoire", {"kind": "cabinet_fault"}, "critical", key="cabinet"),
            ],
        )
    clock = simulation_service._Clock()
    for _ in range(days):
        day = simulation.next_day()
        for hour in range(24):
            first = day.start + hour * 3600
            batch = list(simulation_service.readings(day, first, first + 3600, clock))
            end = datetime.fromtimestamp(first + 3600, UTC)
            telemetry.ingest(world.database, tenant_id, batch, source="simulator", now=end)
            rules.run_timers(world.database, end)
    return simulation


def _kpi(client, name: str) -> float | None:  # type: ignore[no-untyped-def]
    today = datetime.now(UTC).date()
    period = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    answer = client.get("/api/v1/kpis", params=period)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    return next(i["value"] for i in items if i["key"] == name and not i["subject"])


def test_simulated_lamps_out_raise_alarms_and_the_loop_closes(world: World) -> None:
    tenant = world.tenant("val-de-lanterne")
    operator = world.api(tenant, Role.OPERATOR)
    agent_account = world.account(tenant, Role.FIELD_AGENT)
    agent = world.browser(agent_account).client
    simulation = _simulate(world, tenant.id, days=2)
    end = simulation.now
    faults = {f.entity: f for f in simulation.truth()}
    found = alarms_of(world.database, tenant.id)
    assert found, "lamps went out: alarms must follow"
    assert {a.rule_key for a in found} == {"lamp-out"}, "no cabinet fault was simulated"
    for alarm in found:
        fault = faults.get(alarm.entity_urn)
        assert fault is not None, f"{alarm.entity_urn} is not faulty: a false alarm"
        assert fault.start <= alarm.raised_at.timestamp() <= fault.end
        assert alarm.raised_at.timestamp() - fault.start <= 24 * 3600, "within one night"
    alarmed = {a.entity_urn for a in found}
    for fault in faults.values():
        if fault.start < end - 24 * 3600:
            assert fault.entity in alarmed, f"{fault.id} on {fault.entity} was missed"

    # An operator sends a team; the agent goes, repairs, reports it done; the order closes.
    alarm = found[0]
    team = world.api(tenant, Role.ADMIN).post(
        "/api/v1/teams", json={"name": "Éclairage", "skills": ["lighting"],
                               "members": [agent_account.email]},
    )  # fmt: skip
    assert team.status_code == 201, team.text
    resolved_before = _kpi(operator, "work_orders.resolved")
    assert _kpi(operator, "work_orders.mean_time_to_resolve") is None, "nothing resolved yet"
    order = operator.post(
        f"/api/v1/alarms/{alarm.public_id}/work-orders", json={"team_id": team.json()["id"]}
    )
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    dispatched = operator.post(
        f"/api/v1/work-orders/{order_id}/dispatch", json={"assignee": agent_account.email}
    )
    assert dispatched.status_code == 200, dispatched.text
    started = agent.post(f"/api/v1/work-orders/{order_id}/transition", json={"action": "start"})
    assert started.status_code == 200, started.text
    report = agent.post(
        f"/api/v1/work-orders/{order_id}/reports",
        json={"text": "Lampe remplacée", "minutes_spent": 25,
              "parts": [{"name": "Lampe LED 40 W", "quantity": 1}]},
    )  # fmt: skip
    assert report.status_code == 201, report.text
    done = agent.post(f"/api/v1/work-orders/{order_id}/transition", json={"action": "done"})
    assert done.status_code == 200, done.text
    closed = operator.post(f"/api/v1/work-orders/{order_id}/transition", json={"action": "close"})
    assert closed.status_code == 200, closed.text
    assert _kpi(operator, "work_orders.resolved") == (resolved_before or 0) + 1
    resolve_minutes = _kpi(operator, "work_orders.mean_time_to_resolve")
    assert resolve_minutes is not None and resolve_minutes >= 0, "the mean time to resolve moved"
    assert _kpi(operator, "sla.resolve_compliance") == 100.0, "resolved well within its target"
    detail = operator.get(f"/api/v1/work-orders/{order_id}").json()
    assert [r["text"] for r in detail["reports"]] == ["Lampe remplacée"]
    (waiting,) = [a for a in alarms_of(world.database, tenant.id) if a.id == alarm.id]
    assert waiting.status is AlarmStatus.UNACKNOWLEDGED and waiting.fix_reported_at is not None

    # The next evening the lamp draws its power again: the rule clears, the alarm closes.
    evening = datetime.fromtimestamp(end, UTC) + timedelta(hours=18)
    with world.database.session() as session:
        lamp = registry.get_entity(session, tenant.id, alarm.entity_urn)
    cabinet = lamp.relationships["refStreetlightControlCabinet"]
    readings = [
        Reading(cabinet, "illuminanceLevel", evening, 1.0),
        Reading(
            lamp.urn,
            "powerConsumption",
            evening + timedelta(minutes=5),
            float(lamp.properties["nominalPower"]),
        ),
        Reading(cabinet, "illuminanceLevel", evening + timedelta(minutes=15), 1.0),
    ]
    later = evening + timedelta(hours=1)
    telemetry.ingest(world.database, tenant.id, readings, source="test", now=later)
    (done,) = [a for a in alarms_of(world.database, tenant.id) if a.id == alarm.id]
    assert done.status is AlarmStatus.CLOSED, "the data confirmed the repair"
