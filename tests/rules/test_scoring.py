"""The detection scorer: what counts as a detection, a miss and a false alarm."""

from __future__ import annotations

from territoire.rules import detection
from territoire.rules.detection import FAMILIES, AlarmRow, percentile, score
from territoire.simulator.faults import Fault, FaultKind

H = 3600.0
LAMP = "urn:ngsi-ld:Streetlight:l1"
OTHER = "urn:ngsi-ld:Streetlight:l2"
BIN = "urn:ngsi-ld:WasteContainer:b1"


def _fault(kind: FaultKind, entity: str, start: float, end: float) -> Fault:
    return Fault(kind, "s", 0, ("x",), int(start), int(end), 1.0, "", entity, id=f"F{start}")


def _result(results, kind: FaultKind):  # type: ignore[no-untyped-def]
    return next(r for r in results if r.kind == kind.value)


def test_matching_rules() -> None:
    scored_from, scored_until = 100 * H, 200 * H
    faults = [
        _fault(FaultKind.LAMP_OUT, LAMP, 110 * H, 150 * H),  # found 5 h later
        _fault(FaultKind.LAMP_OUT, OTHER, 120 * H, 130 * H),  # only a late alarm: missed
        _fault(FaultKind.CONTAINER_OVERFLOW, BIN, 140 * H, 150 * H),  # found 1 h early
    ]
    others = [_fault(FaultKind.LAMP_OUT, LAMP, 50 * H, 105 * H)]  # began in the warm-up
    key = FAMILIES[FaultKind.LAMP_OUT][0]
    alarms = [
        AlarmRow(key, LAMP, 101 * H),  # continues the warm-up fault: ignored
        AlarmRow(key, LAMP, 115 * H),  # detection
        AlarmRow(key, LAMP, 116 * H),  # a second alarm within the same fault: fine
        AlarmRow(key, OTHER, 160 * H),  # after the end + 2 h grace: false
        AlarmRow(key, LAMP, 170 * H),  # nothing there: false
        AlarmRow("day-burner", LAMP, 112 * H),  # another family: not a lamp-out detection
        AlarmRow(FAMILIES[FaultKind.CONTAINER_OVERFLOW][0], BIN, 139 * H),
    ]
    results = score(faults, others, alarms, scored_from, scored_until, grace_hours=2)
    lamps = _result(results, FaultKind.LAMP_OUT)
    assert (lamps.injected, lamps.detected, lamps.alarms, lamps.false_alarms) == (2, 1, 4, 2)
    assert lamps.delays_hours == [5.0] and lamps.recall == 0.5 and lamps.precision == 0.5
    bins = _result(results, FaultKind.CONTAINER_OVERFLOW)
    assert (bins.detected, bins.false_alarms, bins.delays_hours) == (1, 0, [0.0])
    burners = _result(results, FaultKind.DAY_BURNER)
    assert (burners.injected, burners.alarms, burners.false_alarms) == (0, 1, 1)


def test_a_repeat_of_an_alarm_still_active_detects_a_new_fault_but_is_no_alarm() -> None:
    district = "urn:ngsi-ld:WaterConsumptionObserved:s1"
    key = FAMILIES[FaultKind.WATER_LEAK][0]
    faults = [
        _fault(FaultKind.WATER_LEAK, district, 110 * H, 130 * H),
        # Repaired at 130 h, a new leak at 140 h: no normal night between, so the alarm
        # of the first never cleared; the rule firing again at 150 h is the detection.
        _fault(FaultKind.WATER_LEAK, district, 140 * H, 170 * H),
        _fault(FaultKind.WATER_LEAK, OTHER, 140 * H, 150 * H),  # repeats elsewhere only
    ]
    raised = [AlarmRow(key, district, 115 * H)]
    repeats = [
        AlarmRow(key, district, 125 * H),  # within the first fault: changes nothing
        AlarmRow(key, district, 150 * H),
        AlarmRow(key, OTHER, 100 * H),  # before its fault: no detection
        AlarmRow("water-burst", OTHER, 145 * H),  # another family
    ]
    results = score(faults, [], raised, 100 * H, 200 * H, 2, repeats)
    leaks = _result(results, FaultKind.WATER_LEAK)
    assert (leaks.injected, leaks.detected, leaks.alarms, leaks.false_alarms) == (3, 2, 1, 0)
    assert leaks.delays_hours == [5.0, 10.0]
    assert _result(results, FaultKind.WATER_BURST).alarms == 0, "a repeat is not an alarm"


def test_percentiles() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9) == 9.1


def test_a_run_limited_to_some_kinds_ingests_only_their_streams() -> None:
    assert detection.Config().streams() is None, "every kind: every stream"
    assert detection.Config(kinds=(FaultKind.SENSOR_SILENT,)).streams() is None
    stuck = detection.Config(kinds=(FaultKind.SENSOR_STUCK,)).streams()
    assert stuck is not None and "cabinet" in stuck and "streetlight" not in stuck
    waste = detection.Config(kinds=(FaultKind.CONTAINER_OVERFLOW, FaultKind.WATER_LEAK))
    assert waste.streams() == {"container", "district", "tank"}
