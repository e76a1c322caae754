"""The alerts page and the overview show one incident with its aliases and "breaching since" (decision 0303)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.auth.actors import SYSTEM
from monitor.config import Settings
from tests.alerts.conftest import day, finding
from tests.dashboard.callbacks import find
from tests.dashboard.conftest import dashboard_client, render_page, sign_in  # noqa: F401 (fixture)
from tests.factories import make_model, make_user, make_version

EAST = finding(segment="site=east", value=0.765, ci_low=0.713, ci_high=0.811, n=307)
CANON = replace(EAST, segment="manufacturer=Canon", details={"same_rows_as": "site=east"})


@pytest.fixture
def incident(session: Session, settings: Settings) -> int:
    """A near-miss on day 0 that cleared itself, then east and Canon breaching from day 40 on."""
    make_user(session, role="viewer", username="vera")
    make_model(session)
    make_version(session, version="2.1.0", activate=True)

    def process(*findings: object, on: int) -> None:
        alerts_service.process_findings(
            session=session, findings=list(findings), now=day(on) + timedelta(hours=1), settings=settings
        )

    process(replace(EAST, status="warn", value=0.88), on=0)
    for n in (1, 2, 3):
        process(replace(EAST, status="ok", value=0.93, window_end=day(n)), on=n)
    for n in (40, 41):
        process(replace(EAST, window_end=day(n)), replace(CANON, window_end=day(n)), on=n)
    [out] = alerts_service.list_alerts(session=session, actor=SYSTEM, status="open", settings=settings)
    return out.id


def test_the_alert_list_shows_one_incident_naming_its_alias_and_breaching_since(
    dashboard_client: TestClient,  # noqa: F811
    incident: int,
) -> None:
    sign_in(dashboard_client, "vera")
    page = render_page(dashboard_client, "/alerts")
    assert page.count('"alerts-row-') == 1  # one line, not one per segment
    assert "manufacturer=Canon" in json.dumps(find(page, f"alerts-members-{incident}"))
    assert "since 2026-12-12" in json.dumps(find(page, f"alerts-since-{incident}"))


def test_the_incident_detail_lists_aliases_with_reasons_and_the_current_episode(
    dashboard_client: TestClient,  # noqa: F811
    incident: int,
) -> None:
    sign_in(dashboard_client, "vera")
    page = render_page(dashboard_client, "/alerts", f"?id={incident}")
    aliases = json.dumps(find(page, "alerts-detail-aliases"))
    assert "manufacturer=Canon" in aliases and "the same studies as site=east" in aliases
    since = json.dumps(find(page, "alerts-detail-since"))
    assert "2026-12-12 02:00 UTC" in since and "current continuous episode" in since


def test_the_overview_says_since_when_the_worst_incident_breaches(
    dashboard_client: TestClient,  # noqa: F811
    incident: int,
) -> None:
    sign_in(dashboard_client, "vera")
    page = render_page(dashboard_client, "/")
    assert '"1 open"' in page  # the incident, not its two alert rows
    worst = json.dumps(find(page, "overview-worst-ich-ct"))
    assert "since 2026-12-12" in worst and "site=east" in worst


def test_a_near_miss_is_listed_under_its_own_filter_not_among_the_incidents(
    dashboard_client: TestClient,  # noqa: F811
    session: Session,
    settings: Settings,
) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    make_version(session, version="2.1.0", activate=True)
    near = replace(EAST, segment="site=south", status="warn", value=0.88)
    alerts_service.process_findings(
        session=session, findings=[near], now=day(0) + timedelta(hours=1), settings=settings
    )
    [alert] = alerts_service.list_alerts(session=session, actor=SYSTEM, severity="info", settings=settings)
    sign_in(dashboard_client, "vera")
    assert f'"alerts-row-{alert.id}"' not in render_page(dashboard_client, "/alerts")
    assert f'"alerts-row-{alert.id}"' in render_page(dashboard_client, "/alerts", "?severity=info")
    assert '"1 open"' not in render_page(dashboard_client, "/")  # the overview counts incidents
