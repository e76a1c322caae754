"""Output drift per segment: mergeable per-segment sums, the rank test, findings, alerts, API.

Detection on the simulator is in test_detection.py."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts.models import Alert
from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks.drift_checks import _rank_test
from monitor.checks.models import MetricPoint
from monitor.checks.profiles import MISSING_SEGMENT, Profile, reference_profile, sample_profile
from monitor.checks.schemas import FeatureSpec, MonitoringPolicy
from monitor.reference import service as reference_service
from tests.checks.data import NUMERIC, POLICY, frame, insert_inferences, records
from tests.factories import auth, make_keys, make_model, make_version

os.environ.setdefault("DO_NOT_TRACK", "1")

SEGMENTS = POLICY["segments"]
SPECS = [FeatureSpec(name=n, type="numeric") for n in NUMERIC]
END = datetime(2026, 11, 20, tzinfo=UTC)
START = END - timedelta(days=7)


def _table(data: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(data, preserve_index=False)


def test_segment_sums_of_daily_profiles_add_up_to_the_window() -> None:
    reference = reference_profile(_table(frame(3000, seed=3)), SPECS, SEGMENTS)
    assert reference.segment_attributes == SEGMENTS and len(reference.segment_edges) > 40
    window = frame(2000, seed=4)
    window.loc[window.index[:50], "site"] = None  # rows without the attribute are a segment of their own
    whole = sample_profile(_table(window), reference)
    summed = reference.empty_profile()
    for part in np.array_split(np.arange(len(window)), 3):
        day = sample_profile(_table(window.iloc[part]), reference)
        summed.add(Profile.from_json(day.to_json(), reference))  # through storage, as the checks do
    assert set(summed.segments["site"]) == {"north", "south", "east", "west", MISSING_SEGMENT}
    for attribute in SEGMENTS:
        for value, expected in whole.segments[attribute].items():
            got = summed.segments[attribute][value]
            assert (got.rows, got.scored, got.predictions, got.positive_predictions) == (
                expected.rows, expected.scored, expected.predictions, expected.positive_predictions
            )  # fmt: skip
            assert got.bins.tolist() == expected.bins.tolist()
            assert got.logit_sum == pytest.approx(expected.logit_sum) and got.logit_sumsq == pytest.approx(
                expected.logit_sumsq
            )
    north = window[window.site == "north"]
    clipped = np.clip(north.score.to_numpy(), 1e-6, 1 - 1e-6)
    assert summed.segments["site"]["north"].logit_mean == pytest.approx(np.mean(np.log(clipped / (1 - clipped))))
    assert summed.segments["site"]["north"].positive_predictions == int(north.prediction.sum())


def test_rank_test_is_mann_whitney_on_the_binned_scores() -> None:
    rng = np.random.default_rng(5)
    edges = np.quantile(rng.beta(2, 8, 5000), np.linspace(0, 1, 51)[1:-1])
    reference = np.searchsorted(edges, rng.beta(2, 8, 1500), side="right")
    window = np.searchsorted(edges, rng.beta(2.3, 8, 600), side="right")
    auc, p_value = _rank_test(np.bincount(window, minlength=50), np.bincount(reference, minlength=50))
    oracle = stats.mannwhitneyu(window, reference, method="asymptotic", use_continuity=False)
    assert p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert auc == pytest.approx(oracle.statistic / (len(window) * len(reference)), rel=1e-12)


def _shifted_at_north(n: int, seed: int, shift: float) -> pd.DataFrame:
    """Traffic whose scores at site north are lower (on the log-odds scale) than elsewhere."""
    data = frame(n, seed=seed)
    north = data.site == "north"
    logit = np.log(data.score.clip(1e-6, 1 - 1e-6) / (1 - data.score.clip(1e-6, 1 - 1e-6)))
    lowered = 1 / (1 + np.exp(-(logit - shift)))
    data.loc[north, "score"] = lowered[north]
    data.loc[north, "prediction"] = (data.loc[north, "score"] >= 0.5).astype(int)
    return data


def _setup(session: Session) -> None:
    make_model(session)
    version = make_version(session, activate=True)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    reference_service.upload_records(
        session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(4000, seed=1))
    )
    insert_inferences(session, version, _shifted_at_north(4000, seed=2, shift=0.8), start=START, days=7)


def _segment_points(session: Session, run_id: int) -> dict[tuple[str, str], MetricPoint]:
    points = session.execute(
        select(MetricPoint).where(MetricPoint.run_id == run_id, MetricPoint.segment.is_not(None))
    ).scalars()
    return {(p.metric, p.segment): p for p in points}


def test_a_change_at_one_site_is_output_drift_there_only_and_raises_an_alert(session: Session) -> None:
    _setup(session)
    run = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["output_drift"], window_end=END
    )[0]
    points = _segment_points(session, run.id)
    north, rate = points[("drift_score", "site=north")], points[("positive_rate", "site=north")]
    assert (north.status, north.method, north.threshold) == ("breach", "logit_mean_shift", 0.1)
    assert north.value < -0.3 and north.details["adjusted_p_value"] < 0.001 and north.details["test"] == "mann_whitney"
    assert rate.status == "breach" and rate.value < rate.threshold
    others = {
        segment: p.status
        for (metric, segment), p in points.items()
        if metric == "drift_score" and segment.startswith("site=") and segment != "site=north"
    }
    assert others == {"site=south": "ok", "site=east": "ok", "site=west": "ok"}
    # 4 sites + 4 manufacturers + 2 sexes, two tests each.
    assert north.details["tests"] == 20
    # Manufacturer and sex segments hold north's rows too (a quarter of each), so they may drift
    # with it; the other sites do not.
    assert "site=north" in run.summary["segments_drifted"]
    assert not {"site=south", "site=east", "site=west"} & set(run.summary["segments_drifted"])
    alerts = session.execute(select(Alert.kind, Alert.metric, Alert.feature).where(Alert.segment == "site=north")).all()
    # The fixed-window findings and the sequential decisions on the same days (docs/decisions/0503).
    assert sorted(alerts) == [
        ("output_drift", "drift_score", "score"),
        ("output_drift", "positive_rate", "prediction"),
        ("output_drift", "positive_rate_sequential", "prediction"),
        ("output_drift", "score_sequential", "score"),
    ]


def test_segments_with_the_same_rows_are_one_test() -> None:
    from monitor.checks.drift_checks import segment_output_findings

    data = frame(3000, seed=8)
    data["scanner"] = data["site"].map({"north": "A", "south": "B", "east": "C", "west": "D"})
    reference = reference_profile(_table(data), SPECS, ["site", "scanner"])
    window = sample_profile(
        _table(
            frame(3000, seed=9).assign(
                scanner=lambda d: d.site.map({"north": "A", "south": "B", "east": "C", "west": "D"})
            )
        ),
        reference,
    )

    class Context:  # what segment_output_findings reads
        policy = MonitoringPolicy.model_validate({"segments": ["site", "scanner"], "min_window_count": 100})

    context = Context()
    context.reference = reference  # type: ignore[attr-defined]
    context.window_profile = type("W", (), {"profile": window})()  # type: ignore[attr-defined]
    findings = segment_output_findings(context)  # type: ignore[arg-type]
    score = {f.segment: f for f in findings if f.metric == "drift_score"}
    assert (
        score["scanner=A"].details["same_rows_as"] == "site=north" and "same_rows_as" not in score["site=north"].details
    )
    assert {f.details["tests"] for f in findings} == {8}  # 4 distinct segments, not 8
    assert all(f.status == "ok" for f in findings)  # same traffic, no drift


def test_small_segments_are_insufficient_data() -> None:
    from monitor.checks.drift_checks import segment_output_findings

    reference = reference_profile(_table(frame(3000, seed=10)), SPECS, ["site"])
    window = sample_profile(_table(frame(300, seed=11)), reference)  # ~75 rows per site

    class Context:
        policy = MonitoringPolicy.model_validate({"segments": ["site"], "min_window_count": 100})

    context = Context()
    context.reference = reference  # type: ignore[attr-defined]
    context.window_profile = type("W", (), {"profile": window})()  # type: ignore[attr-defined]
    findings = segment_output_findings(context)  # type: ignore[arg-type]
    assert len(findings) == 8 and {f.status for f in findings} == {"insufficient_data"}
    assert "the policy's minimum is 100" in findings[0].details["reason"]


def test_segment_points_are_served_by_the_metrics_api(client: TestClient, session: Session) -> None:
    _setup(session)
    keys = make_keys(session)
    answer = client.post(
        "/api/v1/checks/run",
        json={"model": "ich-ct", "kinds": ["output_drift"], "window_end": END.isoformat()},
        headers=auth(keys["qa"]),
    )
    assert answer.status_code == 200, answer.text
    series = client.get(
        "/api/v1/models/ich-ct/metrics",
        params={"metric": "drift_score", "segment": "site=north"},
        headers=auth(keys["viewer"]),
    ).json()
    assert [(p["feature"], p["segment"], p["status"], p["kind"]) for p in series] == [
        ("score", "site=north", "breach", "output_drift")
    ]
    overall = client.get(
        "/api/v1/models/ich-ct/metrics", params={"metric": "positive_rate"}, headers=auth(keys["viewer"])
    ).json()
    assert None in {p["segment"] for p in overall} and "site=north" in {p["segment"] for p in overall}
