"""A small stored month for report tests: two sites, a known sensitivity breach, its incident and the rollback.

Period 2026-11-01 to 2026-11-10. Every day: 10 studies at north (7 with an outcome), 6 at south (3 with an
outcome). Performance windows end daily from 2026-11-02 to 2026-11-11 (all in the period); sensitivity misses
its target of 0.900 with its whole interval in the windows ending 2026-11-05 and 2026-11-06, and at
site=north in the subgroups window ending 2026-11-06. The breach is one incident (opened, acknowledged
with a note, resolved) with one email, and a rollback from 2.0.0 to 1.0.0 signed by two approvers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from monitor.alerts.models import Alert, AlertTransition, Notification
from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.models import CheckRun, MetricPoint
from monitor.checks.schemas import MonitoringPolicy
from monitor.ingest.models import Inference, Outcome
from monitor.registry import changes
from monitor.registry import service as registry_service
from monitor.registry.models import Deployment
from monitor.registry.schemas import ChangeRequestCreate, DecisionCreate
from tests.factories import PASSWORD, make_model, make_user, make_version

START = date(2026, 11, 1)
END = date(2026, 11, 10)
SITES = {"north": (10, 7), "south": (6, 3)}  # studies per day, of which with an outcome
BREACH_WINDOWS = (date(2026, 11, 5), date(2026, 11, 6))
HOSTILE = "<script>alert('x')</script>"


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Stored:
    model_id: int
    incident_id: int
    change_request_id: int


def store(session: Session, *, display_name: str = "ICH triage (head CT)", note: str = "") -> Stored:
    """Write the scenario (flushes; the caller commits or rolls back)."""
    model = make_model(session, display_name=display_name)
    old = make_version(session, version="1.0.0", activate=True)
    new = make_version(session, version="2.0.0")
    registry_service.deploy(session=session, actor=SYSTEM, model=model, version=new, reason="upgrade to 2.0.0")
    for n, deployment in enumerate(session.query(Deployment).order_by(Deployment.id)):
        deployment.activated_at = at(date(2026, 10, 1 + 14 * n), 9)
    checks_policy.put_policy(
        session=session,
        actor=SYSTEM,
        model_name=model.name,
        policy=MonitoringPolicy.model_validate(
            {"features": [{"name": "site", "type": "categorical"}], "segments": ["site"], "approvals_required": 2}
        ),
    )
    _inferences(session, model.id, new.id)
    _runs(session, model.id, new.id)
    incident = _incident(session, model.id, new.id, note)
    request_id = _rollback(session)
    session.flush()
    assert old.id != new.id
    return Stored(model_id=model.id, incident_id=incident, change_request_id=request_id)


def _hash(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _inferences(session: Session, model_id: int, version_id: int) -> None:
    day = START
    while day <= END:
        for site, (count, labelled) in SITES.items():
            for i in range(count):
                key = f"{site}-{day.isoformat()}-{i}"
                occurred = at(day, 8, i)
                session.add(
                    Inference(
                        model_id=model_id, version_id=version_id, inference_id=key, occurred_at=occurred,
                        received_at=occurred, score=0.9 if i % 5 == 0 else 0.1, prediction=int(i % 5 == 0),
                        features={"site": site}, content_hash=_hash(key),
                    )
                )  # fmt: skip
                if i < labelled:
                    session.add(
                        Outcome(
                            model_id=model_id, inference_id=key, label=int(i % 5 == 0), source="report",
                            confirmed_at=occurred + timedelta(hours=2), received_at=occurred + timedelta(hours=3),
                            content_hash=_hash("outcome", key),
                        )
                    )  # fmt: skip
        day += timedelta(days=1)
    session.flush()


def _point(run: CheckRun, metric: str, value: float, low: float, high: float, status: str, **extra: Any) -> MetricPoint:
    return MetricPoint(
        run_id=run.id, model_id=run.model_id, version_id=run.version_id, kind=run.kind, window_end=run.window_end,
        metric=metric, value=value, ci_low=low, ci_high=high, n=extra.pop("n", 40), status=status, estimated=False,
        **extra,
    )  # fmt: skip


def _run(session: Session, model_id: int, version_id: int, kind: str, end: datetime, **summary: Any) -> CheckRun:
    run = CheckRun(
        model_id=model_id, version_id=version_id, kind=kind, window_start=end - timedelta(days=7), window_end=end,
        started_at=end + timedelta(hours=2), finished_at=end + timedelta(hours=2), status="completed",
        summary=summary, triggered_by="schedule",
    )  # fmt: skip
    session.add(run)
    session.flush()
    return run


def _runs(session: Session, model_id: int, version_id: int) -> None:
    for offset in range(1, 11):
        end = at(START + timedelta(days=offset))
        run = _run(session, model_id, version_id, "performance", end)
        breach = (end.date() - timedelta(days=0)) in BREACH_WINDOWS
        session.add_all(
            [
                _point(run, "label_coverage", 0.625, 0.625, 0.625, "ok", n=112),
                _point(run, "sensitivity", 0.80, 0.70, 0.87, "breach", threshold=0.9)
                if breach
                else _point(run, "sensitivity", 0.93, 0.90, 0.97, "ok", threshold=0.9),
                _point(run, "specificity", 0.85, 0.81, 0.89, "ok", threshold=0.8),
            ]
        )
    end = at(BREACH_WINDOWS[1])
    run = _run(
        session, model_id, version_id, "subgroups", end, targets={"sensitivity": 0.9, "specificity": 0.8},
        ranking=[
            {"segment": "site=north", "rank": 1, "status": "breach", "metric": "sensitivity", "shortfall": 0.15},
            {"segment": "site=south", "rank": 2, "status": "ok"},
        ],
    )  # fmt: skip
    session.add_all(
        [
            _point(run, "label_coverage", 0.7, 0.7, 0.7, "ok", segment="site=north", n=70),
            _point(run, "sensitivity", 0.75, 0.60, 0.86, "breach", segment="site=north", threshold=0.9),
            _point(run, "specificity", 0.84, 0.78, 0.90, "ok", segment="site=north", threshold=0.8),
            _point(run, "label_coverage", 0.5, 0.5, 0.5, "ok", segment="site=south", n=42),
            _point(run, "sensitivity", 0.95, 0.85, 0.99, "ok", segment="site=south", threshold=0.9),
            _point(run, "specificity", 0.86, 0.80, 0.91, "ok", segment="site=south", threshold=0.8),
        ]
    )
    session.flush()


def _incident(session: Session, model_id: int, version_id: int, note: str) -> int:
    first, last = at(BREACH_WINDOWS[0]), at(BREACH_WINDOWS[1])
    alert = Alert(
        fingerprint=_hash("alert", model_id), model_id=model_id, version_id=version_id, kind="performance",
        metric="sensitivity", severity="critical", status="resolved", first_seen=first, last_seen=last,
        occurrences=2, evidence={}, opened_at=first + timedelta(hours=2), updated_at=at(date(2026, 11, 8), 9),
        resolved_at=at(date(2026, 11, 8), 9), episode_start=first,
    )  # fmt: skip
    session.add(alert)
    session.flush()
    steps = [
        (first + timedelta(hours=2), "system", "opened", None, "open", "sensitivity below target"),
        (first + timedelta(hours=8, minutes=15), "qa-user", "acknowledged", "open", "acknowledged",
         note or "checking the north scanners"),
        (at(date(2026, 11, 8), 9), "qa-user", "resolved", "acknowledged", "resolved", "rolled back to 1.0.0"),
    ]  # fmt: skip
    for when, actor, action, before, after, text in steps:
        session.add(
            AlertTransition(
                alert_id=alert.id, at=when, actor=actor, action=action, from_status=before, to_status=after,
                severity="critical", note=text,
            )
        )  # fmt: skip
    session.add(
        Notification(
            alert_id=alert.id, model_id=model_id, channel="email", category="adverse_event", group_key="g-1",
            recipient="committee@hospital.example", message_id="<m1@radmon>",
            payload={"subject": "[radmon] CRITICAL ich-ct: sensitivity below target"}, status="sent", attempts=1,
            next_attempt_at=first + timedelta(hours=2), created_at=first + timedelta(hours=2),
            sent_at=first + timedelta(hours=2, minutes=1),
        )
    )  # fmt: skip
    session.flush()
    return alert.id


def _rollback(session: Session) -> int:
    qa, _ = make_user(session, role="qa", username="qa-user", full_name="Quinn Quality")
    signers = [
        make_user(session, role="approver", username="approver-a", full_name="Ada Approver")[0],
        make_user(session, role="approver", username="approver-b", full_name="Bo Approver")[0],
    ]
    requested = at(BREACH_WINDOWS[1], 9)
    request = changes.request_change(
        session=session,
        actor=qa,
        data=ChangeRequestCreate(
            model="ich-ct", kind="rollback", target_version="1.0.0", reason="sensitivity breach at north"
        ),
        now=requested,
    )
    for minutes, signer in ((60, signers[0]), (90, signers[1])):
        changes.decide(
            session=session,
            actor=signer,
            change_request_id=request.id,
            data=DecisionCreate.model_validate(
                {"decision": "approve", "meaning": "approved: roll back to 1.0.0", "password": PASSWORD}
            ),
            now=requested + timedelta(minutes=minutes),
        )
    session.execute(
        update(Deployment).where(Deployment.change_request_id == request.id).values(activated_at=requested + timedelta(minutes=90))
    )  # fmt: skip
    return request.id
