"""Run a simulator scenario through the real path: ingest, reference upload, daily drift checks.

Shared by the detection tests (tests/checks/test_detection.py) and the false-finding bench
(bench/drift_scenarios.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import policy as checks_policy
from monitor.checks.models import MetricPoint
from monitor.checks.schemas import MonitoringPolicy
from monitor.db import Database
from monitor.ingest import service as ingest_service
from monitor.reference import service as reference_service
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate, VersionCreate
from monitor.simulate import Simulation, batches, default_policy

PSEUDONYM_KEY = "scenario-pseudonym-key-0123456789"
DRIFT_KINDS = ("input_drift", "output_drift")


@dataclass
class DayResult:
    day: int  # window_end = simulation start + day days
    statuses: dict[str, str]  # kind -> run status
    breaches: set[tuple[str, str | None]] = field(default_factory=set)  # (metric, feature), whole population
    warnings: set[tuple[str, str | None]] = field(default_factory=set)
    segment_breaches: set[tuple[str, str | None, str]] = field(default_factory=set)  # (metric, feature, segment)
    segment_warnings: set[tuple[str, str | None, str]] = field(default_factory=set)
    # Sequential decisions in breach (*_sequential, docs/decisions/0503), whole population or segment:
    # apart from the fixed-window figures above, because their null rate is a stated budget, not zero.
    sequential: set[tuple[str, str | None, str | None]] = field(default_factory=set)

    @property
    def findings(self) -> bool:
        """Any fixed-window metric point in breach (what raises an alert), whole population or segment."""
        return bool(self.breaches or self.segment_breaches)


def load(database: Database, simulation: Simulation, *, reference_rows: int = 5000) -> None:
    """Register the model, its policy and reference, and ingest every simulated inference."""
    with database.transaction() as session:
        registry_service.create_model(
            session=session,
            actor=SYSTEM,
            data=ModelCreate(name=simulation.model, display_name="ICH triage", modality="CT", body_part="HEAD"),
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
            policy=MonitoringPolicy.model_validate(default_policy()),
        )
        reference_service.upload_records(
            session=session,
            actor=SYSTEM,
            model_name=simulation.model,
            version=simulation.version,
            records=simulation.reference(reference_rows),
        )
    for batch in batches(simulation.inferences()):
        with database.transaction() as session:
            result = ingest_service.ingest_inferences(
                session=session, actor=SYSTEM, records=batch, pseudonym_key=PSEUDONYM_KEY
            )
            assert not result.rejected, result.rejected[:3]


def daily_checks(database: Database, simulation: Simulation, days: Iterable[int]) -> list[DayResult]:
    """One run of every drift kind per window_end (simulation start + day), like the scheduler."""
    results = []
    for day in days:
        with database.transaction() as session:
            runs = checks_flows.run_checks(
                session=session,
                actor=SYSTEM,
                model_name=simulation.model,
                kinds=list(DRIFT_KINDS),
                window_end=simulation.start + timedelta(days=day),
            )
            result = DayResult(day, {run.kind: run.status for run in runs})
            points = session.execute(
                select(MetricPoint.metric, MetricPoint.feature, MetricPoint.segment, MetricPoint.status).where(
                    MetricPoint.run_id.in_([run.id for run in runs]), MetricPoint.status.in_(("breach", "warn"))
                )
            ).all()
            for metric, feature, segment, status in points:
                if metric.endswith("_sequential"):
                    if status == "breach":
                        result.sequential.add((metric, feature, segment))
                elif segment is None:
                    (result.breaches if status == "breach" else result.warnings).add((metric, feature))
                else:
                    (result.segment_breaches if status == "breach" else result.segment_warnings).add(
                        (metric, feature, segment)
                    )
            results.append(result)
    return results
