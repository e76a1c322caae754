"""CPU cost per inference record of the per-record checks: parsing, the PHI gate and the allow-list.

    .venv/bin/python bench/phi_gate.py [--rows 50000] [--repeats 7]

Parses bench/ingest.py's records (30 features: 18 numeric, 12 categorical) with
monitor.ingest.schemas.parse_inference, then also through the allow-list of a policy declaring
all 30 features (phi.FeatureGate), and prints the best microseconds per record. To compare with
an earlier tree, run it with that tree's `monitor` first on PYTHONPATH (the allow-list phase is
skipped where phi has no FeatureGate):

    git archive 7073539 monitor | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python bench/phi_gate.py
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from monitor.ingest import (
    phi,
    schemas,  # whichever tree PYTHONPATH names first
)

sys.path.append(str(Path(__file__).resolve().parent.parent))

from bench.ingest import CATEGORIES, NUMERIC, make_records


def best_per_record(records: list[dict[str, Any]], repeats: int, gate: Any) -> float:
    now = datetime.now(UTC)
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            for index, raw in enumerate(records):
                parsed = schemas.parse_inference(raw, index, now=now)
                if gate is not None:
                    gate.apply(parsed.features)  # type: ignore[union-attr]
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best / len(records) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    records = orjson.loads(orjson.dumps(make_records(args.rows)))  # as the API sees them: strings, not datetimes
    print(f"monitor from {Path(schemas.__file__).parent.parent}")
    print(f"parse + PHI gate:              {best_per_record(records, args.repeats, None):7.2f} us/record")
    if hasattr(phi, "FeatureGate"):
        from monitor.checks.schemas import MonitoringPolicy

        declared = [{"name": n, "type": "numeric"} for n in NUMERIC]
        declared += [{"name": n, "type": "categorical"} for n in CATEGORIES]
        gate = phi.gate_for(MonitoringPolicy.model_validate({"features": declared}))
        print(f"parse + PHI gate + allow-list: {best_per_record(records, args.repeats, gate):7.2f} us/record")


if __name__ == "__main__":
    main()
