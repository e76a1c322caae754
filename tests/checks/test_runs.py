"""Drift check runs end to end: stored rows -> daily profiles -> runs and metric points -> API."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks import reads as checks_reads
from monitor.checks.models import CheckRun, DailyProfile, MetricPoint
from monitor.checks.schemas import MonitoringPolicy
from monitor.checks.windows import Source, read_columns
from monitor.reference import service as reference_service
from monitor.registry.models import ModelVersion
from tests.checks.data import CATEGORICAL, NUMERIC, POLICY, frame, insert_inferences, records
from tests.factories import auth, make_keys, make_model, make_version

os.environ.setdefault("DO_NOT_TRACK", "1")

END = datetime(2026, 11, 20, tzinfo=UTC)
START = END - timedelta(days=7)
DRIFT = ["input_drift", "output_drift"]


def _setup(session: Session, *, policy: dict | None = None, reference_rows: int = 3000) -> ModelVersion:
    make_model(session)
    version = make_version(session, activate=True)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(policy or POLICY)
    )
    if reference_rows:
        reference_service.upload_records(
            session=session,
            actor=SYSTEM,
            model_name="ich-ct",
            version="2.1.0",
            records=records(frame(reference_rows, seed=1)),
        )
    return version


def _points(session: Session, run: CheckRun) -> dict[tuple[str, str | None], MetricPoint]:
    points = session.execute(
        select(MetricPoint).where(MetricPoint.run_id == run.id, MetricPoint.segment.is_(None))
    ).scalars()
    return {(p.metric, p.feature): p for p in points}


def test_drift_is_found_on_the_shifted_features_and_persisted(session: Session) -> None:
    version = _setup(session)
    insert_inferences(session, version, frame(2100, seed=2, shift=1.0, new_manufacturer=0.05), start=START, days=7)

    runs = checks_flows.run_checks(session=session, actor=SYSTEM, model_name="ich-ct", kinds=DRIFT, window_end=END)

    assert [(r.kind, r.status) for r in runs] == [("input_drift", "completed"), ("output_drift", "completed")]
    inputs, outputs = runs
    assert (inputs.window_start, inputs.window_end) == (START, END)
    assert set(inputs.summary["drifted_features"]) == {"age", "noise_sd", "mean_hu", "manufacturer"}
    points = _points(session, inputs)
    assert points[("drift_score", "age")].status == "breach" and points[("drift_score", "age")].method == "wasserstein"
    assert points[("drift_score", "kvp")].status == "ok" and points[("drift_score", "kvp")].method == "jensenshannon"
    assert points[("unseen_categories", "manufacturer")].status == "breach"
    assert points[("unseen_categories", "manufacturer")].details["categories"] == {
        "United Imaging": pytest.approx(105, abs=40)
    }
    assert points[("unified_drift", None)].status == "breach"
    contributions = {f: p.value for (m, f), p in points.items() if m == "unified_drift_contribution"}
    assert set(contributions) == set(NUMERIC) | set(CATEGORICAL) | {"score", "prediction"}
    assert points[("dataset_drift_share", None)].value == pytest.approx(4 / 6)
    assert points[("drift_score", "age")].n == 2100 and points[("drift_score", "age")].window_end == END
    out = _points(session, outputs)
    assert out[("drift_score", "score")].status == "breach"
    rate = out[("positive_rate", "prediction")]
    assert rate.ci_low is not None and rate.ci_low <= rate.value <= rate.ci_high  # type: ignore[operator]
    events = session.execute(select(AuditEvent).where(AuditEvent.action == "check.run")).scalars().all()
    assert sorted(int(e.entity_id) for e in events) == sorted(r.id for r in runs)  # type: ignore[arg-type]


def test_no_drift_means_no_finding(session: Session) -> None:
    version = _setup(session)
    insert_inferences(session, version, frame(2100, seed=3), start=START, days=7)
    runs = checks_flows.run_checks(session=session, actor=SYSTEM, model_name="ich-ct", kinds=DRIFT, window_end=END)
    statuses = {(p.metric, p.feature): p.status for run in runs for p in _points(session, run).values()}
    assert [k for k, s in statuses.items() if s in ("breach", "warn")] == []


def test_verdicts_match_evidently_on_the_stored_window(session: Session) -> None:
    """The oracle on the database path: read the window back raw, run Evidently, compare."""
    from tests.checks.test_drift_engine import SPECS, evidently

    version = _setup(session)
    insert_inferences(
        session, version, frame(2100, seed=4, shift=0.4, manufacturer_mix=[0.25, 0.25, 0.25, 0.25]), start=START, days=7
    )
    run = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )[0]
    window = read_columns(
        session, Source(model_id=version.model_id, version_id=version.id, start=START, end=END), SPECS
    ).to_pandas()
    reference = frame(3000, seed=1)
    oracle = evidently(reference, window)
    assert set(run.summary["drifted_features"]) == {name for name, (_, _, drifted) in oracle.items() if drifted}
    for name, (value, _, _) in oracle.items():
        assert _points(session, run)[("drift_score", name)].value == pytest.approx(value, rel=0.03, abs=5e-3)


def test_rerun_supersedes_and_series_show_current_runs_only(session: Session) -> None:
    version = _setup(session)
    insert_inferences(session, version, frame(2100, seed=5), start=START, days=7)
    first = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=END
    )[0]
    second = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=END
    )[0]
    session.refresh(first)
    assert first.superseded_by == second.id and first.superseded_at is not None and second.superseded_at is None
    assert second.summary == first.summary | {"days_profiled_now": 0, "rows_read": 0}
    listed = checks_reads.list_runs(session=session, actor=SYSTEM, model_name="ich-ct")
    assert [r.id for r in listed] == [second.id]
    assert {
        r.id
        for r in checks_reads.list_runs(session=session, actor=SYSTEM, model_name="ich-ct", include_superseded=True)
    } == {first.id, second.id}
    series = checks_reads.metric_series(session=session, actor=SYSTEM, model_name="ich-ct", metric="positive_rate")
    assert {p.run_id for p in series} == {second.id}
    # The overall rate and one per segment value (site, manufacturer, patient_sex of the policy).
    assert [p.segment for p in series if p.segment is None or p.segment.startswith("site=")] == [
        None,
        "site=east",
        "site=north",
        "site=south",
        "site=west",
    ]


def test_daily_profiles_are_incremental_and_pick_up_late_records(session: Session) -> None:
    version = _setup(session)
    insert_inferences(session, version, frame(2100, seed=6), start=START, days=7)
    first = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )[0]
    assert (first.summary["days_profiled_now"], first.summary["rows_read"]) == (7, 2100)
    assert session.execute(select(func.count()).select_from(DailyProfile)).scalar_one() == 7

    again = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )[0]
    assert (again.summary["days_profiled_now"], again.summary["rows_read"]) == (0, 0)

    # 60 late records for the window's third day, all from a scanner the reference never saw.
    late = frame(60, seed=7, new_manufacturer=1.0)
    insert_inferences(session, version, late, start=START + timedelta(days=2), days=1)
    third = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )[0]
    assert (third.summary["days_profiled_now"], third.summary["rows_read"], third.summary["rows"]) == (1, 360, 2160)
    assert _points(session, third)[("unseen_categories", "manufacturer")].details["rows"] == 60

    # The next day's run reuses six of the seven days.
    insert_inferences(session, version, frame(300, seed=8), start=END, days=1)
    nxt = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END + timedelta(days=1)
    )[0]
    assert nxt.summary["days_profiled_now"] == 1


def test_a_window_not_on_midnight_uses_partial_days(session: Session) -> None:
    version = _setup(session)
    insert_inferences(session, version, frame(2100, seed=9), start=START, days=7)
    noon = END - timedelta(hours=12)
    run = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=noon
    )[0]
    expected = read_columns(
        session, Source(model_id=version.model_id, version_id=version.id, start=noon - timedelta(days=7), end=noon), []
    ).num_rows
    assert run.summary["rows"] == expected and run.summary["days"] == 8


def test_small_window_is_insufficient_data_never_ok(session: Session) -> None:
    version = _setup(session)
    insert_inferences(session, version, frame(40, seed=10), start=START, days=7)
    runs = checks_flows.run_checks(session=session, actor=SYSTEM, model_name="ich-ct", kinds=DRIFT, window_end=END)
    assert {r.status for r in runs} == {"insufficient_data"}
    statuses = {p.status for run in runs for (m, _), p in _points(session, run).items() if m != "missing_share"}
    assert statuses == {"insufficient_data"}


def test_without_reference_the_run_fails_with_the_reason_and_others_still_run(session: Session) -> None:
    version = _setup(session, reference_rows=0)
    insert_inferences(session, version, frame(500, seed=11), start=START, days=7)
    runs = checks_flows.run_checks(session=session, actor=SYSTEM, model_name="ich-ct", kinds=DRIFT, window_end=END)
    assert [r.status for r in runs] == ["failed", "failed"]
    assert "has no reference" in (runs[0].error or "")


def test_baseline_period_in_the_policy_becomes_the_reference(session: Session) -> None:
    version = _setup(session, reference_rows=0)
    baseline_start = START - timedelta(days=30)
    insert_inferences(session, version, frame(3000, seed=12), start=baseline_start, days=14)
    insert_inferences(session, version, frame(2100, seed=13, shift=1.0), start=START, days=7)
    policy = {
        **POLICY,
        "baseline": {"start": baseline_start.isoformat(), "end": (baseline_start + timedelta(days=14)).isoformat()},
    }
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(policy)
    )
    run = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )[0]
    assert run.status == "completed" and run.summary["reference_source"] == "baseline"
    assert {"age", "noise_sd", "mean_hu"} <= set(run.summary["drifted_features"])
    again = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )[0]
    assert again.reference_set_id == run.reference_set_id  # built once, reused


def test_every_version_with_inferences_in_the_window_is_checked(session: Session) -> None:
    version = _setup(session)
    canary = make_version(session, version="2.2.0")
    insert_inferences(session, version, frame(1500, seed=14), start=START, days=7)
    insert_inferences(session, canary, frame(600, seed=15), start=START, days=7)
    runs = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=END
    )
    assert [(r.version_id, r.status) for r in runs] == [
        (version.id, "completed"),
        (canary.id, "failed"),
    ]  # 2.2.0 has no reference


def test_backfill_windows(session: Session) -> None:
    version = _setup(session)
    insert_inferences(session, version, frame(2100, seed=16), start=START, days=7)
    checks_flows.run_checks(session=session, actor=SYSTEM, model_name="ich-ct", kinds=DRIFT, window_end=END)
    ends = checks_flows.backfill_windows(
        session=session,
        model_name="ich-ct",
        first_end=END - timedelta(days=2),
        last_end=END + timedelta(hours=5),
        kinds=DRIFT,
    )
    assert ends == [END - timedelta(days=2), END - timedelta(days=1), END]
    missing = checks_flows.backfill_windows(
        session=session,
        model_name="ich-ct",
        first_end=END - timedelta(days=2),
        last_end=END,
        kinds=DRIFT,
        missing_only=True,
    )
    assert missing == [END - timedelta(days=2), END - timedelta(days=1)]


# ---------------------------------------------------------------------------------------------
# API


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    version = _setup(session)
    insert_inferences(session, version, frame(2100, seed=17, shift=1.0), start=START, days=7)
    return make_keys(session)


def test_run_now_answers_the_runs_in_the_contract_shape(client: TestClient, keys: dict[str, str]) -> None:
    answer = client.post(
        "/api/v1/checks/run",
        json={"model": "ich-ct", "kinds": DRIFT, "window_end": END.isoformat()},
        headers=auth(keys["qa"]),
    )
    assert answer.status_code == 200, answer.text
    runs = answer.json()
    assert [r["kind"] for r in runs] == ["input_drift", "output_drift"]
    first = runs[0]
    assert {"id", "model", "version", "kind", "status", "window_start", "window_end", "summary", "metrics"} <= set(
        first
    )
    assert (first["model"], first["version"], first["status"]) == ("ich-ct", "2.1.0", "completed")
    point = next(m for m in first["metrics"] if m["metric"] == "drift_score" and m["feature"] == "age")
    assert {
        "metric",
        "feature",
        "segment",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "threshold",
        "method",
        "status",
        "estimated",
    } <= set(point)
    assert (point["method"], point["status"], point["threshold"], point["estimated"]) == (
        "wasserstein",
        "breach",
        0.1,
        False,
    )

    listed = client.get(
        "/api/v1/checks", params={"model": "ich-ct", "kind": "input_drift"}, headers=auth(keys["viewer"])
    ).json()
    assert [r["id"] for r in listed] == [first["id"]] and listed[0]["metrics"] is None
    one = client.get(f"/api/v1/checks/{first['id']}", headers=auth(keys["viewer"])).json()
    assert len(one["metrics"]) == len(first["metrics"])
    series = client.get(
        "/api/v1/models/ich-ct/metrics",
        params={"metric": "drift_score", "feature": "age", "since": "2026-11-01"},
        headers=auth(keys["viewer"]),
    ).json()
    assert [(p["window_end"][:10], p["status"]) for p in series] == [("2026-11-20", "breach")]
    assert client.get("/api/v1/checks/999999", headers=auth(keys["viewer"])).status_code == 404


def test_bad_run_requests_are_422(client: TestClient, keys: dict[str, str]) -> None:
    for body, reason in [
        ({"model": "ich-ct", "kinds": ["vibes"]}, "unknown check kind"),
        ({"model": "ich-ct", "window_end": "2026-11-20T00:00:00"}, "timezone"),
        ({"model": "ich-ct", "window_end": "0001-01-02T00:00:00Z"}, "no room"),
    ]:
        answer = client.post("/api/v1/checks/run", json=body, headers=auth(keys["qa"]))
        assert answer.status_code == 422 and reason in answer.json()["error"]["message"], (body, answer.text)
    assert client.post("/api/v1/checks/run", json={"model": "nope"}, headers=auth(keys["qa"])).status_code == 404


def test_report_is_evidently_html_on_a_sample_rendered_once(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    runs = client.post(
        "/api/v1/checks/run",
        json={"model": "ich-ct", "kinds": DRIFT, "window_end": END.isoformat()},
        headers=auth(keys["qa"]),
    ).json()
    answer = client.get(f"/api/v1/checks/{runs[0]['id']}/report", headers=auth(keys["viewer"]))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert f"radmon check run {runs[0]['id']}" in answer.text and "evidently" in answer.text.lower()
    from monitor.checks.models import CheckReport

    stored = session.get(CheckReport, runs[0]["id"])
    assert stored is not None and stored.window_rows == 2100 and stored.size_bytes > len(stored.body)
    assert client.get(f"/api/v1/checks/{runs[0]['id']}/report", headers=auth(keys["admin"])).text == answer.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/api/v1/checks/run", {"qa", "admin"}),
        ("get", "/api/v1/checks", {"viewer", "qa", "approver", "admin"}),
        ("get", "/api/v1/checks/{id}", {"viewer", "qa", "approver", "admin"}),
        ("get", "/api/v1/checks/{id}/report", {"viewer", "qa", "approver", "admin"}),
        ("get", "/api/v1/models/ich-ct/metrics", {"viewer", "qa", "approver", "admin"}),
    ],
)
def test_check_routes_authenticate_and_authorize(
    client: TestClient, keys: dict[str, str], session: Session, method: str, path: str, allowed: set[str]
) -> None:
    run = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=END
    )[0]
    url = path.replace("{id}", str(run.id))
    body = (
        {"json": {"model": "ich-ct", "kinds": ["output_drift"], "window_end": END.isoformat()}}
        if method == "post"
        else {}
    )
    call = getattr(client, method)
    assert call(url, **body).status_code == 401
    for role, key in keys.items():
        status = call(url, headers=auth(key), **body).status_code
        assert (status == 200) if role in allowed else (status == 403), (role, status)
