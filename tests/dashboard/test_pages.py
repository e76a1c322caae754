"""Page layouts as the server renders them for each role (through the pages router callback)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dashboard import data
from tests.dashboard.conftest import callback_body, post_callback, render_page, sign_in
from tests.factories import make_model, make_user, make_version

AUDIT_OUTPUTS = [
    ("audit-table-container", "children"),
    ("audit-cursor-store", "data"),
    ("audit-page-label", "children"),
    ("audit-newer-button", "disabled"),
    ("audit-older-button", "disabled"),
    ("audit-export-link", "href"),
    ("audit-filter-error", "children"),
]


def audit_request(trigger: str = "audit-apply-button", *, cursor: dict | None = None, **filters: str) -> dict:
    fields = ("actor", "action", "entity", "entity_id")
    inputs = [(trigger, "n_clicks", 1)] + [
        (b, "n_clicks", None)
        for b in ("audit-apply-button", "audit-older-button", "audit-newer-button")
        if b != trigger
    ]
    inputs += [(f"audit-filter-{name}", "n_submit", None) for name in fields]
    state = [(f"audit-filter-{name}", "value", filters.get(name, "")) for name in fields]
    state += [("audit-filter-since", "value", filters.get("since", "")), ("audit-cursor-store", "data", cursor)]
    return callback_body(AUDIT_OUTPUTS, inputs, state)


def test_overview_lists_models_and_says_no_checks_yet(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    make_version(session, version="2.0.0", activate=True)
    make_model(session, name="ptx-cxr", display_name="Pneumothorax (chest X-ray)")
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/")

    assert "overview-row-ich-ct" in page and "overview-row-ptx-cxr" in page
    assert '"2.0.0"' in page and "never" in page
    assert page.count("No checks yet") == 2  # no status is invented before the first check run


def test_overview_without_models_shows_an_empty_state(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/")

    assert "overview-empty" in page and "No models registered yet" in page


def test_versions_page_shows_targets_threshold_hash_and_timeline(
    dashboard_client: TestClient, session: Session
) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    make_version(session, version="2.0.0", activate=True, decision_threshold=0.42)
    make_version(session, version="2.1.0", targets={"sensitivity": 0.92, "brier": 0.1})
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/versions", "?model=ich-ct")

    assert "versions-row-2.0.0" in page and "versions-row-2.1.0" in page
    assert "0.420" in page
    assert "Sensitivity \\u2265 0.92" in page and "Brier score \\u2264 0.10" in page
    assert "abababababababab" in page  # the artifact hash, shortened, with the full hash as title
    assert "versions-timeline" in page and "Date (UTC)" in page
    assert "versions-activate-button" not in page


def test_first_activation_form_is_offered_to_admins_only(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="admin", username="ada")
    make_user(session, role="qa", username="quinn")
    make_model(session)
    make_version(session)

    sign_in(dashboard_client, "ada")
    assert "versions-activate-button" in render_page(dashboard_client, "/versions", "?model=ich-ct")
    sign_in(dashboard_client, "quinn")
    page = render_page(dashboard_client, "/versions", "?model=ich-ct")
    assert "versions-activate-button" not in page and "Not deployed yet" in page


def test_versions_page_for_an_unknown_model_says_so(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/versions", "?model=no-such-model")

    assert "versions-error" in page and "unknown model 'no-such-model'" in page
    assert "versions-model-select" in page  # the picker stays so the user can recover


def test_unknown_path_renders_the_not_found_page(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")

    assert "notfound-empty" in render_page(dashboard_client, "/no/such/page")


def test_audit_callback_filters_and_links_the_matching_export(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    make_model(session)
    make_model(session, name="ptx-cxr", display_name="Pneumothorax")
    sign_in(dashboard_client, "vera")

    response = post_callback(dashboard_client, audit_request(action="model.create", entity_id="ptx-cxr"))

    assert response.status_code == 200, response.text
    result = response.json()["response"]
    table = json.dumps(result["audit-table-container"]["children"])
    assert "ptx-cxr" in table and '"ich-ct"' not in table
    assert result["audit-export-link"]["href"] == "/dashboard/audit/export.csv?action=model.create&entity_id=ptx-cxr"
    assert result["audit-older-button"]["disabled"] is True


def test_audit_callback_pages_older_and_back_newer(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    for number in range(60):
        make_model(session, name=f"model-{number:02d}", display_name=f"Model {number}")
    sign_in(dashboard_client, "vera")

    first = post_callback(dashboard_client, audit_request(action="model.create")).json()["response"]
    cursor = first["audit-cursor-store"]["data"]
    assert first["audit-older-button"]["disabled"] is False and first["audit-newer-button"]["disabled"] is True
    older = post_callback(
        dashboard_client, audit_request("audit-older-button", cursor=cursor, action="model.create")
    ).json()["response"]
    older_table = json.dumps(older["audit-table-container"]["children"])
    assert "model-09" in older_table and "model-10" not in older_table and "model-00" in older_table
    assert older["audit-older-button"]["disabled"] is True and older["audit-newer-button"]["disabled"] is False
    back = post_callback(
        dashboard_client,
        audit_request("audit-newer-button", cursor=older["audit-cursor-store"]["data"], action="model.create"),
    ).json()["response"]
    assert back["audit-page-label"]["children"] == first["audit-page-label"]["children"]


def test_audit_callback_explains_a_bad_date(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")

    response = post_callback(dashboard_client, audit_request(since="31/01/2026"))

    assert response.status_code == 200
    assert "must be a date like 2026-01-31" in response.text


CHAIN_OUTPUTS = [("audit-chain-status", "children"), ("audit-full-store", "data"), ("audit-full-poll", "disabled")]


def chain_callback(client: TestClient, trigger: str | None, running: dict[str, str] | None = None) -> Any:
    """The chain status callback as the page fires it: on opening (no trigger), the button, a poll."""
    button = ("audit-verify-button", "n_clicks", 1 if trigger == "button" else None)
    poll = ("audit-full-poll", "n_intervals", 1 if trigger == "poll" else None)
    body = callback_body(
        CHAIN_OUTPUTS, [poll, button] if trigger == "poll" else [button, poll], [("audit-full-store", "data", running)]
    )
    if trigger is None:
        body["changedPropIds"] = []
    response = post_callback(client, body)
    assert response.status_code in (200, 204), response.text
    return response.json()["response"] if response.status_code == 200 else None


def test_chain_verification_reports_the_intact_chain(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")

    opened = chain_callback(dashboard_client, None)
    make_model(session, name="ptx-cxr")  # one more event
    reopened = chain_callback(dashboard_client, None)

    assert "audit-chain-ok" in json.dumps(opened) and "Chain intact" in json.dumps(opened)
    assert opened["audit-full-poll"]["disabled"] is True
    assert "1 new event from" in json.dumps(reopened)  # only what was appended since is rehashed on opening


def test_the_full_verification_runs_in_the_background_and_the_page_polls_for_it(
    dashboard_client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(session, role="viewer", username="vera")
    sign_in(dashboard_client, "vera")
    chain_callback(dashboard_client, None)  # the page opened: an incremental verification is the newest
    release = threading.Event()
    real = data.verify_audit_full

    def slow(*, actor: Any) -> Any:
        release.wait(10)  # the rehash takes a while: a poll before it finishes changes nothing
        return real(actor=actor)

    monkeypatch.setattr(data.audit, "verify_audit_full", slow)

    started = chain_callback(dashboard_client, "button")
    running = started["audit-full-store"]["data"]
    early = chain_callback(dashboard_client, "poll", running)
    release.set()
    assert data.audit._full_verification is not None
    data.audit._full_verification[1].join(10)
    done = chain_callback(dashboard_client, "poll", running)

    assert "audit-chain-running" in json.dumps(started) and started["audit-full-poll"]["disabled"] is False
    assert early is None  # nothing to update yet
    assert "Whole chain rehashed" in json.dumps(done) and "audit-chain-ok" in json.dumps(done)
    assert done["audit-full-poll"]["disabled"] is True
