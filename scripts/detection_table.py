"""Markdown tables for docs/detection.md from `territoire evaluate detection --output` reports.

Usage: python scripts/detection_table.py report-101.json report-102.json ...

Prints one table per report, then the aggregate: precision and recall pooled over the
reports (sums of counts) with the worst report beside them; times to detect as the median
of the reports' medians and the highest p90.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

TARGET = 0.95


def _cell(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} h"


def seed_table(report: dict[str, Any]) -> list[str]:
    lines = [
        f"### Seed {report['seed']}",
        "",
        f"Scored {report['scored_from'][:10]} → {report['scored_until'][:10]}; "
        f"{report['readings']:,} readings in {report['seconds']:.0f} s.",
        "",
        "| fault kind | injected | detected | alarms | false | precision | recall "
        "| median TTD | p90 TTD |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in report["kinds"]:
        lines.append(
            f"| {kind['kind']} | {kind['injected']} | {kind['detected']} | {kind['alarms']} "
            f"| {kind['false_alarms']} | {_cell(kind['precision'])} | {_cell(kind['recall'])} "
            f"| {_hours(kind['median_hours'])} | {_hours(kind['p90_hours'])} |"
        )
    return [*lines, ""]


def aggregate_table(reports: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| fault kind | injected | detected | alarms | false | precision | recall "
        "| worst precision | worst recall | median TTD | worst p90 TTD | target met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    names = [kind["kind"] for kind in reports[0]["kinds"]]
    for name in names:
        rows = [k for r in reports for k in r["kinds"] if k["kind"] == name]
        injected = sum(k["injected"] for k in rows)
        detected = sum(k["detected"] for k in rows)
        alarms = sum(k["alarms"] for k in rows)
        false = sum(k["false_alarms"] for k in rows)
        precision = (alarms - false) / alarms if alarms else None
        recall = detected / injected if injected else None
        precisions = [k["precision"] for k in rows if k["precision"] is not None]
        recalls = [k["recall"] for k in rows if k["recall"] is not None]
        medians = [k["median_hours"] for k in rows if k["median_hours"] is not None]
        p90s = [k["p90_hours"] for k in rows if k["p90_hours"] is not None]
        met = (
            precision is not None
            and recall is not None
            and precision >= TARGET
            and recall >= TARGET
        )
        lines.append(
            f"| {name} | {injected} | {detected} | {alarms} | {false} | {_cell(precision)} "
            f"| {_cell(recall)} | {_cell(min(precisions) if precisions else None)} "
            f"| {_cell(min(recalls) if recalls else None)} "
            f"| {_hours(statistics.median(medians) if medians else None)} "
            f"| {_hours(max(p90s) if p90s else None)} | {'yes' if met else 'no'} |"
        )
    return [*lines, ""]


def main(paths: list[str]) -> None:
    reports = [json.loads(Path(path).read_text()) for path in paths]
    reports.sort(key=lambda r: r["seed"])
    lines: list[str] = []
    for report in reports:
        lines += seed_table(report)
    seeds = ", ".join(str(r["seed"]) for r in reports)
    lines += [f"### Aggregate, seeds {seeds}", "", *aggregate_table(reports)]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
