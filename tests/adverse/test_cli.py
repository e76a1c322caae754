"""`radmon adverse deadlines` and `radmon adverse remind`, as an operator runs them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from monitor.adverse import service
from monitor.adverse.schemas import ClassifyCreate
from monitor.db import Database, utcnow
from tests.adverse.conftest import open_incident
from tests.alerts.conftest import alert_settings
from tests.factories import PASSWORD, make_user
from tests.test_cli import database_url as database_url  # noqa: PLC0414  (a migrated database in the env)
from tests.test_cli import empty_url as empty_url  # noqa: PLC0414
from tests.test_cli import environment as environment  # noqa: PLC0414
from tests.test_cli import radmon


@pytest.fixture
def overdue_event(database_url: str, tmp_path) -> int:  # type: ignore[no-untyped-def]
    database = Database(database_url)
    settings = alert_settings(tmp_path, database_url)
    try:
        with database.transaction() as session:
            incident = open_incident(session, settings)
            qa, _ = make_user(session, role="qa", username="qa-lead")
        with database.transaction() as session:
            outcome = service.classify(
                session=session,
                actor=qa,
                alert_id=incident.primary,
                data=ClassifyCreate(
                    jurisdictions=["eu-mdr-serious-incident"],
                    aware_at=utcnow() - timedelta(days=20),
                    reason="missed bleeds at site east",
                    password=SecretStr(PASSWORD),
                ),
                settings=settings,
            )
            assert outcome.event is not None
            return outcome.event.id
    finally:
        database.dispose()


def test_deadlines_and_reminders_from_the_command_line(overdue_event: int) -> None:
    listed = radmon("adverse", "deadlines", "--open")
    assert listed.exit_code == 0, listed.output
    assert f"#{overdue_event}" in listed.stdout and "overdue" in listed.stdout and "MDR Art. 87(3)" in listed.stdout
    first = radmon("adverse", "remind")
    assert first.exit_code == 0 and first.stdout.strip() == "1 reminder queued in the outbox"
    again = radmon("adverse", "remind")
    assert again.exit_code == 0 and again.stdout.strip() == "0 reminders queued in the outbox"
