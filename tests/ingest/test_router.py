from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.auth.models import ApiKey
from monitor.ingest.models import Inference, Outcome
from monitor.registry.models import Model
from tests.factories import auth, make_user, make_version
from tests.ingest.conftest import inference, outcome

ROUTES = ("/api/v1/inferences", "/api/v1/outcomes")


def count(session: Session, table: type) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


def _prefix(session: Session) -> str:
    return session.execute(select(ApiKey.prefix)).scalar_one()


def test_post_inferences_answers_per_record(client: TestClient, ingest_key: str, session: Session, ich: Model) -> None:
    body = {"records": [inference(0), inference(1, score=1.7), inference(0)]}

    answer = client.post("/api/v1/inferences", json=body, headers=auth(ingest_key))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "accepted": 1,
        "duplicates": [{"index": 2, "inference_id": "inf-00000"}],
        "rejected": [
            {
                "index": 1,
                "inference_id": "inf-00001",
                "field": "score",
                "reason": "score must be between 0 and 1 for a binary model; got 1.7",
            }
        ],
    }
    assert count(session, Inference) == 1


def test_post_outcomes(client: TestClient, ingest_key: str, session: Session, ich: Model) -> None:
    client.post("/api/v1/inferences", json={"records": [inference(0)]}, headers=auth(ingest_key))

    answer = client.post(
        "/api/v1/outcomes",
        json={"records": [outcome(), outcome(None, study_key="ACC00000000", label=0), outcome("missing")]},
        headers=auth(ingest_key),
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    assert [(r["index"], r["field"]) for r in answer.json()["rejected"]] == [(2, "inference_id")]
    assert count(session, Outcome) == 2


@pytest.mark.parametrize("path", ROUTES)
def test_more_records_than_the_limit_is_413(client: TestClient, ingest_key: str, session: Session, path: str) -> None:
    answer = client.post(path, json={"records": [{}] * 10_001}, headers=auth(ingest_key))

    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "too_large" and "at most 10000 records; got 10001" in error["message"]


def test_exactly_the_limit_is_answered(client: TestClient, ingest_key: str, ich: Model) -> None:
    answer = client.post("/api/v1/inferences", json={"records": [{}] * 10_000}, headers=auth(ingest_key))

    assert answer.status_code == 200
    assert len(answer.json()["rejected"]) == 10_000


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the body is empty"),
        (b"not json", "the body is not valid JSON"),
        (b'{"records": [1,', "the body is not valid JSON"),
        (b"[]", "the body must be a JSON object"),
        (b"{}", 'the body has no "records" field'),
        (b'{"records": {"a": 1}}', '"records" must be a list of records; got an object'),
        (b'{"records": [], "extra": 1}', "unknown field(s) in the body: extra"),
        (b'"\\ud800"', "the body is not valid JSON"),
    ],
)
def test_malformed_bodies_are_422_with_a_clear_message(
    client: TestClient, ingest_key: str, path: str, content: bytes, message: str
) -> None:
    answer = client.post(path, content=content, headers={**auth(ingest_key), "Content-Type": "application/json"})

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid"
    assert message in answer.json()["error"]["message"]


def test_an_empty_batch_is_fine(client: TestClient, ingest_key: str) -> None:
    answer = client.post("/api/v1/inferences", json={"records": []}, headers=auth(ingest_key))
    assert answer.json() == {"accepted": 0, "duplicates": [], "rejected": []}


@pytest.mark.parametrize("path", ROUTES)
def test_routes_authenticate_and_authorize(
    client: TestClient, keys: dict[str, str], session: Session, ich: Model, path: str
) -> None:
    body: dict[str, Any] = {"records": [inference(0) if path.endswith("inferences") else outcome()]}

    assert client.post(path, json=body).status_code == 401
    assert client.post(path, json=body, headers=auth("rmk_not-a-key")).status_code == 401
    for role, key in keys.items():
        status = client.post(path, json=body, headers=auth(key)).status_code
        assert status == (200 if role in ("ingest", "admin") else 403), (role, status)


@pytest.mark.parametrize("path", ROUTES)
def test_a_bad_key_gets_401_whatever_the_body(client: TestClient, ich: Model, path: str) -> None:
    # The key is checked in the ingest group, after the body is parsed: the parse error must not
    # tell an unauthenticated caller anything.
    for body in (b"{not json", b"", b'{"records": 5}'):
        answer = client.post(path, content=body, headers=auth("rmk_not-a-key"))
        assert answer.status_code == 401, (body, answer.text)
        assert answer.json()["error"]["message"] == "invalid or revoked API key"


def test_a_revoked_key_stops_ingesting_at_once(client: TestClient, session: Session, ich: Model) -> None:
    _, key = make_user(session, role="ingest")
    assert client.post("/api/v1/inferences", json={"records": [inference(0)]}, headers=auth(key)).status_code == 200

    auth_service.revoke_api_key(session=session, actor=SYSTEM, prefix=_prefix(session))

    answer = client.post("/api/v1/inferences", json={"records": [inference(1)]}, headers=auth(key))
    assert answer.status_code == 401
    assert count(session, Inference) == 1


def test_a_version_registered_after_ingest_began_is_accepted(
    client: TestClient, ingest_key: str, session: Session, ich: Model
) -> None:
    # The ingest committer keeps the models and versions it has seen across requests: a version
    # it has not seen must be looked up again rather than rejected.
    headers = auth(ingest_key)
    assert client.post("/api/v1/inferences", json={"records": [inference(0)]}, headers=headers).json()["accepted"] == 1
    make_version(session, version="2.3.0")

    answer = client.post(
        "/api/v1/inferences",
        json={"records": [inference(1, version="2.3.0"), inference(2, version="9.9.9")]},
        headers=headers,
    ).json()

    assert answer["accepted"] == 1
    assert answer["rejected"] == [
        {"index": 1, "inference_id": "inf-00002", "field": "version", "reason": "model 'ich-ct' has no version '9.9.9'"}
    ]


def test_a_viewer_cannot_store_inferences(
    client: TestClient, keys: dict[str, str], session: Session, ich: Model
) -> None:
    answer = client.post("/api/v1/inferences", json={"records": [inference(0)]}, headers=auth(keys["viewer"]))

    assert answer.status_code == 403
    assert "may not post inferences" in answer.json()["error"]["message"]
    assert count(session, Inference) == 0


def test_openapi_documents_the_batches(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    for path, fields in (
        ("/api/v1/inferences", {"score", "features", "occurred_at"}),
        ("/api/v1/outcomes", {"label", "source"}),
    ):
        operation = spec["paths"][path]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema["required"] == ["records"]
        assert schema["properties"]["records"]["maxItems"] == 10_000
        assert fields <= set(schema["properties"]["records"]["items"]["properties"])
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer["$ref"].endswith("/IngestResult")
        assert {"401", "403", "413", "422"} <= set(operation["responses"])
