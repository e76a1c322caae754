"""The report's content on a small stored month: what the committee reads must match what was stored."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from monitor.alerts.models import Alert
from monitor.reports.content import gather
from monitor.reports.document import render_html
from tests.reports import scenario


def test_the_known_breach_is_on_the_first_page_with_its_dates(session: Session) -> None:
    stored = scenario.store(session)
    content = gather(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)

    assert not content.summary.within_target
    expected = (
        "Sensitivity missed its target (≥ 0.900) in 2 of 10 windows, the whole 95% interval in 2, windows ending "
        "2026-11-05 to 2026-11-06; worst 0.800 (95% interval 0.700 to 0.870) in the window ending 2026-11-05."
    )
    assert content.summary.performance == [expected]
    assert content.summary.sites == [
        "Site north: Sensitivity missed in 1 window(s) (1 clearly), ending 2026-11-06 to 2026-11-06.",
        "Within target at every window: south.",
    ]
    assert content.summary.incidents == [
        f"#{stored.incident_id} Performance: Sensitivity, all studies (critical): since 2026-11-05, resolved 2026-11-08."
    ]


def test_volume_and_label_coverage_per_site_match_the_stored_studies(session: Session) -> None:
    stored = scenario.store(session)
    content = gather(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)

    days = (scenario.END - scenario.START).days + 1
    assert [(s.site, s.inferences, s.labelled, s.positives) for s in content.sites] == [
        ("north", 10 * days, 7 * days, 2 * days),  # studies 0 and 5 are positive, both labelled
        ("south", 6 * days, 3 * days, 1 * days),
    ]
    assert content.inferences == 160 and content.labelled == 100
    assert [(d.day, d.inferences, d.labelled) for d in content.daily][:2] == [
        (date(2026, 11, 1), 16, 10),
        (date(2026, 11, 2), 16, 10),
    ]
    # Only days of the period: a shorter period counts fewer studies.
    short = gather(session, model_id=stored.model_id, period_start=scenario.START, period_end=date(2026, 11, 2))
    assert [(s.site, s.inferences) for s in short.sites] == [("north", 20), ("south", 12)]


def test_the_version_table_shows_the_rollback_with_both_signatures(session: Session) -> None:
    stored = scenario.store(session)
    content = gather(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)

    assert [(v.version, v.inferences) for v in content.versions] == [("1.0.0", 0), ("2.0.0", 160)]
    assert [(d.version, d.change_request_id) for d in content.deployments] == [
        ("1.0.0", None),
        ("2.0.0", None),
        ("1.0.0", stored.change_request_id),
    ]
    (change,) = content.changes
    assert (change.kind, change.from_version, change.target_version, change.status) == (
        "rollback",
        "2.0.0",
        "1.0.0",
        "executed",
    )
    assert [(s.printed_name, s.username, s.meaning, s.signed_at.isoformat()) for s in change.signatures] == [
        ("Ada Approver", "approver-a", "approved: roll back to 1.0.0", "2026-11-06T10:00:00+00:00"),
        ("Bo Approver", "approver-b", "approved: roll back to 1.0.0", "2026-11-06T10:30:00+00:00"),
    ]


def test_the_incident_has_its_timeline_note_and_email(session: Session) -> None:
    stored = scenario.store(session)
    content = gather(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)

    (incident,) = content.incidents
    assert [(t.action, t.actor, t.at.isoformat()) for t in incident.timeline] == [
        ("opened", "system", "2026-11-05T02:00:00+00:00"),
        ("acknowledged", "qa-user", "2026-11-05T08:15:00+00:00"),
        ("resolved", "qa-user", "2026-11-08T09:00:00+00:00"),
    ]
    assert incident.timeline[1].note == "checking the north scanners"
    assert [(e.recipient, e.status, e.subject) for e in incident.emails] == [
        ("committee@hospital.example", "sent", "[radmon] CRITICAL ich-ct: sensitivity below target")
    ]
    # A period after the incident's windows does not list it.
    later = gather(session, model_id=stored.model_id, period_start=date(2026, 11, 7), period_end=scenario.END)
    assert later.incidents == [] and later.summary.within_target


def test_subgroups_and_performance_tables_carry_intervals_and_targets(session: Session) -> None:
    stored = scenario.store(session)
    content = gather(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)

    sensitivity = next(r for r in content.performance if r.metric == "sensitivity")
    assert (sensitivity.target_text, sensitivity.warned, sensitivity.breached, sensitivity.judged) == (
        "≥ 0.900",
        2,
        2,
        10,
    )
    assert (sensitivity.worst.value, sensitivity.worst.interval) == (0.80, "0.700 to 0.870")
    assert [(r.segment, r.status, r.figures["sensitivity"].interval) for r in content.subgroups] == [
        ("site=north", "breach", "0.600 to 0.860"),
        ("site=south", "ok", "0.850 to 0.990"),
    ]
    assert [(m.segment, m.metric, m.breached) for m in content.segment_misses] == [("site=north", "sensitivity", 1)]


def test_a_near_miss_is_counted_apart_from_the_incidents_and_listed_not_narrated(session: Session) -> None:
    # The demo's report said "69 incident(s)" and gave each of 58 near-misses a page of timeline, while the
    # dashboard showed the committee 1 critical and 3 warning incidents (decision 0303: a near-miss is history).
    stored = scenario.store(session)
    incident = session.get(Alert, stored.incident_id)
    assert incident is not None
    near_miss = Alert(
        fingerprint="near-miss-1", model_id=stored.model_id, version_id=incident.version_id, kind="subgroups", metric="sensitivity",
        segment="patient_sex=M", severity="info", status="resolved", first_seen=scenario.at(date(2026, 11, 3)),
        last_seen=scenario.at(date(2026, 11, 4)), occurrences=2, evidence={},
        opened_at=scenario.at(date(2026, 11, 3), 2), updated_at=scenario.at(date(2026, 11, 5), 2),
        episode_start=scenario.at(date(2026, 11, 3)),
    )  # fmt: skip
    session.add(near_miss)
    session.flush()
    content = gather(session, model_id=stored.model_id, period_start=scenario.START, period_end=scenario.END)
    html = render_html(content)

    assert content.summary.incidents[-1].startswith(
        f"1 near-miss(es), informational history that notifies no one: #{near_miss.id}"
    )
    assert "1 incident(s), 1 near-miss(es)." in html
    near_misses = html[html.index("<h3>Near-misses</h3>") :]
    assert "Subgroup performance: Sensitivity, patient_sex=M" in near_misses
    assert f"<h3>#{near_miss.id} " not in html  # no narrated timeline of its own
