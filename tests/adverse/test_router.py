"""The adverse-event API: classify (signed), deadlines as a countdown, reported (signed), the dossier PDF."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.config import Settings
from tests.adverse.conftest import FACILITY_ZONE, Incident, open_incident
from tests.factories import PASSWORD, auth, make_keys, make_user

NEW_YORK = ZoneInfo(FACILITY_ZONE)


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    keys = make_keys(session)
    keys["qa-lead"] = make_user(session, role="qa", username="qa-lead", full_name="Dr. Ada Lovelace")[1]
    return keys


@pytest.fixture
def incident(session: Session, settings: Settings) -> Incident:
    return open_incident(session, settings)


def classify_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jurisdictions": ["fda-user-facility", "fda-manufacturer"],
        "remedial_action": False,
        "reason": "missed bleeds at site east: delayed treatment possible",
        "password": PASSWORD,
    }
    body.update(changes)
    return body


def classify(client: TestClient, key: str, alert_id: int, **changes: Any) -> Any:
    return client.post(f"/api/v1/alerts/{alert_id}/adverse-event", json=classify_body(**changes), headers=auth(key))


def reported_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"reference": "MW5012345", "password": PASSWORD}
    body.update(changes)
    return body


def test_qa_classifies_an_incident_and_sees_each_jurisdictions_countdown(
    client: TestClient, keys: dict[str, str], incident: Incident, session: Session
) -> None:
    response = classify(client, keys["qa-lead"], incident.primary)  # aware: now
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["alert_id"] == incident.primary and event["time_zone"] == FACILITY_ZONE
    assert "sensitivity below target at site east" in event["headline"]
    by_code = {d["jurisdiction"]: d for d in event["deadlines"]}
    user_facility, manufacturer = by_code["fda-user-facility"], by_code["fda-manufacturer"]
    assert (user_facility["regulation"], user_facility["days"], user_facility["unit"]) == ("21 CFR 803.30", 10, "work")
    assert (manufacturer["regulation"], manufacturer["days"], manufacturer["unit"]) == ("21 CFR 803.50", 30, "calendar")
    assert user_facility["countdown"].startswith("10 work days left, due ")
    assert manufacturer["countdown"].startswith("30 days left, due ")
    # The due time is the end of the facility's local day.
    due_local = datetime.fromisoformat(user_facility["due_at"]).astimezone(NEW_YORK)
    assert (due_local.hour, due_local.minute, due_local.second) == (23, 59, 59)
    assert user_facility["due_local"].endswith(("23:59 EST", "23:59 EDT")) and user_facility["status"] == "open"
    [signature] = event["signatures"]
    assert signature["printed_name"] == "Dr. Ada Lovelace" and signature["meaning"].startswith("classified as")
    assert signature["manifestation"].startswith("Signed by Dr. Ada Lovelace (qa-lead) on ")
    audit = session.execute(select(AuditEvent).where(AuditEvent.action == "adverse_event.classified")).scalar_one()
    assert audit.actor == "qa-lead" and audit.after["signature"]["content_hash"] == signature["content_hash"]
    # The incident's page (API) shows the same clock to a viewer.
    shown = client.get(f"/api/v1/alerts/{incident.primary}/adverse-event", headers=auth(keys["viewer"]))
    assert shown.status_code == 200 and shown.json()["deadlines"] == event["deadlines"]


def test_remedial_action_shortens_the_manufacturer_deadline_to_five_work_days(
    client: TestClient, keys: dict[str, str], incident: Incident
) -> None:
    response = classify(client, keys["qa"], incident.primary, jurisdictions=["fda-manufacturer"], remedial_action=True)
    [deadline] = response.json()["deadlines"]
    assert (deadline["regulation"], deadline["days"], deadline["unit"]) == ("21 CFR 803.53", 5, "work")
    assert deadline["countdown"].startswith("5 work days left")


def test_classifying_a_member_alert_points_at_its_incident(
    client: TestClient, keys: dict[str, str], incident: Incident
) -> None:
    response = classify(client, keys["qa"], incident.member)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert f"belongs to incident #{incident.primary}" in message and f"alert #{incident.primary}" in message


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"jurisdictions": ["fda-user-facility", "tga-australia"]}, 422, "unknown jurisdiction 'tga-australia'"),
        ({"jurisdictions": []}, 422, "jurisdictions"),
        ({"jurisdictions": ["fda-manufacturer", "fda-manufacturer"]}, 422, "each jurisdiction once"),
        ({"reason": "   "}, 422, "why the incident is reportable"),
        ({"aware_at": "2099-01-01T00:00:00Z"}, 422, "in the future"),
        ({"aware_at": "0001-01-01T00:00:00Z"}, 422, "more than ten years ago"),
        ({"aware_at": "2026-12-01T10:00:00"}, 422, "timezone"),
    ],
)
def test_bad_classifications_get_a_clear_4xx(
    client: TestClient, keys: dict[str, str], incident: Incident, changes: dict[str, Any], status: int, words: str
) -> None:
    response = classify(client, keys["qa"], incident.primary, **changes)
    assert response.status_code == status
    assert words in response.text


def test_an_unknown_alert_is_404(client: TestClient, keys: dict[str, str], incident: Incident) -> None:
    assert classify(client, keys["qa"], 999_999).status_code == 404
    assert client.get("/api/v1/alerts/999999/adverse-event", headers=auth(keys["viewer"])).status_code == 404
    unclassified = client.get(f"/api/v1/alerts/{incident.primary}/adverse-event", headers=auth(keys["viewer"]))
    assert unclassified.status_code == 404 and "not classified" in unclassified.text


def test_classifying_twice_is_a_conflict(client: TestClient, keys: dict[str, str], incident: Incident) -> None:
    assert classify(client, keys["qa"], incident.primary).status_code == 201
    again = classify(client, keys["admin"], incident.primary)
    assert again.status_code == 409 and "already classified" in again.text


def test_a_wrong_password_signs_nothing_and_is_recorded(
    client: TestClient, keys: dict[str, str], incident: Incident, session: Session
) -> None:
    response = classify(client, keys["qa"], incident.primary, password="not my password")
    assert response.status_code == 403 and "nothing was signed" in response.text
    assert client.get(f"/api/v1/alerts/{incident.primary}/adverse-event", headers=auth(keys["qa"])).status_code == 404
    failed = session.execute(select(AuditEvent).where(AuditEvent.action == "signature.failed")).scalar_one()
    assert failed.actor == "qa-user"


def test_recording_a_report_with_its_reference_and_signature(
    client: TestClient, keys: dict[str, str], incident: Incident, session: Session
) -> None:
    event = classify(client, keys["qa"], incident.primary).json()
    url = f"/api/v1/adverse-events/{event['id']}/deadlines/fda-user-facility/reported"
    response = client.post(url, json=reported_body(), headers=auth(keys["qa-lead"]))
    assert response.status_code == 200, response.text
    by_code = {d["jurisdiction"]: d for d in response.json()["deadlines"]}
    reported = by_code["fda-user-facility"]
    assert reported["status"] == "reported" and reported["reference"] == "MW5012345"
    assert reported["countdown"].startswith("reported ") and "reference MW5012345" in reported["countdown"]
    assert reported["reported_by"] == "qa-lead"
    assert by_code["fda-manufacturer"]["status"] == "open"
    signatures = response.json()["signatures"]
    assert [(s["action"], s["jurisdiction"]) for s in signatures] == [
        ("classified", None),
        ("reported", "fda-user-facility"),
    ]
    audit = session.execute(select(AuditEvent).where(AuditEvent.action == "adverse_event.reported")).scalar_one()
    assert audit.after["reference"] == "MW5012345" and audit.after["on_time"] is True
    # Reporting twice is refused; so is a jurisdiction the event was not classified for.
    again = client.post(url, json=reported_body(reference="MW999"), headers=auth(keys["qa"]))
    assert again.status_code == 409 and "already recorded" in again.text
    other = client.post(
        f"/api/v1/adverse-events/{event['id']}/deadlines/eu-mdr-serious-incident/reported",
        json=reported_body(),
        headers=auth(keys["qa"]),
    )
    assert other.status_code == 404 and "fda-user-facility, fda-manufacturer" in other.text
    future = client.post(
        f"/api/v1/adverse-events/{event['id']}/deadlines/fda-manufacturer/reported",
        json=reported_body(reported_on="2099-01-01"),
        headers=auth(keys["qa"]),
    )
    assert future.status_code == 422 and "in the future" in future.text
    missing = client.post(
        "/api/v1/adverse-events/999999/deadlines/fda-manufacturer/reported",
        json=reported_body(),
        headers=auth(keys["qa"]),
    )
    assert missing.status_code == 404


def test_open_list_shows_events_with_reports_still_to_file(
    client: TestClient, keys: dict[str, str], incident: Incident
) -> None:
    event = classify(client, keys["qa"], incident.primary, jurisdictions=["eu-mdr-serious-incident"]).json()
    listed = client.get("/api/v1/adverse-events?open=true", headers=auth(keys["viewer"])).json()
    assert [e["id"] for e in listed] == [event["id"]]
    client.post(
        f"/api/v1/adverse-events/{event['id']}/deadlines/eu-mdr-serious-incident/reported",
        json=reported_body(reference="EUDAMED-2026-17"),
        headers=auth(keys["qa"]),
    )
    assert client.get("/api/v1/adverse-events?open=true", headers=auth(keys["viewer"])).json() == []
    assert [e["id"] for e in client.get("/api/v1/adverse-events", headers=auth(keys["viewer"])).json()] == [event["id"]]


def test_jurisdictions_are_listed_with_their_rules(client: TestClient, keys: dict[str, str]) -> None:
    listed = client.get("/api/v1/adverse-events/jurisdictions", headers=auth(keys["viewer"])).json()
    assert {j["code"]: (j["days"], j["unit"]) for j in listed} == {
        "fda-user-facility": (10, "work"),
        "fda-manufacturer": (30, "calendar"),
        "eu-mdr-serious-incident": (15, "calendar"),
    }


def test_the_dossier_pdf_downloads_and_is_the_same_bytes_twice(
    client: TestClient, keys: dict[str, str], incident: Incident
) -> None:
    event = classify(client, keys["qa"], incident.primary).json()
    url = f"/api/v1/adverse-events/{event['id']}/dossier.pdf"
    first = client.get(url, headers=auth(keys["viewer"]))
    assert first.status_code == 200 and first.headers["content-type"] == "application/pdf"
    assert first.content.startswith(b"%PDF-")
    assert first.headers["x-content-sha256"] == hashlib.sha256(first.content).hexdigest()
    assert f"adverse-event-{event['id']}-dossier.pdf" in first.headers["content-disposition"]
    second = client.get(url, headers=auth(keys["qa"]))
    assert second.content == first.content
    assert client.get("/api/v1/adverse-events/999999/dossier.pdf", headers=auth(keys["viewer"])).status_code == 404


ROUTES = [
    ("get", "/api/v1/adverse-events/jurisdictions", None),
    ("get", "/api/v1/adverse-events", None),
    ("get", "/api/v1/alerts/1/adverse-event", None),
    ("post", "/api/v1/alerts/1/adverse-event", classify_body()),
    ("post", "/api/v1/adverse-events/1/deadlines/fda-manufacturer/reported", reported_body()),
    ("get", "/api/v1/adverse-events/1/dossier.pdf", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_an_api_key(client: TestClient, method: str, path: str, body: Any) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_the_ingest_role_reads_and_changes_nothing(
    client: TestClient, keys: dict[str, str], method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, json=body, headers=auth(keys["ingest"]))
    assert response.status_code == 403


@pytest.mark.parametrize("role", ["viewer", "approver"])
@pytest.mark.parametrize(("method", "path", "body"), [r for r in ROUTES if r[0] == "post"])
def test_only_qa_and_admin_classify_and_record_reports(
    client: TestClient, keys: dict[str, str], incident: Incident, role: str, method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, json=body, headers=auth(keys[role]))
    assert response.status_code == 403 and "may not acknowledge or resolve alerts" in response.text
