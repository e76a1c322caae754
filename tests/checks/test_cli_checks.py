"""`radmon checks run|backfill` and `radmon simulate` as an operator scripts them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.kinds import implemented_kinds
from monitor.checks.models import CheckRun
from monitor.checks.schemas import MonitoringPolicy
from monitor.db import Database
from monitor.reference import service as reference_service
from tests.checks.data import POLICY, frame, insert_inferences, records
from tests.factories import make_model, make_version
from tests.test_cli import database_url, empty_url, environment, one_line_error, radmon  # noqa: F401  (fixtures)

END = datetime(2026, 11, 20, tzinfo=UTC)


def _seed(url: str) -> None:
    database = Database(url)
    with database.transaction() as session:
        make_model(session)
        version = make_version(session, activate=True)
        checks_policy.put_policy(
            session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
        )
        reference_service.upload_records(
            session=session, actor=SYSTEM, model_name="ich-ct", version="2.1.0", records=records(frame(1500, seed=1))
        )
        insert_inferences(session, version, frame(1400, seed=2, shift=1.0), start=END - timedelta(days=10), days=10)
    database.dispose()


def _runs(url: str) -> list[tuple[str, datetime, bool]]:
    database = Database(url)
    with database.transaction() as session:
        rows = session.execute(select(CheckRun.kind, CheckRun.window_end, CheckRun.superseded_at.is_(None))).all()
    database.dispose()
    return [tuple(row) for row in rows]


def test_checks_run_records_runs_and_a_rerun_supersedes(database_url: str) -> None:  # noqa: F811
    _seed(database_url)
    first = radmon("checks", "run", "--model", "ich-ct", "--kind", "input_drift", "--window-end", "2026-11-20")
    assert first.exit_code == 0, first.output
    assert "input_drift" in first.stdout and "completed" in first.stdout
    again = radmon("checks", "run", "--model", "ich-ct", "--kind", "input_drift", "--window-end", "2026-11-20T00:00Z")
    assert again.exit_code == 0, again.output
    runs = _runs(database_url)
    assert len(runs) == 2 and sorted(current for _, _, current in runs) == [False, True]


def test_checks_backfill_runs_each_day_once_and_resumes(database_url: str) -> None:  # noqa: F811
    _seed(database_url)
    result = radmon("checks", "backfill", "--model", "ich-ct", "--from", "2026-11-18", "--to", "2026-11-20")
    assert result.exit_code == 0, result.output
    kinds = len(implemented_kinds())
    assert f"{3 * kinds} check runs over 3 daily windows" in result.stdout
    again = radmon("checks", "backfill", "--model", "ich-ct", "--from", "2026-11-18", "--to", "2026-11-20")
    assert again.exit_code == 0 and "0 check runs over 3 daily windows" in again.stdout
    assert sorted({end for _, end, _ in _runs(database_url)}) == [END - timedelta(days=d) for d in (2, 1, 0)]


def test_checks_commands_give_one_line_reasons(database_url: str) -> None:  # noqa: F811
    assert "unknown model 'nope'" in one_line_error(radmon("checks", "run", "--model", "nope"))
    assert "--window-end must be an ISO date" in one_line_error(
        radmon("checks", "run", "--model", "nope", "--window-end", "tomorrow")
    )
    _seed(database_url)
    assert "after it ends" in one_line_error(
        radmon("checks", "backfill", "--model", "ich-ct", "--from", "2026-11-20", "--to", "2026-11-10")
    )


def test_simulate_writes_the_files_a_client_replays(tmp_path: Path, environment: None) -> None:  # noqa: F811
    result = radmon(
        "simulate", "--scenario", "scanner_change", "--days", "2", "--per-day", "50", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "100 inferences" in result.stdout
    lines = (tmp_path / "inferences.jsonl").read_text().splitlines()
    assert len(lines) == 100 and json.loads(lines[0])["model"] == "ich-ct"
    assert "unknown scenario 'bogus'" in one_line_error(
        radmon("simulate", "--scenario", "bogus", "--out", str(tmp_path))
    )
