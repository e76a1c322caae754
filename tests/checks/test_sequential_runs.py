"""The sequential verdict on the real path: daily runs of the subgroups kind read the version's last
56 days, and a persisting sensitivity drop becomes a critical breach with its estimated onset."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.alerts.models import Alert
from monitor.auth.actors import SYSTEM
from monitor.checks import flows
from monitor.simulate import Simulation
from tests.checks.test_performance_runs import day, load, points, post_outcomes
from tests.factories import make_user

ONSET, DAYS = 14, 49


def test_a_persisting_drop_at_one_site_is_a_critical_sequential_breach_dated_from_its_onset(session: Session) -> None:
    simulation = Simulation(days=DAYS, per_day=300, seed=5, scenarios=f"scanner_change:site=north,onset={ONSET}")
    load(session, simulation, window_days=7)
    run = flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["subgroups"], window_end=day(simulation, DAYS)
    )[0]
    table = points(session, run)

    north = table[("sensitivity_sequential", "site=north")]
    details = north.details or {}
    assert north.status == "breach", details
    assert north.method == "glr" and north.threshold is not None
    sequential = details["sequential"]
    assert details["signalled_on"] is not None and sequential["threshold"] == north.threshold
    assert sequential["z"] < -north.threshold  # the window that crossed lies below the target
    assert sequential["series"] >= 2 * 10  # the budget is split over every segment's series
    onset = date.fromisoformat(details["onset"])
    assert abs((onset - day(simulation, ONSET).date()).days) <= 7
    for other in ("site=south", "site=east", "site=west"):
        assert table[("sensitivity_sequential", other)].status == "ok"
        assert table[("specificity_sequential", other)].status == "ok"
    # The fixed-window figure stays the one shown beside it; the CUSUM keeps its 28-day chart.
    assert table[("sensitivity", "site=north")].ci_high is not None
    assert len((table[("sensitivity_cusum", "site=north")].details or {})["days"]) <= 28

    alert = session.execute(
        select(Alert).where(Alert.metric == "sensitivity_sequential", Alert.segment == "site=north")
    ).scalar_one()
    assert alert.severity == "critical"


def test_late_labels_replace_a_days_totals_instead_of_adding_to_them(session: Session) -> None:
    simulation = Simulation(days=12, per_day=150, seed=8)
    end = day(simulation, 12)
    load(session, simulation, outcomes_as_of=day(simulation, 6), window_days=7)

    def sequential_cases() -> int:
        run = flows.run_checks(
            session=session, actor=SYSTEM, model_name="ich-ct", kinds=["performance"], window_end=end
        )[0]
        point = points(session, run)[("sensitivity_sequential", None)]
        return int(point.n or 0)

    early = sequential_cases()
    everything = simulation.outcomes()
    post_outcomes(session, everything)  # the early outcomes again (duplicates) plus the late ones
    truth = simulation.truth()
    positives = sum(truth[r["inference_id"]] for r in everything)  # every study of the run lies in the lookback
    assert early < positives
    assert sequential_cases() == positives


def test_an_acknowledged_sequential_breach_restarts_its_evidence_and_alarms_again_if_the_drop_persists(
    session: Session,
) -> None:
    # Acknowledging says "we have seen these days": the days that raised the alarm must not raise it again
    # on every later run, but a drop that persists must accumulate fresh evidence and alarm again.
    simulation = Simulation(days=84, per_day=300, seed=5, scenarios=f"scanner_change:site=north,onset={ONSET}")
    load(session, simulation, window_days=7)

    def north(n: int) -> tuple[str, dict]:
        run = flows.run_checks(
            session=session, actor=SYSTEM, model_name="ich-ct", kinds=["subgroups"], window_end=day(simulation, n)
        )[0]
        point = points(session, run)[("sensitivity_sequential", "site=north")]
        return point.status, point.details or {}

    assert north(DAYS)[0] == "breach"
    alert = session.execute(
        select(Alert).where(Alert.metric == "sensitivity_sequential", Alert.segment == "site=north")
    ).scalar_one()
    qa, _ = make_user(session, role="qa")
    alerts_service.acknowledge(
        session=session,
        actor=qa,
        alert_id=alert.id,
        note="north's new scanner: vendor called",
        now=day(simulation, DAYS),
    )

    status, details = north(DAYS + 1)
    assert status != "breach" and details["reset_on"] == day(simulation, DAYS).date().isoformat(), details
    # Recomputing the window that raised it still shows the breach (the acknowledgement came after it).
    assert north(DAYS)[0] == "breach"

    statuses = {n: north(n) for n in range(DAYS + 7, 85, 7)}
    again = [n for n, (status, _) in statuses.items() if status == "breach"]
    assert again, {n: s for n, (s, _) in statuses.items()}
    onset = date.fromisoformat(statuses[again[0]][1]["onset"])
    assert onset >= day(simulation, DAYS).date()  # the new evidence lies after the acknowledgement
