"""Adverse-event fixtures: an incident (site=east with its alias manufacturer=Canon), a facility in New York."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.config import Settings
from monitor.db import Database
from tests.alerts.conftest import DAY0, alert_settings, finding, seed
from tests.alerts.conftest import smtp_server as smtp_server  # noqa: PLC0414  (the aiosmtpd fixture)
from tests.dashboard.conftest import dashboard_client as dashboard_client  # noqa: PLC0414  (API + dashboard)

EAST = finding(segment="site=east", value=0.765, ci_low=0.713, ci_high=0.811, n=307, run_id=7)
CANON = replace(EAST, segment="manufacturer=Canon", details={"same_rows_as": "site=east"})
FACILITY_ZONE = "America/New_York"


@dataclass(frozen=True)
class Incident:
    primary: int
    member: int


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """The API's settings for these tests: the facility's clock runs in New York."""
    return alert_settings(tmp_path, database.url, facility_timezone=FACILITY_ZONE)


def open_incident(session: Session, settings: Settings) -> Incident:
    """Seed the model and raise the east incident with its Canon alias; returns their alert ids."""
    seed(session)
    alerts = alerts_service.process_findings(session=session, findings=[EAST, CANON], now=DAY0, settings=settings)
    by_segment = {a.segment: a for a in alerts}
    primary, member = by_segment["site=east"], by_segment["manufacturer=Canon"]
    assert member.incident_id == primary.id
    return Incident(primary.id, member.id)
