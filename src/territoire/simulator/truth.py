"""Ground truth files: every labelled fault of a run, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson

from territoire.simulator.clock import to_datetime
from territoire.simulator.engine import Simulation
from territoire.simulator.faults import FAULT_SPECS

CSV_COLUMNS = (
    "id", "kind", "entity", "group", "device", "attributes", "start", "end", "magnitude", "unit",
    "affected", "detail",
)  # fmt: skip


def document(simulation: Simulation, until: int | None = None) -> dict[str, Any]:
    """The truth of a run: what was simulated, with which rates, and every fault."""
    end = simulation.now if until is None else until
    return {
        "seed": simulation.seed,
        "size": simulation.size.value,
        "start": to_datetime(simulation.start).isoformat().replace("+00:00", "Z"),
        "end": to_datetime(end).isoformat().replace("+00:00", "Z"),
        "rates_per_asset_year": {
            kind.value: rate for kind, rate in simulation.planner.rates.items()
        },
        "eligible": {kind.value: spec.eligible for kind, spec in FAULT_SPECS.items()},
        "faults": [fault.record() for fault in simulation.truth(end)],
    }


def to_json(simulation: Simulation, until: int | None = None) -> bytes:
    return orjson.dumps(document(simulation, until), option=orjson.OPT_INDENT_2)


def to_csv(simulation: Simulation, until: int | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for record in document(simulation, until)["faults"]:
        writer.writerow(
            [
                record["id"],
                record["kind"],
                record["entity"],
                record["group"] or "",
                record["device"] or "",
                ";".join(record["attributes"]),
                record["start"],
                record["end"],
                record["magnitude"],
                record["unit"],
                ";".join(record["affected"]),
                orjson.dumps(record["detail"]).decode() if record["detail"] else "",
            ]
        )
    return out.getvalue()


def write(simulation: Simulation, path: Path, until: int | None = None) -> None:
    """Write the truth file (CSV when the name ends in .csv, JSON otherwise), atomically."""
    content = (
        to_csv(simulation, until).encode()
        if path.suffix.lower() == ".csv"
        else to_json(simulation, until)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    partial.replace(path)
