"""How long a surveillance report takes to generate, against the dashboard's reads of the same data.

    RADMON_SECRET_KEY=... PYTHONPATH=$PWD .venv/bin/python bench/report.py --db radmon-demo.db --model ich-ct \\
        --period 2026-11-01:2026-11-30 --period 2026-09-08:2026-12-06 --out /tmp/report

Seed the data first (`radmon demo --days 90 --seed 7 --no-serve` writes ./radmon-demo.db). For each period it
prints the time of each stage (gathering the content from the database, drawing the charts, the HTML, the PDF),
the page count and the SHA-256 of two renders (they must be equal), and the anchor: the reads the dashboard
makes for the same model and period (overview, performance series of four metrics, the subgroup table, the
alerts list), timed on the same session. Pages can be written as PDF and HTML with --out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.auth.actors import SYSTEM
from monitor.checks import reads
from monitor.db import Database
from monitor.errors import NotFound
from monitor.registry import service as registry_service
from monitor.reports import content as report_content
from monitor.reports import document
from monitor.reports.document import render_report


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def dashboard_reads(session: Session, model: str, start: date, end: date) -> None:
    """What the dashboard's overview, performance, subgroups and alerts pages read for the model."""
    since, _ = report_content.period_bounds(start, end)
    reads.monitoring_overview(
        session=session,
        actor=SYSTEM,
        since=start,
        until=min(end + timedelta(days=1), start + timedelta(days=reads.VOLUME_MAX_DAYS)),
    )
    version, _ = registry_service.active_version(session=session, actor=SYSTEM, model_name=model)
    reads.series_rows(
        session=session, actor=SYSTEM, model_name=model, version=version.version, kind="performance",
        metrics=("sensitivity", "specificity", "auc", "ppv"), since=since,
    )  # fmt: skip
    with contextlib.suppress(NotFound):  # a model without a subgroups run: nothing to read
        reads.subgroup_report(session=session, actor=SYSTEM, model_name=model)
    alerts_service.list_alerts(session=session, actor=SYSTEM, model=model, limit=100)
    session.rollback()


def bench_period(
    session: Session, model_id: int, model_name: str, start: date, end: date, repeat: int, out: str | None
) -> None:
    """Time one period's report and the dashboard's reads of it; print the figures."""
    anchor, _ = timed(lambda: dashboard_reads(session, model_name, start, end), repeat)
    gather, content = timed(
        lambda: report_content.gather(session, model_id=model_id, period_start=start, period_end=end),
        repeat,
    )
    charts, _ = timed(lambda: document.charts(content), 1)
    html, _ = timed(lambda: document.render_html(content), 1)
    total, first = timed(lambda: render_report(session, model_id=model_id, period_start=start, period_end=end), 1)
    second = render_report(session, model_id=model_id, period_start=start, period_end=end)
    pdf = total - gather - html
    print(f"report {model_name} {start} to {end} ({(end - start).days + 1} days)")
    print(f"  pages                      {first.pages}")
    print(f"  PDF bytes                  {len(first.pdf):,}")
    print(f"  sha256 (two renders)       {first.sha256} {'equal' if first.sha256 == second.sha256 else 'DIFFER'}")
    print(f"  gather content s           {gather:.2f}")
    print(f"  charts (SVG) s             {charts:.2f}")
    print(f"  HTML (charts included) s   {html:.2f}")
    print(f"  PDF layout and write s     {pdf:.2f}  (WeasyPrint)")
    print(f"  total render_report s      {total:.2f}")
    print(f"  anchor: dashboard reads s  {anchor:.3f}  (overview, 4 performance series, subgroups, alerts)")
    print(f"  ratio report / dashboard   {total / anchor:.0f}x; content alone {gather / anchor:.1f}x")
    load = os.getloadavg()[0]
    print(f"  load average (1 min)       {load:.1f} on {os.cpu_count()} CPUs")
    if out:
        Path(f"{out}-{start}-{end}.pdf").write_bytes(first.pdf)
        Path(f"{out}-{start}-{end}.html").write_text(first.html)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="radmon-demo.db", help="SQLite file or database URL")
    parser.add_argument("--model", default="ich-ct")
    parser.add_argument("--period", action="append", help="START:END (ISO dates, inclusive)", required=True)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the cheap stages (median printed)")
    parser.add_argument("--out", help="write <out>-<start>-<end>.pdf and .html")
    args = parser.parse_args()
    os.environ.setdefault("RADMON_SECRET_KEY", "bench-secret-key-0123456789")
    os.environ.setdefault("RADMON_PSEUDONYM_KEY", "bench-pseudonym-key-0123456789")
    os.environ.setdefault("RADMON_AUDIT_KEY", "bench-audit-key-0123456789")
    url = args.db if "://" in args.db else f"sqlite:///{Path(args.db).resolve()}"
    database = Database(url)
    with database.sessions() as session:
        model = registry_service.find_model(session=session, name=args.model)
        for period in args.period:
            start, end = (date.fromisoformat(part) for part in period.split(":"))
            bench_period(session, model.id, model.name, start, end, args.repeat, args.out)
    database.dispose()


if __name__ == "__main__":
    main()
