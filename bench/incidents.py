"""What a governance committee meets after the demo: open incidents by severity, each mapped to the
simulator's injected cause, near-misses, and the emails in the outbox (issue 12's must-show).

    # seed the demo (several minutes; a fresh SQLite file), then measure it
    PYTHONPATH=$PWD .venv/bin/python -m monitor.cli demo --days 90 --seed 7 --port 8101 \\
        --db /tmp/demo/radmon-demo.db --no-serve
    PYTHONPATH=$PWD .venv/bin/python bench/incidents.py /tmp/demo/radmon-demo.db

    # before/after: two databases seeded from two checkouts, side by side
    PYTHONPATH=$PWD .venv/bin/python bench/incidents.py /tmp/before/radmon-demo.db /tmp/after/radmon-demo.db

    # or let it seed: --seed-with CHECKOUT runs that checkout's demo into a scratch directory first
    PYTHONPATH=$PWD .venv/bin/python bench/incidents.py --seed-with /work/main --seed-with $PWD

Read-only on the databases (plain SQL, so a database seeded by an older checkout reads the same). The
outbox is the `radmon-outbox/` directory beside each database (the demo writes its emails there).

Open = open or acknowledged. An incident is an open alert that belongs to no other alert's incident
and is warning or critical; an info alert standing alone is a near-miss (decision 0303), listed apart.
Before that decision info alerts were incidents too: the "incidents as counted before" line counts
them the old way, so both readings are on the table.

Causes: the demo preset's scenarios (monitor/simulate/scenarios.py PRESETS["demo"]). Each alert maps
to the causes its segment, feature or metric can come from (below, from monitor/simulate/world.py:
which features the scanner's physics and the patients' age set; for the estimate's support, the features
its studies fall outside the reference on, >= 5% of them); an incident's cause is its primary's,
else (a whole-population aggregate) that of its members. "none" is an incident no cause explains;
"mixed" names an incident whose members point at more than one cause.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from monitor.simulate.scenarios import PRESETS

SCANNER = "scanner change at north"
PREVALENCE = "prevalence shift"
OLDER = "older population"
# North's scanner is a GE (monitor/simulate/world.py SITES and fleet); the change keeps the maker.
SCANNER_SEGMENTS = ("site=north", "manufacturer=GE")
# Features each cause moves (world.measure_images / measure_lesion): the scanner's physics, the
# patients' age, and the share of studies with blood (lesion volume, midline shift, lesion HU).
FEATURES = {
    SCANNER: {"manufacturer", "scanner_model", "kernel", "kvp", "slice_thickness", "ctdi_vol", "noise_sd", "cnr",
              "mean_hu", "lesion_hu", "hyperdense_volume_ml"},
    OLDER: {"age_band", "patient_sex", "ventricle_volume_ml", "mean_hu", "hyperdense_volume_ml"},
    PREVALENCE: {"hyperdense_volume_ml", "midline_shift_mm", "lesion_hu", "prediction", "score"},
}  # fmt: skip
SEVERITIES = ("critical", "warning", "info")


@dataclass
class Row:
    id: int
    kind: str
    metric: str
    feature: str | None
    segment: str | None
    severity: str
    incident_id: int | None
    role: str | None
    reason: str | None
    # The features the label-free estimate's support check found outside the reference (estimate_support).
    outside: tuple[str, ...] = ()


def causes_of(row: Row) -> set[str]:
    """The injected causes that could raise this alert."""
    found: set[str] = set()
    segment = row.segment or ""
    if any(part.startswith(SCANNER_SEGMENTS) for part in segment.split("&")):
        found.add(SCANNER)
    # Age bands carry the older population. Sex does not: both sexes get the older newcomers, so a
    # finding at patient_sex=M or F has no cause of its own (the drift of the feature patient_sex has).
    if any(part.startswith("age_band=") for part in segment.split("&")):
        found.add(OLDER)
    if row.kind == "output_drift" or row.metric in ("ppv", "npv", "positive_rate"):
        found.add(PREVALENCE)
    for cause, features in FEATURES.items():
        if row.feature in features or set(row.outside) & features:
            found.add(cause)
    return found


def read(db: Path) -> tuple[list[Row], list[Row], Counter[str], Counter[str], int]:
    """Open alert rows, their incidents, emails by severity (outbox files), digest items queued, rows."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    columns = {r[1] for r in con.execute("PRAGMA table_info(alerts)")}
    linked = "incident_id, incident_role, incident_reason" if "incident_id" in columns else "NULL, NULL, NULL"
    rows = [
        Row(*r)
        for r in con.execute(
            f"SELECT id, kind, metric, feature, segment, severity, {linked} FROM alerts "
            "WHERE status IN ('open', 'acknowledged') ORDER BY id"
        )
    ]
    digest = con.execute("SELECT count(*) FROM alert_digest_items").fetchone()[0]
    queued: Counter[str] = Counter(
        severity for (severity,) in con.execute(
            "SELECT a.severity FROM notifications n JOIN alerts a ON a.id = n.alert_id "
            "WHERE n.channel = 'email' AND n.category = 'adverse_event'"
        )
    )  # fmt: skip
    for row in rows:
        if row.metric == "estimate_support":  # which features its studies fall outside the reference on
            found = con.execute(
                "SELECT p.details FROM metric_points p JOIN alerts a ON a.id = ? "
                "WHERE p.metric = 'estimate_support' AND p.window_end = a.last_seen "
                "AND coalesce(p.segment, '') = coalesce(a.segment, '') ORDER BY p.id DESC LIMIT 1",
                (row.id,),
            ).fetchone()
            features = (json.loads(found[0]) or {}).get("features") if found and found[0] else None
            if isinstance(features, dict):
                row.outside = tuple(
                    name
                    for name, facts in features.items()
                    if isinstance(facts, dict) and facts.get("share", 0) >= 0.05
                )
    con.close()
    primaries = [r for r in rows if r.incident_id is None]
    sent: Counter[str] = Counter()
    outbox = db.parent / "radmon-outbox"
    for path in sorted(outbox.glob("*")) if outbox.is_dir() else []:
        if path.suffix == ".partial":
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        subject = str(message["subject"] or "")
        tag = subject.partition("]")[0].removeprefix("[radmon").strip().lower()
        sent[tag if tag in SEVERITIES else "digest" if "digest" in subject.lower() or not tag else tag] += 1
    sent["(adverse-event rows queued)"] = sum(queued.values())
    return rows, primaries, sent, Counter({"digest items": digest}), len(rows)


def label(row: Row) -> str:
    where = row.segment or "whole population"
    what = f"{row.metric} of {row.feature}" if row.feature else row.metric
    return f"#{row.id} {row.kind} {what} [{where}]"


def describe(db: Path) -> tuple[dict[str, object], list[str]]:
    rows, primaries, sent, digest, _ = read(db)
    members: dict[int, list[Row]] = {}
    for r in rows:
        if r.incident_id is not None:
            members.setdefault(r.incident_id, []).append(r)
    incidents = [p for p in primaries if p.severity != "info"]
    near = [p for p in primaries if p.severity == "info"]
    lines: list[str] = []
    per_cause: Counter[tuple[str, str]] = Counter()
    without = mixed = 0
    for p in sorted(incidents, key=lambda r: (SEVERITIES.index(r.severity), r.id)):
        own = causes_of(p)
        # A segment's share of a whole-population shift (its reason says so) carries that shift's cause,
        # not its segment's: the age bands' estimate support falls because north's studies are in each band.
        theirs = [causes_of(m) for m in members.get(p.id, []) if not (m.reason or "").startswith("part of the whole")]
        unspecific = {c for cs in theirs for c in cs}
        cause = own if len(own) == 1 else (own & unspecific if own else unspecific) or own
        member_causes = {c for cs in theirs if len(cs) == 1 for c in cs}
        names = " + ".join(sorted(cause)) or "none"
        if not cause:
            without += 1
        if len(cause) > 1 or (len(cause) == 1 and member_causes - cause):
            mixed += 1
            names += f"  (mixed: members point at {' + '.join(sorted(member_causes | cause))})"
        for c in cause or {"none"}:
            per_cause[(p.severity, c)] += 1
        lines.append(f"  {p.severity:8} {label(p)}  -> {names}  ({len(members.get(p.id, []))} members)")
        segments = {p.segment}
        if p.segment is not None:  # a segment's aliases are its own studies; a whole-population shift's are shares
            segments |= {m.segment for m in members.get(p.id, []) if m.role == "alias"}
        for m in members.get(p.id, []):
            elsewhere = m.segment is not None and not any(part in segments for part in m.segment.split("&"))
            if m.severity == "info" and m.kind in ("performance", "subgroups") and elsewhere:
                lines.append(f"           holds a near-miss of another segment: {label(m)} ({m.reason})")
    for p in near:
        lines.append(f"  near-miss {label(p)} -> {' + '.join(sorted(causes_of(p))) or 'none'}")
    figures: dict[str, object] = {
        "open alert rows (crit/warn/info)": "/".join(str(sum(r.severity == s for r in rows)) for s in SEVERITIES),
        "incidents as counted before (crit/warn/info)": "/".join(
            str(sum(p.severity == s for p in primaries)) for s in SEVERITIES
        ),
        "open incidents (crit/warn)": "/".join(str(sum(p.severity == s for p in incidents)) for s in SEVERITIES[:2]),
        "near-misses (info, alone)": len(near),
        "incidents without a cause": without,
        "incidents mixing causes": mixed,
        "max critical incidents per cause": max((n for (s, _), n in per_cause.items() if s == "critical"), default=0),
        "emails in outbox: critical": sent.get("critical", 0),
        "emails in outbox: warning": sent.get("warning", 0),
        "emails in outbox: digest/other": sum(
            n for k, n in sent.items() if k not in ("critical", "warning") and not k.startswith("(")
        ),
        "adverse-event rows queued": sent["(adverse-event rows queued)"],
        "warning digest items": digest["digest items"],
    }
    return figures, lines


def seed(checkout: Path, into: Path, days: int, seed_: int) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    db = into / "radmon-demo.db"
    python = os.environ.get("RADMON_BENCH_PYTHON", sys.executable)
    command = [python, "-m", "monitor.cli", "demo", "--days", str(days), "--seed", str(seed_), "--port", "0",
               "--db", str(db), "--no-serve"]  # fmt: skip
    print(f"seeding {db} from {checkout} (several minutes) ...", flush=True)
    subprocess.run(command, cwd=into, env={**os.environ, "PYTHONPATH": str(checkout)}, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("databases", nargs="*", type=Path, help="demo databases (before, after)")
    parser.add_argument("--seed-with", action="append", type=Path, default=[], help="a checkout to seed from")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    databases = list(args.databases)
    for checkout in args.seed_with:
        databases.append(seed(checkout.resolve(), Path(tempfile.mkdtemp(prefix="radmon-incidents-")), args.days,
                              args.seed))  # fmt: skip
    if not databases:
        parser.error("give a demo database or --seed-with a checkout")
    print(f"demo scenarios: {PRESETS['demo']}")
    described = [describe(db) for db in databases]
    width = max(len(k) for k in described[0][0])
    print()
    print(f"{'':{width}}  " + "  ".join(f"{str(db.parent.name or db)[:18]:>18}" for db in databases))
    for key in described[0][0]:
        print(f"{key:{width}}  " + "  ".join(f"{d[key]!s:>18}" for d, _ in described))
    for db, (_, lines) in zip(databases, described, strict=True):
        print(f"\nopen incidents in {db}:")
        print("\n".join(lines) or "  (none)")


if __name__ == "__main__":
    main()
