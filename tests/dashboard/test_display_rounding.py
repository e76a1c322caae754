"""Display rounding (issue 12, deliverable 8): no raw floats such as 0.7857142857142857 where a
reader looks; stored values keep their full precision."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dashboard.components.widgets import display_json, display_number
from monitor.audit import service as audit_service
from monitor.auth.actors import SYSTEM
from tests.dashboard.conftest import post_callback, sign_in
from tests.dashboard.test_pages import audit_request
from tests.factories import make_user


def test_numbers_are_shown_to_four_significant_digits() -> None:
    assert display_number(0.7857142857142857) == "0.7857"
    assert display_number(1234567.0) == "1,234,567"
    assert display_number(2100) == "2,100"
    assert display_number(None) == "-"
    shown = display_json({"b": [0.1 + 0.2, {"z": 1 / 3}], "a": "kept as is", "n": 7})
    assert json.loads(shown) == {"a": "kept as is", "b": [0.3, {"z": 0.3333}], "n": 7}


def test_the_audit_trail_shows_rounded_values(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    audit_service.record(
        session=session, actor=SYSTEM, action="alert.escalate", entity="alert", entity_id="7",
        before={"value": 0.8412698412698413}, after={"value": 0.7857142857142857, "threshold": 0.9},
    )  # fmt: skip
    sign_in(dashboard_client, "vera")

    response = post_callback(dashboard_client, audit_request(action="alert.escalate"))

    table = json.dumps(response.json()["response"]["audit-table-container"]["children"])
    assert "0.7857" in table and "0.8413" in table
    assert "0.7857142857142857" not in table and "0.8412698412698413" not in table
