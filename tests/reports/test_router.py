"""The report routes: who may do what (401/403 on every route), the PDF and the sandboxed preview,
and clear 404/409/422 answers for bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.reports.router import PREVIEW_POLICY
from tests.factories import PASSWORD, auth, make_model, make_user, make_version

READERS = {"viewer", "qa", "approver", "admin"}


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    make_model(session)
    make_version(session, activate=True)
    return {role: make_user(session, role=role, full_name=f"{role.title()} Person")[1] for role in (*READERS, "ingest")}


def _draft(client: TestClient, keys: dict[str, str], period: str = "2026-10") -> dict[str, Any]:
    answer = client.post("/api/v1/reports", json={"model": "ich-ct", "period": period}, headers=auth(keys["qa"]))
    assert answer.status_code == 201, answer.text
    return answer.json()


def _sign(client: TestClient, keys: dict[str, str], report_id: int, role: str = "qa", **body: Any) -> Any:
    return client.post(
        f"/api/v1/reports/{report_id}/signatures",
        json={"meaning": "reviewed", "password": PASSWORD, **body},
        headers=auth(keys[role]),
    )


def test_qa_generates_signs_and_a_viewer_downloads_the_signed_pdf(client: TestClient, keys: dict[str, str]) -> None:
    draft = _draft(client, keys)
    assert (draft["model"], draft["period_start"], draft["period_end"]) == ("ich-ct", "2026-10-01", "2026-10-31")
    signed = _sign(client, keys, draft["id"])
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "signed"
    assert signed.json()["signatures"][0]["printed_name"] == "Qa Person"

    pdf = client.get(f"/api/v1/reports/{draft['id']}/pdf", headers=auth(keys["viewer"]))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["x-content-sha256"] == signed.json()["sha256"]
    assert "radmon-report-ich-ct-2026-10-01-to-2026-10-31-r1-signed.pdf" in pdf.headers["content-disposition"]

    listed = client.get("/api/v1/reports", params={"model": "ich-ct"}, headers=auth(keys["viewer"])).json()
    assert [(r["id"], r["status"]) for r in listed] == [(draft["id"], "signed")]


def test_the_preview_is_sandboxed_like_the_evidently_report(client: TestClient, keys: dict[str, str]) -> None:
    draft = _draft(client, keys)
    preview = client.get(f"/api/v1/reports/{draft['id']}/preview", headers=auth(keys["viewer"]))
    assert preview.status_code == 200 and preview.headers["content-type"].startswith("text/html")
    policy = preview.headers["content-security-policy"]
    assert policy == PREVIEW_POLICY
    assert "sandbox" in policy and "script-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert preview.headers["x-content-type-options"] == "nosniff"
    assert "<html" in preview.text


def test_regenerating_a_signed_period_is_refused_with_409_and_the_refusal_is_kept(
    client: TestClient, keys: dict[str, str]
) -> None:
    draft = _draft(client, keys)
    assert _sign(client, keys, draft["id"]).status_code == 200
    again = client.post("/api/v1/reports", json={"model": "ich-ct", "period": "2026-10"}, headers=auth(keys["qa"]))
    assert again.status_code == 409
    assert "signed and immutable" in again.json()["error"]["message"]
    deleted = client.delete(f"/api/v1/reports/{draft['id']}", headers=auth(keys["admin"]))
    assert deleted.status_code == 409
    trail = client.get(
        "/api/v1/audit",
        params={"entity": "surveillance_report", "action": "report.refused"},
        headers=auth(keys["admin"]),
    )
    assert trail.status_code == 200, trail.text
    events = trail.json()["events"]
    assert {e["after"]["attempt"] for e in events if e["action"] == "report.refused"} == {"regenerate", "delete"}

    correction = client.post(
        f"/api/v1/reports/{draft['id']}/revisions", json={"reason": "late outcomes"}, headers=auth(keys["qa"])
    )
    assert correction.status_code == 201, correction.text
    assert (correction.json()["revision"], correction.json()["supersedes_id"]) == (2, draft["id"])


def test_a_draft_can_be_discarded(client: TestClient, keys: dict[str, str]) -> None:
    draft = _draft(client, keys)
    assert client.delete(f"/api/v1/reports/{draft['id']}", headers=auth(keys["qa"])).status_code == 204
    assert client.get(f"/api/v1/reports/{draft['id']}", headers=auth(keys["viewer"])).status_code == 404


def test_a_wrong_password_is_refused_and_nothing_is_signed(client: TestClient, keys: dict[str, str]) -> None:
    draft = _draft(client, keys)
    answer = _sign(client, keys, draft["id"], password="wrong password")
    assert answer.status_code == 403 and "password does not match" in answer.json()["error"]["message"]
    assert client.get(f"/api/v1/reports/{draft['id']}", headers=auth(keys["qa"])).json()["status"] == "draft"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "ich-ct"}, "period"),
        ({"model": "ich-ct", "period": "2026-13"}, "YYYY-MM"),
        ({"model": "ich-ct", "period_start": "2026-11-30", "period_end": "2026-11-01"}, "before period_start"),
        ({"model": "ich-ct", "period": "2026-11", "period_start": "2026-11-01"}, "not both"),
        ({"model": "ich-ct", "period": "2999-01"}, "after today"),
        ({"model": "ich-ct", "period": "2026-11", "extra": 1}, "extra"),
    ],
)
def test_bad_periods_get_422_saying_why(
    client: TestClient, keys: dict[str, str], body: dict[str, Any], fragment: str
) -> None:
    answer = client.post("/api/v1/reports", json=body, headers=auth(keys["qa"]))
    assert answer.status_code == 422, answer.text
    assert fragment in answer.text


def test_unknown_reports_and_models_get_404(client: TestClient, keys: dict[str, str]) -> None:
    qa = auth(keys["qa"])
    assert client.post("/api/v1/reports", json={"model": "nope", "period": "2026-10"}, headers=qa).status_code == 404
    assert client.get("/api/v1/reports", params={"model": "nope"}, headers=qa).status_code == 404
    for path in ("/api/v1/reports/999", "/api/v1/reports/999/pdf", "/api/v1/reports/999/preview"):
        assert client.get(path, headers=qa).status_code == 404, path
    assert _sign(client, keys, 999).status_code == 404
    assert client.post("/api/v1/reports/999/revisions", json={"reason": "x"}, headers=qa).status_code == 404
    assert client.delete("/api/v1/reports/999", headers=qa).status_code == 404
    assert client.get(f"/api/v1/reports/{2**40}", headers=qa).status_code == 422
    assert _sign(client, keys, 999, meaning="witnessed").status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("get", "/api/v1/reports", None, READERS),
        ("post", "/api/v1/reports", {"model": "ich-ct", "period": "2026-09"}, {"qa", "admin"}),
        ("get", "/api/v1/reports/{id}", None, READERS),
        ("get", "/api/v1/reports/{id}/pdf", None, READERS),
        ("get", "/api/v1/reports/{id}/preview", None, READERS),
        ("post", "/api/v1/reports/{id}/signatures", {"meaning": "reviewed", "password": PASSWORD}, {"qa"}),
        ("post", "/api/v1/reports/{id}/revisions", {"reason": "correction"}, {"qa", "admin"}),
        ("delete", "/api/v1/reports/{id}", None, {"qa", "admin"}),
    ],
)
def test_report_routes_authenticate_and_authorize(
    client: TestClient,
    keys: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    report_id = _draft(client, keys)["id"]
    url = path.format(id=report_id)
    kwargs = {"json": body} if body is not None else {}
    call = getattr(client, method) if method != "post" else client.post
    assert call(url, **kwargs).status_code == 401
    assert call(url, headers=auth("rmk_not-a-key"), **kwargs).status_code == 401
    for role, key in keys.items():
        status = call(url, headers=auth(key), **kwargs).status_code
        if role in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)
