"""`radmon demo --port N`: the links in its alert emails and API answers point at the demo itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from monitor import demo
from monitor.alerts import service as alerts_service
from monitor.auth.actors import SYSTEM
from monitor.config import get_settings
from monitor.db import Database
from tests.alerts.conftest import finding, free_port


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """demo.run exports its settings; put every RADMON_ variable back afterwards."""
    for name in ("RADMON_DEMO", "RADMON_DATABASE_URL", "RADMON_OUTBOX_DIR", "RADMON_DASHBOARD_URL"):
        monkeypatch.setenv(name, "recorded")  # so that monkeypatch restores what was there before
        monkeypatch.delenv(name)
    yield
    get_settings.cache_clear()


def test_the_demo_links_its_emails_to_its_own_port(tmp_path: Path, clean_environment: None) -> None:
    port = free_port()
    db_path = tmp_path / "demo.db"
    demo.run(db_path=db_path, days=1, host="127.0.0.1", port=port, seed=7, serve_forever=False, out=Console(quiet=True))
    expected = f"http://127.0.0.1:{port}/dashboard/"
    assert get_settings().dashboard_url == expected
    database = Database(f"sqlite:///{db_path}")
    try:
        with database.transaction() as session:
            day = finding().window_end
            [alert] = alerts_service.process_findings(
                session=session, findings=[finding(model=demo.MODEL, version=demo.ACTIVE_VERSION, window_end=day)]
            )
            out = alerts_service.get_alert(session=session, actor=SYSTEM, alert_id=alert.id)
        assert out.link == f"{expected}alerts?id={alert.id}"
    finally:
        database.dispose()


def test_port_zero_is_resolved_before_the_settings_so_the_url_names_it() -> None:
    port = demo.listening_port("127.0.0.1", 0)
    assert port > 0 and demo.own_url("0.0.0.0", port) == f"http://127.0.0.1:{port}"
    assert demo.own_url("::", 8101) == "http://[::1]:8101"
