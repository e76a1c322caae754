"""Performance, subgroups and estimated_performance runs end to end: ingest -> runs -> points -> API."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import performance_checks
from monitor.checks import policy as checks_policy
from monitor.checks.models import CheckRun, MetricPoint
from monitor.checks.schemas import MonitoringPolicy
from monitor.ingest import service as ingest_service
from monitor.ingest.models import Outcome
from monitor.reference import service as reference_service
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate, VersionCreate
from monitor.simulate import Simulation, default_policy
from tests.factories import auth, make_keys

KEY = "test-pseudonym-key-0123456789"
ONSET = 14
DAYS = 28
KINDS = ["performance", "subgroups", "estimated_performance"]


@pytest.fixture(scope="module")
def scanner_change() -> Simulation:
    return Simulation(days=DAYS, per_day=300, seed=5, scenarios=f"scanner_change:site=north,onset={ONSET}")


def load(
    session: Session,
    simulation: Simulation,
    *,
    outcomes_as_of: datetime | None = None,
    with_outcomes: bool = True,
    window_days: int = 14,
) -> None:
    """The model, its policy (a window fully after the onset at day 28) and reference, then the traffic."""
    registry_service.create_model(
        session=session,
        actor=SYSTEM,
        data=ModelCreate(name=simulation.model, display_name="ICH", modality="CT", body_part="HEAD"),
    )
    registry_service.create_version(
        session=session, actor=SYSTEM, model_name=simulation.model, data=VersionCreate(**simulation.version_spec())
    )
    registry_service.activate_first(
        session=session, actor=SYSTEM, model_name=simulation.model, version=simulation.version, reason="go-live"
    )
    checks_policy.put_policy(
        session=session,
        actor=SYSTEM,
        model_name=simulation.model,
        policy=MonitoringPolicy.model_validate(default_policy() | {"window_days": window_days}),
    )
    reference_service.upload_records(
        session=session,
        actor=SYSTEM,
        model_name=simulation.model,
        version=simulation.version,
        records=simulation.reference(4000),
    )
    ingest_service.ingest_inferences(
        session=session, actor=SYSTEM, records=simulation.inferences(), pseudonym_key=KEY, max_records=10**6
    )
    if with_outcomes:
        post_outcomes(session, simulation.outcomes(as_of=outcomes_as_of))


def post_outcomes(session: Session, records: list[dict]) -> None:
    result = ingest_service.ingest_outcomes(
        session=session, actor=SYSTEM, records=records, pseudonym_key=KEY, max_records=10**6
    )
    assert not result.rejected, result.rejected[:3]


def points(session: Session, run: CheckRun) -> dict[tuple[str, str | None], MetricPoint]:
    return {
        (p.metric, p.segment): p
        for p in session.execute(select(MetricPoint).where(MetricPoint.run_id == run.id)).scalars()
    }


def day(simulation: Simulation, n: int) -> datetime:
    return simulation.start + timedelta(days=n)


def test_scanner_change_is_a_significant_breach_at_north_while_the_overall_figure_is_not(
    session: Session, scanner_change: Simulation
) -> None:
    load(session, scanner_change)
    runs = {
        r.kind: r
        for r in checks_flows.run_checks(
            session=session, actor=SYSTEM, model_name="ich-ct", kinds=KINDS, window_end=day(scanner_change, DAYS)
        )
    }
    assert {k: r.status for k, r in runs.items()} == {k: "completed" for k in KINDS}

    overall = points(session, runs["performance"])
    assert overall[("sensitivity", None)].status in ("ok", "warn")
    assert (
        overall[("sensitivity", None)].ci_low
        < overall[("sensitivity", None)].value
        < overall[("sensitivity", None)].ci_high
    )
    coverage = overall[("label_coverage", None)]
    assert coverage.n == pytest.approx(4200, abs=250) and 0.7 < coverage.value < 0.9  # some studies are never confirmed

    table = points(session, runs["subgroups"])
    north = table[("sensitivity", "site=north")]
    assert north.status == "breach", (north.value, north.ci_high, north.details)
    assert north.value < 0.86 and north.ci_high < 0.9
    assert north.details["q_target"] <= 0.05 and north.details["rest"]["difference"] < 0
    assert runs["subgroups"].summary["breaches"] >= 1
    assert "site=north" in runs["subgroups"].summary["breached_segments"]
    assert runs["subgroups"].summary["ranking"][0]["segment"] in (
        "site=north",
        "manufacturer=GE MEDICAL SYSTEMS",
        "site=north&manufacturer=GE MEDICAL SYSTEMS",
    )
    for other in ("site=south", "site=east"):
        assert table[("sensitivity", other)].status != "breach"
    cusum_north = table[("sensitivity_cusum", "site=north")]
    assert cusum_north.status == "warn", cusum_north.details  # the extra detector signals too
    assert len(cusum_north.details["days"]) == len(cusum_north.details["s"]) > 20
    assert max(cusum_north.details["s"]) > cusum_north.threshold
    assert table[("sensitivity_cusum", "site=north")].details["first_signal"] is not None

    estimated = points(session, runs["estimated_performance"])
    assert estimated[("sensitivity", "site=north")].estimated is True
    # The estimate cannot see a scanner that hides bleeds (concept shift): it says why instead.
    support = estimated[("estimate_support", "site=north")]
    assert support.status == "breach" and support.value < 0.2
    assert "kvp" in support.details["features"]
    assert estimated[("estimate_support", "site=south")].status == "ok"


def test_estimate_error_is_kept_once_labels_arrive_and_flags_the_concept_shift(
    session: Session, scanner_change: Simulation
) -> None:
    load(session, scanner_change, with_outcomes=False)
    end = day(scanner_change, DAYS)
    first = {
        r.kind: r
        for r in checks_flows.run_checks(
            session=session, actor=SYSTEM, model_name="ich-ct", kinds=KINDS, window_end=end
        )
    }
    assert first["performance"].status == "insufficient_data"  # no labels yet: never "ok"
    assert points(session, first["estimated_performance"])[("sensitivity", None)].value is not None

    post_outcomes(session, scanner_change.outcomes())
    assert performance_checks.windows_to_recompute(
        session=session, model_id=first["performance"].model_id, now=end + timedelta(days=30)
    ) == [end]
    again = checks_flows.recompute_labelled_windows(
        session=session, actor=SYSTEM, model_name="ich-ct", now=end + timedelta(days=30)
    )
    assert sorted(r.kind for r in again) == ["performance", "subgroups"]
    session.refresh(first["performance"])
    assert first["performance"].superseded_by in {r.id for r in again}
    subgroups = next(r for r in again if r.kind == "subgroups")
    error = points(session, subgroups)[("sensitivity_estimate_error", "site=north")]
    assert error.value > 0.05  # the estimate was optimistic at north
    assert error.details["realized"] < error.details["estimated"]
    assert error.status == "warn" and "concept shift" in error.details["reason"]
    assert "site=north:sensitivity" in subgroups.summary["estimate_unreliable"]

    later = checks_flows.run_checks(
        session=session,
        actor=SYSTEM,
        model_name="ich-ct",
        kinds=["estimated_performance"],
        window_end=end + timedelta(days=1),
    )[0]
    annotated = points(session, later)[("sensitivity", "site=north")]
    assert annotated.details["last_reconciliation"]["suspect"] is True


def test_late_and_superseding_outcomes_recompute_without_double_counting(session: Session) -> None:
    simulation = Simulation(days=10, per_day=150, seed=8)
    end = day(simulation, 10)
    load(session, simulation, outcomes_as_of=day(simulation, 9), window_days=7)
    model_id = registry_service.find_model(session=session, name="ich-ct").id
    first = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["performance"], window_end=end
    )[0]
    early = first.summary["labelled"]
    assert (
        performance_checks.windows_to_recompute(session=session, model_id=model_id, now=end + timedelta(days=1)) == []
    )

    everything = simulation.outcomes()
    post_outcomes(session, everything)  # the early ones again (duplicates) plus the late ones
    flipped = [
        dict(
            r,
            label=1 - r["label"],
            source="follow_up",
            confirmed_at=(datetime.fromisoformat(r["confirmed_at"]) + timedelta(days=40)).isoformat(),
        )
        for r in everything[:25]
    ]
    post_outcomes(session, flipped)  # a later outcome supersedes the earlier one for 25 studies
    assert performance_checks.windows_to_recompute(session=session, model_id=model_id, now=end + timedelta(days=1)) == [
        end
    ]
    second = checks_flows.recompute_labelled_windows(
        session=session, actor=SYSTEM, model_name="ich-ct", now=end + timedelta(days=1)
    )
    performance_run = next(r for r in second if r.kind == "performance")
    start = (end - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S")
    in_window = {
        r["inference_id"]
        for r in simulation.inferences()
        if start <= r["occurred_at"][:19] < end.strftime("%Y-%m-%dT%H:%M:%S")
    }
    labelled = {r["inference_id"] for r in everything} & in_window
    assert performance_run.summary["labelled"] == len(labelled) > early
    truth = simulation.truth()
    flipped_ids = {r["inference_id"] for r in flipped}
    positives = sum(1 - truth[i] if i in flipped_ids else truth[i] for i in labelled)
    assert performance_run.summary["positives"] == positives
    assert session.execute(select(Outcome).where(Outcome.superseded_at.is_not(None))).scalars().first() is not None
    assert (
        performance_checks.windows_to_recompute(session=session, model_id=model_id, now=end + timedelta(days=1)) == []
    )
    # Beyond the policy's horizon a window is left as it is.
    assert (
        performance_checks.windows_to_recompute(session=session, model_id=model_id, now=end + timedelta(days=61)) == []
    )


def test_subgroups_route_returns_the_table_for_readers_only(
    client: TestClient, session: Session, scanner_change: Simulation
) -> None:
    keys = make_keys(session)
    load(session, scanner_change)
    end = day(scanner_change, DAYS)
    checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["subgroups", "estimated_performance"], window_end=end
    )

    answer = client.get(
        "/api/v1/models/ich-ct/subgroups", params={"window_end": end.isoformat()}, headers=auth(keys["viewer"])
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["window_end"].startswith(end.date().isoformat())
    assert body["fdr_q"] == 0.05 and body["tests"] > 10
    first = body["segments"][0]
    assert first["rank"] == 1 and first["worst_metric"] == "sensitivity"
    north = next(s for s in body["segments"] if s["segment"] == "site=north")
    sensitivity = north["metrics"]["sensitivity"]
    assert sensitivity["status"] == "breach" and sensitivity["ci_high"] < 0.9 and sensitivity["threshold"] == 0.9
    assert sensitivity["estimated"]["value"] > sensitivity["value"]
    assert north["label_coverage"] > 0.7 and north["counts"]["positives"] >= 30
    assert "site=north" in body["breached_segments"]
    ranks = [s["rank"] for s in body["segments"] if s["rank"] is not None]
    assert ranks == sorted(ranks)

    latest = client.get("/api/v1/models/ich-ct/subgroups", headers=auth(keys["qa"]))
    assert latest.status_code == 200 and latest.json()["run_id"] == body["run_id"]
    assert client.get("/api/v1/models/ich-ct/subgroups").status_code == 401
    assert client.get("/api/v1/models/ich-ct/subgroups", headers=auth(keys["ingest"])).status_code == 403
    missing = client.get(
        "/api/v1/models/ich-ct/subgroups", params={"window_end": "2020-01-01T00:00:00Z"}, headers=auth(keys["viewer"])
    )
    assert missing.status_code == 404

    series = client.get(
        "/api/v1/models/ich-ct/metrics",
        params={"metric": "sensitivity", "segment": "site=north"},
        headers=auth(keys["viewer"]),
    )
    kinds = {(p["kind"], p["estimated"]) for p in series.json()}
    assert kinds == {("subgroups", False), ("estimated_performance", True)}
    assert all(p["ci_low"] is not None and p["ci_high"] is not None for p in series.json())


def test_two_current_outcomes_for_one_inference_fall_back_to_the_canonical_effective_label(session: Session) -> None:
    """Ingest keeps one current outcome per target; if that were ever broken, no inference counts twice."""
    from sqlalchemy import insert

    simulation = Simulation(days=7, per_day=100, seed=9)
    end = day(simulation, 7)
    load(session, simulation, window_days=7)
    model_id = registry_service.find_model(session=session, name="ich-ct").id
    first = simulation.outcomes()[0]
    session.execute(
        insert(Outcome),
        [
            {
                "model_id": model_id, "inference_id": first["inference_id"], "label": 1 - first["label"], "source": "pathology",
                "confirmed_at": datetime.fromisoformat(first["confirmed_at"]) + timedelta(days=3),
                "received_at": datetime.fromisoformat(first["confirmed_at"]) + timedelta(days=3),
                "content_hash": "broken-invariant",
            }
        ],
    )  # fmt: skip
    session.flush()
    run = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["performance"], window_end=end
    )[0]
    labelled = {r["inference_id"] for r in simulation.outcomes()}
    assert run.summary["labelled"] == len(labelled) == run.summary["positives"] + run.summary["negatives"]
    truth = simulation.truth()
    expected_positives = sum(truth[i] for i in labelled) + (1 - 2 * first["label"])  # the later outcome wins
    assert run.summary["positives"] == expected_positives
