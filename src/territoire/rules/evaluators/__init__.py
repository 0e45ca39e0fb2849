"""One evaluator class per rule kind."""

from __future__ import annotations

from typing import Any

from territoire.rules import definitions as d
from territoire.rules.evaluators import buildings, generic, lighting, peers, waste, water
from territoire.rules.evaluators.base import Evaluator

EVALUATORS: dict[type[d.Definition], Any] = {
    d.Threshold: generic.ThresholdEvaluator,
    d.Silence: generic.SilenceEvaluator,
    d.Stuck: generic.stuck_evaluator,
    d.RateOfChange: generic.RateOfChangeEvaluator,
    d.HistoryRange: generic.HistoryRangeEvaluator,
    d.PeerDrift: peers.PeerDriftEvaluator,
    d.LampOut: lighting.LampOutEvaluator,
    d.DayBurner: lighting.DayBurnerEvaluator,
    d.LampCycling: lighting.LampCyclingEvaluator,
    d.CabinetFault: lighting.CabinetFaultEvaluator,
    d.NightFlow: water.NightFlowEvaluator,
    d.NightFlowDrift: water.NightFlowDriftEvaluator,
    d.Burst: water.BurstEvaluator,
    d.NetworkEfficiency: water.NetworkEfficiencyEvaluator,
    d.UnoccupiedConsumption: buildings.UnoccupiedConsumptionEvaluator,
    d.UnoccupiedHeating: buildings.UnoccupiedHeatingEvaluator,
    d.ConsumptionDrift: buildings.ConsumptionDriftEvaluator,
    d.ThermometerDrift: buildings.ThermometerDriftEvaluator,
    d.OccupiedZero: buildings.OccupiedZeroEvaluator,
    d.ContainerFull: waste.ContainerFullEvaluator,
    d.ContainerForecast: waste.ContainerForecastEvaluator,
    d.EmptiedLevel: waste.EmptiedLevelEvaluator,
}


def evaluator_for(definition: d.Definition) -> Evaluator:
    factory = EVALUATORS[type(definition)]
    evaluator: Evaluator = factory(definition)
    return evaluator
