"""Incidents and episodes (decision 0303): one problem, one alert, one critical email; "breaching since"."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import service
from monitor.alerts.models import Alert, AlertTransition, DigestItem, Notification
from monitor.alerts.schemas import AlertOut, Finding
from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.checks import reads
from monitor.config import Settings
from tests.alerts.conftest import alert_settings, day, drift, finding, seed
from tests.factories import make_user


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    return alert_settings(tmp_path)


def process(session: Session, config: Settings, *findings: Finding, now_day: int = 0) -> None:
    now = day(now_day) + timedelta(hours=1)
    service.process_findings(session=session, findings=list(findings), now=now, settings=config)


def critical_emails(session: Session) -> list[Notification]:
    """One row per adverse-event email sent to the committee (one recipient in these tests)."""
    query = select(Notification).where(Notification.category == "adverse_event").order_by(Notification.id)
    return list(session.execute(query).scalars())


def open_incidents(session: Session, config: Settings) -> list[AlertOut]:
    return service.list_alerts(session=session, actor=SYSTEM, status="open", settings=config)


# The held-out scenario of issue 12: after the change every east study is a Canon study, so the subgroup
# check tests the two segments once and reports the second with details.same_rows_as.
EAST = finding(segment="site=east", value=0.765, ci_low=0.713, ci_high=0.811, n=307)
CANON = finding(
    segment="manufacturer=Canon", value=0.765, ci_low=0.713, ci_high=0.811, n=307, details={"same_rows_as": "site=east"}
)


def test_segments_with_the_same_studies_send_one_critical_email_naming_both(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, EAST, CANON)
    [email] = critical_emails(session)
    text = email.payload["text"]
    assert "site=east" in text and "manufacturer=Canon" in text and "the same studies as site=east" in text
    assert "manufacturer=Canon" in email.payload["html"]
    assert email.payload["subject"].endswith("sensitivity below target at site east (also manufacturer=Canon)")
    [incident] = open_incidents(session, config)
    assert (incident.segment, [a.segment for a in incident.aliases]) == ("site=east", ["manufacturer=Canon"])
    assert incident.aliases[0].reason == "the same studies as site=east"
    every = service.list_alerts(session=session, actor=SYSTEM, status="open", settings=config, members=True)
    assert {a.segment: a.incident_id for a in every} == {"site=east": None, "manufacturer=Canon": incident.id}


def test_an_intersection_and_its_parents_with_the_same_shortfall_are_one_incident(
    session: Session, config: Settings
) -> None:
    seed(session, segments=["site", "manufacturer"])
    north = finding(segment="site=north", value=0.78, ci_low=0.70, ci_high=0.85, n=212)
    ge = finding(segment="manufacturer=GE", value=0.80, ci_low=0.73, ci_high=0.86, n=260)
    both = finding(segment="site=north&manufacturer=GE", value=0.77, ci_low=0.68, ci_high=0.85, n=190)
    process(session, config, ge, both, north)
    assert len(critical_emails(session)) == 1
    [incident] = open_incidents(session, config)
    assert incident.segment == "site=north"  # the policy's first attribute, fewest attributes
    assert sorted(a.segment for a in incident.aliases) == ["manufacturer=GE", "site=north&manufacturer=GE"]


def test_unrelated_segments_stay_separate_incidents(session: Session, config: Settings) -> None:
    seed(session)
    north = finding(segment="site=north", value=0.78, ci_low=0.70, ci_high=0.85, n=212)
    female = finding(segment="patient_sex=F", value=0.80, ci_low=0.74, ci_high=0.86, n=400)
    process(session, config, north, female)
    assert len(critical_emails(session)) == 2 and len(open_incidents(session, config)) == 2


def test_the_drift_that_explains_a_breach_is_linked_evidence_without_an_email_of_its_own(
    session: Session, config: Settings
) -> None:
    seed(session)
    ge = finding(segment="manufacturer=GE", value=0.80, ci_low=0.73, ci_high=0.86, n=260)
    process(session, config, drift("manufacturer"), drift("age"), ge)
    [email] = critical_emails(session)
    assert "input drift: drift_score of manufacturer" in email.payload["text"]
    incidents = {a.segment or a.feature: a for a in open_incidents(session, config)}
    assert set(incidents) == {"manufacturer=GE", "age"}  # age does not explain manufacturer=GE
    [linked] = incidents["manufacturer=GE"].linked_evidence
    assert (linked.kind, linked.feature) == ("input_drift", "manufacturer")
    assert "the attribute that defines manufacturer=GE" in linked.reason
    waiting = session.execute(select(DigestItem)).scalars().all()
    assert [item.alert_id for item in waiting] == [incidents["age"].id]  # only the unexplained drift


def test_the_incident_keeps_its_fingerprint_as_aliases_come_and_go(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, EAST, now_day=0)
    [first] = open_incidents(session, config)
    process(session, config, replace(EAST, window_end=day(1)), replace(CANON, window_end=day(1)), now_day=1)
    process(session, config, replace(CANON, window_end=day(2)), now_day=2)  # the alias alone: still the same incident
    [incident] = open_incidents(session, config)
    assert (incident.id, incident.fingerprint) == (first.id, first.fingerprint)
    assert [a.segment for a in incident.aliases] == ["manufacturer=Canon"]
    assert len(critical_emails(session)) == 1


def test_an_incident_opened_first_under_an_alias_keeps_that_name(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, replace(CANON, details=None), now_day=0)
    process(session, config, replace(EAST, window_end=day(1)), replace(CANON, window_end=day(1)), now_day=1)
    [incident] = open_incidents(session, config)
    assert incident.segment == "manufacturer=Canon" and [a.segment for a in incident.aliases] == ["site=east"]
    assert len(critical_emails(session)) == 1


def test_acknowledging_and_resolving_an_incident_acts_on_its_aliases(session: Session, config: Settings) -> None:
    seed(session)
    qa, _ = make_user(session, role="qa")
    process(session, config, EAST, CANON)
    [incident] = open_incidents(session, config)
    service.acknowledge(session=session, actor=qa, alert_id=incident.id, note="on it", settings=config)
    every = service.list_alerts(session=session, actor=SYSTEM, settings=config, members=True)
    assert {a.status for a in every} == {"acknowledged"}
    service.resolve(session=session, actor=qa, alert_id=incident.id, note="protocol fixed", settings=config)
    every = service.list_alerts(session=session, actor=SYSTEM, settings=config, members=True)
    assert {a.status for a in every} == {"resolved"}


# ---------------------------------------------------------------------------- episodes


def test_breaching_since_is_the_current_episode_not_an_old_near_miss(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, finding(status="warn", value=0.88, window_end=day(0)), now_day=0)  # a near-miss
    for n in (1, 2, 3):  # it clears itself: auto-resolved
        process(session, config, finding(status="ok", value=0.92, window_end=day(n)), now_day=n)
    for n in (40, 41, 42):  # six weeks later, the real breach
        process(session, config, finding(window_end=day(n)), now_day=n)
    [incident] = open_incidents(session, config)
    assert incident.first_seen == day(0)
    assert (incident.breaching_since, incident.breaching_since_source) == (day(40), "window")
    [email] = critical_emails(session)
    assert f"Breaching since: {day(40):%b} {day(40).day}, 2026" in email.payload["text"]
    assert "Breaching since: Nov 2" not in email.payload["text"]


def test_a_warning_that_becomes_a_breach_breaches_since_the_breach(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, finding(status="warn", value=0.88, window_end=day(0)), now_day=0)
    process(session, config, finding(window_end=day(1)), now_day=1)
    process(session, config, finding(window_end=day(2)), now_day=2)
    [incident] = open_incidents(session, config)
    assert (incident.first_seen, incident.breaching_since) == (day(0), day(1))


def test_a_clean_window_ends_the_episode_even_before_auto_resolve(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, finding(window_end=day(0)), now_day=0)
    process(session, config, finding(status="ok", value=0.93, window_end=day(1)), now_day=1)
    process(session, config, finding(window_end=day(2)), now_day=2)
    [incident] = open_incidents(session, config)
    assert incident.breaching_since == day(2)


def test_an_estimated_onset_is_breaching_since(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, finding(window_end=day(5), details={"onset": day(2).date().isoformat()}), now_day=5)
    [incident] = open_incidents(session, config)
    assert (incident.breaching_since.date(), incident.breaching_since_source) == (day(2).date(), "onset")
    [email] = critical_emails(session)
    assert "change onset estimated by the sequential detector" in email.payload["text"]


# ---------------------------------------------------------------------------- what the email says


def test_the_email_says_what_was_measured_in_clinical_words(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, finding())  # sensitivity 0.781 of 212 positives at north, target 0.90
    [email] = critical_emails(session)
    text = " ".join(email.payload["text"].split())
    assert (
        "About 46 of 212 confirmed positive studies at site north were missed (not flagged by the model) "
        "in the 7 days to Nov 2, 2026; at the 0.90 target about 21 would be." in text
    )
    assert "Window: 2026-10-26 02:00 UTC to 2026-11-02 02:00 UTC (7 days)" in text
    assert "https://radmon.hospital.example/dashboard/alerts?id=" in text


def test_an_incident_stays_open_while_its_alias_still_breaches(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, EAST, CANON, now_day=0)
    for n in (1, 2, 3, 4):  # east is ok by itself, but the same shortfall still shows under Canon
        clean_east = replace(EAST, status="ok", value=0.92, window_end=day(n))
        process(session, config, clean_east, replace(CANON, window_end=day(n), details=None), now_day=n)
    [incident] = open_incidents(session, config)
    assert incident.segment == "site=east" and incident.status == "open"
    assert [a.segment for a in incident.aliases] == ["manufacturer=Canon"]


# ---------------------------------------------------------------------------- across the runs of one window


def _run(session: Session, kind: str, points: list[dict[str, object]]) -> int:
    """A stored check run of the window ending day(0) with these metric points (as the check runner writes)."""
    from monitor.checks.models import CheckRun, MetricPoint
    from monitor.registry.models import Model, ModelVersion

    model = session.execute(select(Model)).scalar_one()
    version = session.execute(select(ModelVersion)).scalar_one()
    run = CheckRun(
        model_id=model.id,
        version_id=version.id,
        kind=kind,
        window_start=day(-7),
        window_end=day(0),
        status="completed",
        summary={},
        triggered_by="test",
    )
    session.add(run)
    session.flush()
    for point in points:
        values = {"kind": kind, "status": "breach", "estimated": False, **point}
        session.add(MetricPoint(run_id=run.id, model_id=model.id, version_id=version.id, window_end=day(0), **values))
    session.flush()
    return run.id


NORTH_POINT = {"metric": "sensitivity", "segment": "site=north", "value": 0.74, "ci_low": 0.66, "ci_high": 0.81,
               "n": 160, "threshold": 0.9, "method": "wilson",
               "details": {"rest": {"value": 0.92, "n": 500, "difference_ci": [-0.25, -0.09]}}}  # fmt: skip


def test_the_drift_run_of_a_window_links_to_the_breach_its_subgroup_run_raised(
    session: Session, config: Settings
) -> None:
    seed(session, segments=["site", "manufacturer"])
    subgroups = _run(session, "subgroups", [NORTH_POINT])
    support = {"features": {"kvp": {"share": 0.99, "reference_range": [120, 120]}, "age": {"share": 0.02}}}
    estimates = _run(
        session,
        "estimated_performance",
        [{"metric": "estimate_support", "segment": "site=north", "value": 0.01, "n": 635, "threshold": 0.9,
          "details": support}],
    )  # fmt: skip
    drifts = _run(
        session,
        "input_drift",
        [{"metric": "drift_score", "feature": feature, "value": 0.4, "n": 2100, "threshold": 0.1}
         for feature in ("kvp", "age")],
    )  # fmt: skip
    for run_id in (subgroups, estimates, drifts):  # three runs, as the scheduler runs them
        service.process_run(session=session, run_id=run_id, settings=config, now=day(0) + timedelta(hours=1))
    incidents = {a.segment or a.feature: a for a in open_incidents(session, config)}
    assert set(incidents) == {"site=north", "age"}  # kvp's drift is north's; age's is not explained
    linked = {m.feature or m.metric: m.reason for m in incidents["site=north"].linked_evidence}
    assert set(linked) == {"kvp", "estimate_support"}
    assert "99% of the studies in site=north lie outside its reference range" in linked["kvp"]
    assert len(critical_emails(session)) == 1
    assert [i.alert_id for i in session.execute(select(DigestItem)).scalars()] == [incidents["age"].id]


def test_a_whole_population_breach_one_site_explains_is_part_of_that_sites_incident(
    session: Session, config: Settings
) -> None:
    seed(session, segments=["site"])
    whole = {"metric": "sensitivity", "value": 0.86, "ci_low": 0.82, "ci_high": 0.89, "n": 660, "threshold": 0.9}
    for kind, points in (("performance", [whole]), ("subgroups", [NORTH_POINT])):
        run_id = _run(session, kind, points)
        service.process_run(session=session, run_id=run_id, settings=config, now=day(0) + timedelta(hours=1))
    [incident] = open_incidents(session, config)  # north explains the whole population's shortfall
    assert (incident.kind, incident.segment, incident.severity) == ("subgroups", "site=north", "critical")
    [whole_population] = incident.linked_evidence
    assert whole_population.segment is None and "comes from site=north" in whole_population.reason
    assert len(critical_emails(session)) == 1  # the whole population's email went out; north's would repeat it


def test_whole_population_drifts_nothing_explains_are_one_dataset_drift_warning(
    session: Session, config: Settings
) -> None:
    seed(session)
    share = replace(drift("age"), metric="dataset_drift_share", feature=None, value=0.4, threshold=0.3)
    process(session, config, drift("age"), drift("ventricle_volume_ml"), drift("lesion_hu"), share)
    [incident] = open_incidents(session, config)
    assert (incident.metric, incident.severity) == ("dataset_drift_share", "warning")
    assert sorted(m.feature for m in incident.linked_evidence) == ["age", "lesion_hu", "ventricle_volume_ml"]
    assert len(session.execute(select(DigestItem)).scalars().all()) == 1  # one line in the next digest


def test_a_whole_population_near_miss_does_not_glue_unrelated_segments_together(
    session: Session, config: Settings
) -> None:
    seed(session)
    below = {"rest": {"value": 0.93, "difference_ci": [-0.2, -0.05]}}
    whole = finding(kind="performance", segment=None, status="warn", value=0.88, n=700)
    north = finding(segment="site=north", details=below)
    female = finding(segment="patient_sex=F", value=0.80, ci_low=0.74, ci_high=0.86, n=400, details=below)
    process(session, config, whole, north, female)
    assert sorted(a.segment or "" for a in open_incidents(session, config)) == ["patient_sex=F", "site=north"]


def test_the_whole_population_moves_to_the_segment_that_explains_it_now_without_gluing_incidents(
    session: Session, config: Settings
) -> None:
    seed(session)
    below = {"rest": {"value": 0.93, "difference_ci": [-0.2, -0.05]}}
    whole = finding(kind="performance", segment=None, value=0.86, ci_low=0.83, ci_high=0.89, n=700)
    old = finding(segment="age_band=90+", value=0.70, ci_low=0.6, ci_high=0.8, n=90, details=below)
    north = finding(segment="site=north", details=below)
    process(session, config, whole, old, now_day=0)
    process(session, config, replace(whole, window_end=day(1)), replace(old, window_end=day(1)), now_day=1)
    process(session, config, replace(whole, window_end=day(2)), replace(north, window_end=day(2)), now_day=2)
    incidents = {a.segment: a for a in open_incidents(session, config)}
    assert set(incidents) >= {"site=north", "age_band=90+"}
    assert [m.segment for m in incidents["site=north"].linked_evidence] == [None]  # the whole population, now
    assert incidents["age_band=90+"].linked_evidence == []


def test_a_whole_population_breach_a_segment_explains_later_never_leads_that_segments_incident(
    session: Session, config: Settings
) -> None:
    seed(session, segments=["site"])
    below = {"rest": {"value": 0.93, "difference_ci": [-0.2, -0.05]}}
    near = finding(kind="performance", segment=None, status="warn", value=0.895, ci_low=0.86, ci_high=0.92, n=700)
    whole = replace(near, status="breach", value=0.86, ci_low=0.83, ci_high=0.89)
    north = finding(segment="site=north", details=below)
    prevalence = replace(drift("prediction"), kind="output_drift", metric="positive_rate")
    process(session, config, near, finding(segment="site=north"), now_day=0)  # the whole population's near-miss
    process(session, config, replace(whole, window_end=day(1)), replace(north, window_end=day(1)), now_day=1)
    later = [replace(f, window_end=day(2)) for f in (near, finding(segment="site=north", status="warn"), prevalence)]
    process(session, config, *later, now_day=2)  # nothing explains anything in this window on its own
    process(session, config, replace(near, window_end=day(3)), replace(prevalence, window_end=day(3)), now_day=3)
    process(session, config, *(replace(f, window_end=day(4)) for f in (whole, north, prevalence)), now_day=4)
    incidents = {a.segment or a.feature: a for a in open_incidents(session, config)}
    led = incidents["site=north"]
    assert (led.kind, led.severity) == ("subgroups", "critical")
    assert [(m.kind, m.segment) for m in led.linked_evidence] == [("performance", None)]
    assert "comes from site=north" in led.linked_evidence[0].reason
    assert "prediction" in incidents and incidents["prediction"].kind == "output_drift"  # not north's
    assert len(critical_emails(session)) == 1


# ---------------------------------------------------------------------------- near-misses and re-evaluated links


def _history(session: Session, alert_id: int) -> list[tuple[str, str]]:
    rows = session.execute(
        select(AlertTransition).where(AlertTransition.alert_id == alert_id).order_by(AlertTransition.id)
    ).scalars()
    return [(row.action, row.note) for row in rows]


def _near_miss_at_south(n: int = 0) -> Finding:
    return finding(segment="site=south", status="warn", value=0.88, ci_low=0.80, ci_high=0.93, window_end=day(n))


def _positive_rate(segment: str | None = None, n: int = 0) -> Finding:
    return replace(drift("prediction"), kind="output_drift", metric="positive_rate", segment=segment, window_end=day(n))


def test_a_near_miss_alone_is_not_an_open_incident_but_stays_on_record(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, _near_miss_at_south())
    assert open_incidents(session, config) == []  # nothing for the committee to act on
    [near] = service.list_alerts(session=session, actor=SYSTEM, status="open", severity="info", settings=config)
    assert (near.segment, near.severity, near.incident_id) == ("site=south", "info", None)
    assert critical_emails(session) == [] and session.execute(select(DigestItem)).scalars().all() == []


def test_the_overview_does_not_count_a_near_miss_as_an_open_incident(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, _near_miss_at_south(), drift("age"))
    [state] = reads.monitoring_overview(
        session=session, actor=SYSTEM, since=date(2026, 10, 1), until=date(2026, 11, 1)
    ).values()
    assert state.alerts == {"open": {"warning": 1}}  # the drift; the near-miss is history on site=south


def test_a_near_miss_explains_no_drift_the_drift_joins_the_shift_it_is_part_of(
    session: Session, config: Settings
) -> None:
    seed(session)
    process(session, config, _near_miss_at_south(), _positive_rate("site=south"), _positive_rate())
    [incident] = open_incidents(session, config)
    assert (incident.kind, incident.segment) == ("output_drift", None)
    assert [(m.segment, m.metric) for m in [*incident.aliases, *incident.linked_evidence]] == [
        ("site=south", "positive_rate")
    ]
    [near] = service.list_alerts(session=session, actor=SYSTEM, severity="info", settings=config)
    assert (near.segment, near.incident_id) == ("site=south", None)  # not glued to the prevalence shift


def test_a_member_glued_on_in_an_earlier_window_leaves_when_its_own_finding_no_longer_supports_it(
    session: Session, config: Settings
) -> None:
    seed(session)
    process(session, config, _near_miss_at_south(0), _positive_rate(n=0), now_day=0)
    [incident] = open_incidents(session, config)
    near = session.execute(select(Alert).where(Alert.segment == "site=south")).scalar_one()
    # What the earlier rules left in the demo: the near-miss glued under the prevalence shift.
    near.incident_id, near.incident_role, near.incident_reason = incident.id, "evidence", "sensitivity in site=south"
    session.flush()
    process(session, config, _near_miss_at_south(1), _positive_rate(n=1), now_day=1)
    assert near.incident_id is None
    [incident] = open_incidents(session, config)
    assert incident.linked_evidence == []
    action, note = _history(session, near.id)[-1]
    assert action == "unlinked" and note.startswith(f"left incident #{incident.id}: site=south is not a segment")
    audit = session.execute(select(AuditEvent).where(AuditEvent.action == "alert.unlink")).scalars().all()
    assert [(a.entity, a.entity_id) for a in audit] == [("alert", str(near.id))]
    assert open_incidents(session, config)[0].id == incident.id  # the near-miss is no incident of its own


def test_evidence_that_cleared_leaves_the_incident_when_it_resolves(session: Session, config: Settings) -> None:
    seed(session)
    support = replace(finding(), kind="estimated_performance", metric="estimate_support", value=0.4, threshold=0.9)
    process(session, config, finding(), support, now_day=0)
    [incident] = open_incidents(session, config)
    assert [m.metric for m in incident.linked_evidence] == ["estimate_support"]
    for n in (1, 2, 3):  # north still breaches; the estimate's support is back
        process(
            session, config, finding(window_end=day(n)), replace(support, status="ok", window_end=day(n)), now_day=n
        )
    member = session.execute(select(Alert).where(Alert.metric == "estimate_support")).scalar_one()
    assert (member.status, member.incident_id) == ("resolved", None)
    assert _history(session, member.id)[-1][1].endswith(f"it leaves incident #{incident.id}")
    [incident] = open_incidents(session, config)
    assert incident.linked_evidence == []


def test_the_whole_populations_estimate_support_is_evidence_of_the_segment_whose_studies_fall_outside(
    session: Session, config: Settings
) -> None:
    seed(session, segments=["site", "age_band"])
    north_support = {"features": {"kvp": {"share": 0.998}, "kernel": {"share": 0.994}}}
    whole_support = {"features": {"kvp": {"share": 0.302}, "kernel": {"share": 0.300}}}
    support = {"metric": "estimate_support", "threshold": 0.8, "estimated": True}
    points = [
        {**support, "value": 0.696, "n": 2100, "details": whole_support},  # 638 studies outside the reference
        {**support, "segment": "site=north", "value": 0.0, "n": 635, "details": north_support},  # 635 of them
        {**support, "segment": "age_band=20-29", "value": 0.72, "n": 170, "status": "breach"},  # north's share there
    ]
    for kind, run_points in (("subgroups", [NORTH_POINT]), ("estimated_performance", points)):
        run_id = _run(session, kind, run_points)
        service.process_run(session=session, run_id=run_id, settings=config, now=day(0) + timedelta(hours=1))
    [incident] = open_incidents(session, config)  # the label-free estimate's support is lost at north
    assert (incident.segment, incident.severity) == ("site=north", "critical")
    linked = {m.segment: m.reason for m in incident.linked_evidence}
    assert linked.keys() == {"site=north", None, "age_band=20-29"}
    assert linked[None] == "99% of the whole population's studies outside the reference range are in site=north"
    assert session.execute(select(DigestItem)).scalars().all() == []  # no separate warning


def test_the_positive_rate_and_the_score_distribution_moving_together_are_one_warning(
    session: Session, config: Settings
) -> None:
    seed(session)
    scores = replace(_positive_rate(), metric="drift_score", feature="score")
    process(session, config, _positive_rate(), scores)
    [incident] = open_incidents(session, config)
    [member] = incident.linked_evidence
    assert {incident.metric, member.metric} == {"positive_rate", "drift_score"} and incident.kind == "output_drift"
    assert member.reason.startswith("the model's outputs shifted: ")
    assert len(session.execute(select(DigestItem)).scalars().all()) == 1  # one line in the next digest
