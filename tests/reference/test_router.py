"""Reference uploads (JSON, CSV, Parquet), validation errors, supersession, baseline, access."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from monitor.reference.models import ReferenceRow, ReferenceSet
from tests.checks.data import POLICY, frame, insert_inferences, insert_outcomes, records
from tests.factories import auth, make_keys, make_model, make_version

URL = "/api/v1/models/ich-ct/versions/2.1.0/reference"


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    make_model(session)
    make_version(session, activate=True)
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(POLICY)
    )
    return make_keys(session)


def _csv(data: pd.DataFrame) -> bytes:
    return data.to_csv(index=False).encode()


def test_json_upload_is_stored_profiled_and_audited(client: TestClient, keys: dict[str, str], session: Session) -> None:
    data = frame(200, seed=1)
    answer = client.post(URL, json={"records": records(data)}, headers=auth(keys["qa"]))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (
        body["row_count"] == 200
        and body["labelled_rows"] == 200
        and body["status"] == "active"
        and body["format"] == "json"
    )
    stored = session.get(ReferenceSet, body["id"])
    assert stored is not None and stored.profile is not None
    assert set(stored.profile["features"]) == {f["name"] for f in POLICY["features"]}
    assert stored.profile["features"]["manufacturer"]["categories"] == sorted(set(data["manufacturer"]))
    rows = session.execute(
        select(func.count()).select_from(ReferenceRow).where(ReferenceRow.reference_set_id == body["id"])
    ).scalar_one()
    assert rows == 200
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "reference.upload")).scalar_one()
    assert event.after["rows"] == 200 and event.entity_id == "ich-ct:2.1.0" and event.actor == "qa-user"


def test_csv_and_parquet_uploads_and_a_new_upload_supersedes_the_old(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    data = frame(150, seed=2)
    first = client.post(URL, files={"file": ("validation.csv", _csv(data), "text/csv")}, headers=auth(keys["qa"]))
    assert first.status_code == 201, first.text
    buffer = io.BytesIO()
    data.to_parquet(buffer, index=False)
    second = client.post(URL, files={"file": ("validation.parquet", buffer.getvalue())}, headers=auth(keys["admin"]))
    assert second.status_code == 201, second.text
    assert (first.json()["format"], second.json()["format"]) == ("csv", "parquet")

    listed = client.get(URL, headers=auth(keys["viewer"])).json()
    assert [s["id"] for s in listed] == [second.json()["id"], first.json()["id"]]
    assert listed[0]["status"] == "active" and listed[1]["status"] == "superseded"
    assert listed[1]["superseded_by"] == second.json()["id"] and listed[1]["superseded_at"] is not None
    # Both profiles saw the same numbers whatever the file format.
    profiles = [session.get(ReferenceSet, s["id"]).profile for s in listed]  # type: ignore[union-attr]
    assert profiles[0]["features"]["age"]["edges"] == profiles[1]["features"]["age"]["edges"]


@pytest.mark.parametrize(
    ("change", "row", "column", "reason"),
    [
        (lambda d: d.assign(scanner="x"), None, "scanner", "unknown column 'scanner'"),
        (lambda d: d.drop(columns=["mean_hu"]), None, "mean_hu", "missing column 'mean_hu'"),
        (
            lambda d: d.astype({"kvp": object}).assign(kvp=["abc"] + [120] * (len(d) - 1)),
            1,
            "kvp",
            "'abc' is not a number",
        ),
        (lambda d: d.assign(label=[2] + [0] * (len(d) - 1)), 1, "label", "label must be 0 or 1"),
        (lambda d: d.assign(score=[0.2, 1.7] + [0.1] * (len(d) - 2)), 2, "score", "outside 0..1"),
        (lambda d: d.assign(prediction=[None, 1] + [0] * (len(d) - 2)), 1, "prediction", "prediction is required"),
    ],
)
def test_invalid_csv_names_row_column_and_reason(
    client: TestClient,
    keys: dict[str, str],
    session: Session,
    change: object,
    row: int | None,
    column: str,
    reason: str,
) -> None:
    data = change(frame(60, seed=3))  # type: ignore[operator]
    answer = client.post(URL, files={"file": ("bad.csv", _csv(data))}, headers=auth(keys["qa"]))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert reason in error["message"]
    problem = error["details"]["problems"][0]
    assert (problem["row"], problem["column"]) == (row, column)
    assert session.execute(select(func.count()).select_from(ReferenceSet)).scalar_one() == 0


def test_invalid_json_records_name_the_record(client: TestClient, keys: dict[str, str]) -> None:
    rows = records(frame(40, seed=4))
    rows[6]["features"]["age"] = "sixty"
    rows[9]["features"]["kvp"] = True
    rows[11]["colour"] = "red"
    answer = client.post(URL, json={"records": rows}, headers=auth(keys["qa"]))
    assert answer.status_code == 422
    problems = answer.json()["error"]["details"]["problems"]
    assert {
        "row": 12,
        "column": "colour",
        "reason": "unknown field 'colour' (features go inside \"features\")",
    } in problems
    rows[11].pop("colour")
    answer = client.post(URL, json={"records": rows}, headers=auth(keys["qa"]))
    problems = answer.json()["error"]["details"]["problems"]
    assert [(p["row"], p["column"]) for p in problems] == [(7, "age"), (10, "kvp")]


def test_policy_without_features_and_unreadable_files_are_refused(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    broken = client.post(URL, files={"file": ("x.parquet", b"not parquet")}, headers=auth(keys["qa"]))
    assert broken.status_code == 422 and "cannot read the PARQUET file" in broken.json()["error"]["message"]
    unknown = client.post(URL, files={"file": ("x.xlsx", b"abc")}, headers=auth(keys["qa"]))
    assert unknown.status_code == 422 and ".csv or .parquet" in unknown.json()["error"]["message"]
    client.put("/api/v1/models/ich-ct/policy", json={}, headers=auth(keys["qa"]))
    empty = client.post(URL, json={"records": records(frame(40, seed=5))}, headers=auth(keys["qa"]))
    assert empty.status_code == 422 and "lists no features" in empty.json()["error"]["message"]
    missing = client.post(
        "/api/v1/models/ich-ct/versions/9.9.9/reference", json={"records": [{}]}, headers=auth(keys["qa"])
    )
    assert missing.status_code == 404


def test_baseline_reference_copies_the_period_with_effective_labels(
    client: TestClient, keys: dict[str, str], session: Session
) -> None:
    version = session.execute(select(ReferenceSet.id)).first()
    assert version is None
    from monitor.registry.models import ModelVersion

    target = session.execute(select(ModelVersion)).scalar_one()
    start = datetime(2026, 9, 1, tzinfo=UTC)
    data = frame(300, seed=6)
    ids = insert_inferences(session, target, data, start=start, days=10)
    insert_inferences(session, target, frame(50, seed=7), start=start + timedelta(days=20), days=2)  # outside
    insert_outcomes(session, target.model_id, dict(zip(ids[:100], data["label"][:100].tolist(), strict=True)))
    policy = {**POLICY, "baseline": {"start": "2026-09-01T00:00:00Z", "end": "2026-09-11T00:00:00Z"}}
    assert client.put("/api/v1/models/ich-ct/policy", json=policy, headers=auth(keys["qa"])).status_code == 200

    answer = client.post(URL, json={"source": "baseline"}, headers=auth(keys["qa"]))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["source"], body["row_count"], body["labelled_rows"]) == ("baseline", 300, 100)
    assert body["baseline_start"].startswith("2026-09-01")
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "reference.baseline")).scalar_one()
    assert event.after["rows"] == 300


def test_baseline_needs_a_period_with_inferences(client: TestClient, keys: dict[str, str]) -> None:
    assert client.post(URL, json={"source": "baseline"}, headers=auth(keys["qa"])).status_code == 422
    policy = {**POLICY, "baseline": {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}}
    client.put("/api/v1/models/ich-ct/policy", json=policy, headers=auth(keys["qa"]))
    answer = client.post(URL, json={"source": "baseline"}, headers=auth(keys["qa"]))
    assert answer.status_code == 422 and "holds 0 inferences" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "allowed"), [("post", {"qa", "admin"}), ("get", {"viewer", "qa", "approver", "admin"})]
)
def test_reference_routes_authenticate_and_authorize(
    client: TestClient, keys: dict[str, str], method: str, allowed: set[str]
) -> None:
    body = {"json": {"records": records(frame(40, seed=8))}} if method == "post" else {}
    call = getattr(client, method)
    assert call(URL, **body).status_code == 401
    for role, key in keys.items():
        status = call(URL, headers=auth(key), **body).status_code
        assert (status in (200, 201)) if role in allowed else (status == 403), (role, status)
