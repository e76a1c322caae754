"""The rendered report: the same stored data gives the same bytes, user text is escaped, the pages hold it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from monitor.checks.models import MetricPoint
from monitor.db import Database
from monitor.documents.charts import figure_svg, new_figure
from monitor.reports.document import ReportSignature, Supersedes, render_report
from tests.factories import make_model, make_version
from tests.reports import scenario

ROOT = Path(__file__).resolve().parents[2]
SIGNED = ReportSignature(
    printed_name="Quinn Quality",
    username="qa-user",
    role="qa",
    meaning="reviewed",
    signed_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
)


def test_two_renders_of_the_same_period_have_the_same_hash(session: Session) -> None:
    stored = scenario.store(session)
    first = render_report(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)
    second = render_report(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)

    assert first.sha256 == second.sha256 and first.pdf == second.pdf and first.html == second.html
    assert first.pdf.startswith(b"%PDF") and first.pages >= 5
    # Signing changes the document (the signatures are printed), so the signed PDF has its own hash.
    signed = render_report(
        session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END, signatures=[SIGNED]
    )
    assert signed.sha256 != first.sha256
    assert "Not signed: this is a draft" in first.html and "Not signed" not in signed.html


def test_a_render_in_another_process_gives_the_same_hash(fresh_database: Database) -> None:
    with fresh_database.transaction() as session:
        stored = scenario.store(session)
    with fresh_database.sessions() as session:
        here = render_report(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)
    program = (
        "import sys\n"
        "from monitor.db import Database\n"
        "from monitor.reports.document import render_report\n"
        "from tests.reports import scenario\n"
        "db = Database(sys.argv[1])\n"
        "with db.sessions() as session:\n"
        "    r = render_report(session, model_id=int(sys.argv[2]), period_start=scenario.START, period_end=scenario.END)\n"
        "print(r.sha256)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("SOURCE_DATE_EPOCH", None)
    there = subprocess.run(
        [sys.executable, "-c", program, fresh_database.url, str(stored.model_id)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=True,
    )  # fmt: skip
    assert there.stdout.strip() == here.sha256


def test_user_text_is_escaped_in_the_html(session: Session) -> None:
    stored = scenario.store(session, display_name=f"ICH {scenario.HOSTILE}", note=f"see {scenario.HOSTILE}")
    hostile_signer = ReportSignature(
        printed_name=scenario.HOSTILE, username="qa-user", role="qa", meaning="reviewed", signed_at=SIGNED.signed_at
    )
    report = render_report(
        session,
        model_id=stored.model_id,
        period_start=scenario.START,
        period_end=scenario.END,
        signatures=[hostile_signer],
        supersedes=Supersedes(revision=1, sha256="ab" * 32),
        revision=2,
    )

    assert "<script" not in report.html
    # the model's name (title, running header, first page), the acknowledgement note, the signer's name
    assert report.html.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 5
    assert "corrects and supersedes revision 1" in report.html


def test_an_inference_feature_value_in_a_chart_is_escaped(session: Session) -> None:
    """Subgroup names come from ingested data and reach the charts' SVG, which is inserted unescaped."""
    stored = scenario.store(session)
    session.execute(
        update(MetricPoint).where(MetricPoint.segment == "site=south").values(segment=f"site={scenario.HOSTILE}")
    )
    report = render_report(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)
    assert "<script" not in report.html
    assert "site=&lt;script&gt;" in report.html


def test_the_report_shows_its_sections_header_and_signatures(session: Session) -> None:
    stored = scenario.store(session)
    report = render_report(
        session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END, signatures=[SIGNED]
    )
    html = report.html
    for heading in (
        "1. The model and its versions",
        "2. Volume and label coverage",
        "3. Performance against targets",
        "4. Performance per subgroup",
        "5. Drift",
        "6. Incidents",
        "7. Data-quality notes",
    ):
        assert heading in html
    assert 'counter(page) " of " counter(pages)' in html
    assert "2026-12-01 09:30:00 UTC" in html and "Quinn Quality" in html
    # the rollback's two signatures, printed as manifestations in the versions section
    for name, when in (("Ada Approver", "2026-11-06 10:00:00 UTC"), ("Bo Approver", "2026-11-06 10:30:00 UTC")):
        assert f"<td><b>{name}</b></td><td>approver-" in html and when in html
    assert html.count("approved: roll back to 1.0.0") == 2
    # every chart has a title and labelled axes (matplotlib writes text as text)
    assert html.count("<svg") >= 4
    assert "Window end (UTC)" in html and "Sensitivity (proportion, 0–1)" in html


def test_a_model_without_data_in_the_period_renders_a_report_that_says_so(session: Session) -> None:
    model = make_model(session, name="new-model", display_name="New model")
    make_version(session, model="new-model", version="0.1.0", activate=True)
    report = render_report(session, model_id=model.id, period_start=scenario.START, period_end=scenario.END)

    assert report.pages >= 1
    assert "No performance window of the period could be judged" in report.html
    assert "No performance window ended in this period" in report.html
    assert "No incident in this period." in report.html
    assert "No inferences were received on 10 day(s): 2026-11-01 to 2026-11-10." in report.html


def test_two_charts_in_one_document_never_define_the_same_id() -> None:
    # matplotlib numbers ids per figure ("line2d_1", "axes_1"): two inline charts defined each twice, invalid
    # HTML that WeasyPrint warned about thousands of times in the demo's log.
    charts = []
    for title in ("Sensitivity", "Specificity"):
        figure, axes = new_figure()
        axes.plot([1, 2, 3], [0.9, 0.8, 0.85], marker="o")
        axes.set_title(title)
        charts.append(figure_svg(figure))
    ids = [found for chart in charts for found in re.findall(r'\bid="([^"]+)"', chart)]
    assert ids and len(ids) == len(set(ids))
    for chart in charts:
        defined = set(re.findall(r'\bid="([^"]+)"', chart))
        referenced = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', chart))
        assert referenced <= defined  # every reference still finds its element
