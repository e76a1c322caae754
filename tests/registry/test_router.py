from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import SHA, auth, make_keys, make_model, make_version

VERSION = {"version": "1.0.0", "artifact_uri": "s3://m/1.onnx", "artifact_sha256": SHA, "targets": {"sensitivity": 0.9}}


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    return make_keys(session)


def test_admin_registers_model_and_version_then_activates(client: TestClient, keys: dict[str, str]) -> None:
    admin = auth(keys["admin"])
    created = client.post("/api/v1/models", json={"name": "ptx-cxr", "display_name": "Pneumothorax CXR"}, headers=admin)
    assert created.status_code == 201, created.text
    assert client.post("/api/v1/models/ptx-cxr/versions", json=VERSION, headers=admin).status_code == 201
    assert client.get("/api/v1/models/ptx-cxr/active", headers=auth(keys["ingest"])).status_code == 404

    activated = client.post("/api/v1/models/ptx-cxr/versions/1.0.0/activate", json={"reason": "go-live"}, headers=admin)
    assert activated.status_code == 201, activated.text
    active = client.get("/api/v1/models/ptx-cxr/active", headers=auth(keys["ingest"]))
    assert active.json()["version"] == "1.0.0"
    listed = client.get("/api/v1/models", headers=auth(keys["viewer"])).json()
    assert [(m["name"], m["active_version"]) for m in listed] == [("ptx-cxr", "1.0.0")]


def test_versions_are_immutable(client: TestClient, keys: dict[str, str], session: Session) -> None:
    make_model(session)
    make_version(session, version="1.0.0")
    again = client.post("/api/v1/models/ich-ct/versions", json=VERSION, headers=auth(keys["admin"]))
    assert again.status_code == 409
    assert "immutable" in again.json()["error"]["message"]


def test_second_activation_needs_a_change_request(client: TestClient, keys: dict[str, str], session: Session) -> None:
    make_model(session)
    make_version(session, version="1.0.0", activate=True)
    make_version(session, version="1.1.0")
    answer = client.post("/api/v1/models/ich-ct/versions/1.1.0/activate", headers=auth(keys["admin"]))
    assert answer.status_code == 409
    assert "change request" in answer.json()["error"]["message"]
    history_answer = client.get("/api/v1/models/ich-ct/deployments", headers=auth(keys["viewer"]))
    assert history_answer.status_code == 200, history_answer.text
    history = history_answer.json()
    assert [d["version"] for d in history] == ["1.0.0"]


def test_bad_targets_name_the_field(client: TestClient, keys: dict[str, str], session: Session) -> None:
    make_model(session)
    body = dict(VERSION, targets={"sensitivty": 0.9})
    answer = client.post("/api/v1/models/ich-ct/versions", json=body, headers=auth(keys["admin"]))
    assert answer.status_code == 422
    assert "targets" in answer.json()["error"]["message"] and "sensitivty" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/api/v1/models", {"admin"}),
        ("get", "/api/v1/models", {"viewer", "qa", "approver", "admin"}),
        ("get", "/api/v1/models/ich-ct", {"viewer", "qa", "approver", "admin"}),
        ("post", "/api/v1/models/ich-ct/versions", {"admin"}),
        ("get", "/api/v1/models/ich-ct/versions", {"viewer", "qa", "approver", "admin"}),
        ("get", "/api/v1/models/ich-ct/active", {"ingest", "viewer", "qa", "approver", "admin"}),
        ("post", "/api/v1/models/ich-ct/versions/2.1.0/activate", {"admin"}),
        ("get", "/api/v1/models/ich-ct/deployments", {"viewer", "qa", "approver", "admin"}),
    ],
)
def test_registry_routes_authenticate_and_authorize(
    client: TestClient, keys: dict[str, str], session: Session, method: str, path: str, allowed: set[str]
) -> None:
    make_model(session)
    make_version(session)
    bodies = {"/api/v1/models": {"name": "other", "display_name": "Other"}, "/api/v1/models/ich-ct/versions": VERSION}
    kwargs = {"json": bodies.get(path, {})} if method == "post" else {}
    call = getattr(client, method)
    assert call(path, **kwargs).status_code == 401
    assert call(path, headers=auth("rmk_not-a-key"), **kwargs).status_code == 401
    for role, key in keys.items():
        status = call(path, headers=auth(key), **kwargs).status_code
        if role in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)
