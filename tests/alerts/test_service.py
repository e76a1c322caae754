"""Alert lifecycle on both backends: dedup by fingerprint, severities, reopen, auto-resolve, audit, outbox rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import service
from monitor.alerts.models import Alert, AlertOccurrence, DigestItem, Notification
from monitor.alerts.schemas import Finding
from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.config import Settings
from monitor.errors import Conflict, Forbidden
from tests.alerts.conftest import RECIPIENTS, alert_settings, day, drift, finding, seed, set_policy
from tests.factories import make_user


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    return alert_settings(tmp_path)


def process(session: Session, config: Settings, *findings: Finding, now_day: int | None = None):  # type: ignore[no-untyped-def]
    now = None if now_day is None else day(now_day) + timedelta(hours=1)
    return service.process_findings(session=session, findings=list(findings), now=now, settings=config)


def emails(session: Session) -> list[Notification]:
    return list(
        session.execute(select(Notification).where(Notification.channel == "email").order_by(Notification.id)).scalars()
    )


def audit(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()
    )


def test_same_breach_on_ten_daily_runs_is_one_alert_with_ten_occurrences(session: Session, config: Settings) -> None:
    seed(session)
    for n in range(10):
        process(session, config, finding(window_end=day(n), run_id=100 + n, value=0.78 - n / 1000), now_day=n)
    alerts = service.list_alerts(session=session, actor=SYSTEM, settings=config)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.occurrences, alert.status, alert.severity) == (10, "open", "critical")
    assert (alert.first_seen, alert.last_seen) == (day(0), day(9))
    assert alert.evidence["run_id"] == 109 and alert.evidence["value"] == pytest.approx(0.771)
    assert [h.action for h in alert.history] == ["opened"]
    assert len(emails(session)) == 1  # one adverse-event email, not ten
    windows = service.list_occurrences(session=session, actor=SYSTEM, alert_id=alert.id)
    assert [o.window_end for o in windows] == [day(n) for n in range(10)]


def test_recomputed_window_updates_its_occurrence_instead_of_counting_twice(session: Session, config: Settings) -> None:
    seed(session)
    process(session, config, finding(run_id=1))
    [alert] = process(session, config, finding(run_id=2, value=0.75))  # the same window, recomputed
    assert alert.occurrences == 1
    rows = session.execute(select(AlertOccurrence).where(AlertOccurrence.alert_id == alert.id)).scalars().all()
    assert [(r.run_id, r.value) for r in rows] == [(2, 0.75)]


@pytest.mark.parametrize(
    ("kind", "status", "estimated", "severity"),
    [
        ("performance", "breach", False, "critical"),
        ("subgroups", "breach", False, "critical"),
        ("input_drift", "breach", False, "warning"),
        ("output_drift", "breach", False, "warning"),
        ("estimated_performance", "breach", True, "warning"),
        ("performance", "breach", True, "warning"),
        ("performance", "warn", False, "info"),
        ("performance", "ok", False, None),
        ("subgroups", "insufficient_data", False, None),
    ],
)
def test_default_severities_follow_design_7(
    session: Session, config: Settings, kind: str, status: str, estimated: bool, severity: str | None
) -> None:
    seed(session)
    touched = process(session, config, finding(kind=kind, status=status, estimated=estimated))
    assert [a.severity for a in touched] == ([severity] if severity else [])


def test_policy_overrides_the_severity_of_a_kind(session: Session, config: Settings) -> None:
    seed(session, alert_severities={"input_drift": "critical", "subgroups": "warning"})
    touched = process(session, config, drift("kvp"), finding())
    assert sorted((a.kind, a.severity) for a in touched) == [("input_drift", "critical"), ("subgroups", "warning")]


def test_reopens_when_the_condition_returns_after_resolve(session: Session, config: Settings) -> None:
    seed(session)
    [alert] = process(session, config, finding(window_end=day(0)), now_day=0)
    qa, _ = make_user(session, role="qa")
    service.resolve(session=session, actor=qa, alert_id=alert.id, note="scanner recalibrated at north", settings=config)
    process(session, config, finding(window_end=day(0), run_id=9), now_day=1)  # the old window again: stays resolved
    assert service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config).status == "resolved"

    process(session, config, finding(window_end=day(3)), now_day=3)
    reopened = service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config)
    assert reopened.status == "open" and reopened.occurrences == 2
    assert [(h.action, h.actor) for h in reopened.history] == [
        ("opened", "system"),
        ("resolved", "qa-user"),
        ("reopened", "system"),
    ]
    assert len(emails(session)) == 2  # the recurrence is news: a second adverse-event email
    assert [e.after["status"] for e in audit(session, "alert.reopen")] == ["open"]


def test_auto_resolves_after_n_clean_runs_and_insufficient_data_does_not_count(
    session: Session, config: Settings
) -> None:
    seed(session, auto_resolve_after=3)
    [alert] = process(session, config, finding(window_end=day(0)))

    def status() -> str:
        return service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config).status

    process(session, config, finding(window_end=day(1), status="ok"))
    process(session, config, finding(window_end=day(2), status="ok"))
    assert status() == "open"
    process(session, config, finding(window_end=day(3), status="insufficient_data"))  # not evidence of recovery
    assert status() == "open"
    process(session, config, finding(window_end=day(4), status="ok"))
    resolved = service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config)
    assert resolved.status == "resolved"
    assert resolved.history[-1].action == "auto_resolved" and "3 consecutive clean runs" in resolved.history[-1].note
    [event] = audit(session, "alert.auto_resolve")
    assert event.actor == "system" and event.before["status"] == "open"


def test_a_breach_resets_the_clean_streak_and_the_same_clean_window_counts_once(
    session: Session, config: Settings
) -> None:
    seed(session, auto_resolve_after=2)
    [alert] = process(session, config, finding(window_end=day(0)))
    process(session, config, finding(window_end=day(1), status="ok"))
    process(session, config, finding(window_end=day(1), status="ok"))  # same window again
    process(session, config, finding(window_end=day(2)))  # breach again
    process(session, config, finding(window_end=day(3), status="ok"))
    assert service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config).status == "open"
    process(session, config, finding(window_end=day(4), status="ok"))
    assert service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config).status == "resolved"


def test_auto_resolve_zero_never_resolves(session: Session, config: Settings) -> None:
    seed(session, auto_resolve_after=0)
    [alert] = process(session, config, finding(window_end=day(0)))
    for n in range(1, 6):
        process(session, config, finding(window_end=day(n), status="ok"))
    assert service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config).status == "open"


def test_an_info_alert_escalates_to_critical_and_notifies(session: Session, config: Settings) -> None:
    seed(session)
    [alert] = process(session, config, finding(status="warn", window_end=day(0)))
    assert alert.severity == "info" and emails(session) == []
    qa, _ = make_user(session, role="qa")
    service.acknowledge(session=session, actor=qa, alert_id=alert.id, note="watching north", settings=config)
    process(session, config, finding(status="breach", window_end=day(1)))
    escalated = service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id, settings=config)
    assert (escalated.severity, escalated.status) == ("critical", "open")
    assert [h.action for h in escalated.history] == ["opened", "acknowledged", "escalated"]
    assert len(emails(session)) == 1


def test_acknowledge_and_resolve_are_audited_with_actor_and_note(session: Session, config: Settings) -> None:
    seed(session)
    [alert] = process(session, config, finding())
    qa, _ = make_user(session, role="qa")
    service.acknowledge(
        session=session, actor=qa, alert_id=alert.id, note="on it: checking north's CT protocol", settings=config
    )
    with pytest.raises(Conflict):
        service.acknowledge(session=session, actor=qa, alert_id=alert.id, note="again", settings=config)
    service.resolve(
        session=session, actor=qa, alert_id=alert.id, note="protocol reverted; rollback not needed", settings=config
    )
    [ack] = audit(session, "alert.acknowledge")
    [res] = audit(session, "alert.resolve")
    assert (ack.actor, ack.entity, ack.entity_id, ack.reason) == (
        "qa-user",
        "alert",
        str(alert.id),
        "on it: checking north's CT protocol",
    )
    assert (ack.before["status"], ack.after["status"]) == ("open", "acknowledged")
    assert (res.actor, res.reason, res.after["status"]) == (
        "qa-user",
        "protocol reverted; rollback not needed",
        "resolved",
    )
    viewer, _ = make_user(session, role="viewer")
    with pytest.raises(Forbidden):
        service.resolve(session=session, actor=viewer, alert_id=alert.id, note="x", settings=config)


def test_warnings_wait_for_the_digest_and_info_notifies_nobody(session: Session, config: Settings) -> None:
    seed(session, digest_hours=6)
    process(session, config, drift("kvp"), drift("mean_hu"), finding(status="warn", metric="specificity"), now_day=0)
    assert emails(session) == []
    items = session.execute(select(DigestItem)).scalars().all()
    assert sorted(i.reason for i in items) == ["warning", "warning"]
    # DAY0 is 02:00 and the clock says 03:00: the next 6-hour boundary is 06:00 UTC.
    assert {i.due_at.hour for i in items} == {6}


def test_without_recipients_the_email_is_a_visible_dead_letter(session: Session, config: Settings) -> None:
    seed(session)
    set_policy(session, alert_recipients=[])
    process(session, config, finding())
    [row] = emails(session)
    assert row.status == "dead" and "alert_recipients" in (row.last_error or "")
    [event] = audit(session, "notification.failed")
    assert "no recipients" in (event.reason or "")


def test_model_recipients_are_used_when_the_policy_names_none(session: Session, config: Settings) -> None:
    seed(session)
    set_policy(session, alert_recipients=[])
    from monitor.registry.models import Model

    model = session.execute(select(Model).where(Model.name == "ich-ct")).scalar_one()
    model.alert_recipients = ["radiology-qa@hospital.example"]
    session.flush()
    process(session, config, finding())
    assert [e.recipient for e in emails(session)] == ["radiology-qa@hospital.example"]


def test_one_email_row_per_recipient_with_distinct_message_ids(session: Session, config: Settings) -> None:
    seed(session, alert_recipients=[*RECIPIENTS, "cmio@hospital.example"])
    process(session, config, finding())
    rows = emails(session)
    assert sorted(r.recipient for r in rows) == sorted([*RECIPIENTS, "cmio@hospital.example"])
    assert len({r.message_id for r in rows}) == 2 and len({r.group_key for r in rows}) == 1


def test_process_run_reads_the_runs_metric_points(session: Session, config: Settings) -> None:
    from monitor.checks.models import CheckRun, MetricPoint

    seed(session)
    from monitor.registry.models import Model, ModelVersion

    model = session.execute(select(Model)).scalar_one()
    version = session.execute(select(ModelVersion)).scalar_one()
    run = CheckRun(
        model_id=model.id,
        version_id=version.id,
        kind="subgroups",
        window_start=day(-7),
        window_end=day(0),
        status="completed",
        summary={},
        triggered_by="test",
    )
    session.add(run)
    session.flush()
    common = {
        "run_id": run.id,
        "model_id": model.id,
        "version_id": version.id,
        "kind": "subgroups",
        "window_end": day(0),
    }
    session.add_all(
        [
            MetricPoint(
                **common,
                metric="sensitivity",
                segment="site=north",
                value=0.78,
                ci_low=0.70,
                ci_high=0.85,
                n=212,
                threshold=0.9,
                method="wilson",
                status="breach",
                estimated=False,
            ),
            MetricPoint(
                **common,
                metric="sensitivity",
                segment="site=south",
                value=0.93,
                ci_low=0.88,
                ci_high=0.96,
                n=300,
                threshold=0.9,
                method="wilson",
                status="ok",
                estimated=False,
            ),
            MetricPoint(
                **common,
                metric="specificity",
                segment="site=east",
                value=None,
                n=12,
                threshold=0.8,
                status="insufficient_data",
                estimated=False,
            ),
        ]
    )
    session.flush()
    [alert] = service.process_run(session=session, run_id=run.id, settings=config)
    assert (alert.segment, alert.severity, alert.evidence["run_id"]) == ("site=north", "critical", run.id)
    [again] = service.process_run(session=session, run_id=run.id, settings=config)  # idempotent
    assert again.id == alert.id and again.occurrences == 1


def test_history_notes_show_figures_rounded_for_a_reader_and_the_evidence_keeps_them_whole() -> None:
    # The 90-day demo's notes read "= 0.8936585365853658 (threshold 0.9, ...)" in the alert history and the
    # surveillance report; a reader gets four significant digits, the stored evidence stays exact.
    alert = Alert(
        kind="subgroups",
        metric="sensitivity",
        feature=None,
        segment="patient_sex=M",
        evidence={"value": 0.8936585365853658, "threshold": 0.9, "n": 41, "status": "warn", "window_end": "2026-09-19"},
    )
    note = service._summary(alert)
    assert "= 0.8937 (threshold 0.9, n=41" in note and "0.89365" not in note
    assert alert.evidence["value"] == 0.8936585365853658
