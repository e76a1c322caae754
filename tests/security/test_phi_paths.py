"""The PHI gate on every path that stores client features or ids (decision 0403).

Each leak of tests/security/phi_corpus.py is sent through each entry path: inference features
(a model without a policy, a policy declaring the leak's name, a policy not declaring it),
reference uploads (JSON, CSV, Parquet), policy feature and segment names, inference and outcome
ids. Every one must be refused, or dropped before storage, and never quoted back. Every
legitimate value must be accepted.
"""

from __future__ import annotations

import io
import random
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from monitor.ingest import phi
from monitor.ingest.models import Inference
from monitor.ingest.pseudonym import pseudonymize
from monitor.reference.models import ReferenceRow
from monitor.registry.models import Model
from tests.factories import auth, make_user
from tests.ingest.conftest import inference, outcome
from tests.security.phi_corpus import (
    FEATURE_LEAKS,
    ID_LEAKS,
    LEGIT_POLICY,
    POLICY_NAME_LEAKS,
    legitimate_values,
)

LEGITIMATE = legitimate_values()
INFERENCES = "/api/v1/inferences"
REFERENCE = "/api/v1/models/ich-ct/versions/2.1.0/reference"


def _ids(cases: list[tuple[str, Any]]) -> list[str]:
    return [f"{i}-{name}" for i, (name, _) in enumerate(cases)]


def _declarable(name: str) -> bool:
    return phi.name_problem(name) is None


def _spec(name: str, value: Any) -> dict[str, Any]:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {"name": name, "type": "numeric" if numeric else "categorical"}


def _put_policy(session: Session, policy: dict[str, Any]) -> None:
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(policy)
    )


def _stored_features(session: Session) -> list[str]:
    return [str(f) for f in session.execute(select(Inference.features)).scalars()]


def _quoted(value: Any, text: str) -> bool:
    return isinstance(value, str) and len(value) > 3 and value in text


# ---------------------------------------------------------------------------- inferences


@pytest.mark.parametrize("policy", ["none", "declared", "undeclared"])
@pytest.mark.parametrize(("name", "value"), FEATURE_LEAKS, ids=_ids(FEATURE_LEAKS))
def test_a_leak_in_inference_features_is_never_stored(
    client: TestClient, session: Session, ich: Model, ingest_key: str, name: str, value: Any, policy: str
) -> None:
    if policy == "declared":
        if not _declarable(name):
            pytest.skip("a policy cannot declare this name (tested below)")
        _put_policy(session, {"features": [_spec(name, value), {"name": "site", "type": "categorical"}]})
    elif policy == "undeclared":
        _put_policy(session, {"features": [{"name": "site", "type": "categorical"}]})
    record = inference(0, features={"site": "north", name: value})

    answer = client.post(INFERENCES, json={"records": [record]}, headers=auth(ingest_key))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    stored = _stored_features(session)
    if body["rejected"]:
        [rejection] = body["rejected"]
        assert rejection["field"].startswith("features") and not _quoted(value, answer.text)
        assert stored == []
    else:
        # Only a policy that does not declare the name may accept the record, without the feature.
        assert policy == "undeclared", body
        assert body["dropped"] == [{"index": 0, "inference_id": "inf-00000", "features": [name]}]
        assert len(stored) == 1 and name not in stored[0] and "north" in stored[0]


@pytest.mark.parametrize(("field", "value"), ID_LEAKS, ids=[f"{i}-{f}" for i, (f, _) in enumerate(ID_LEAKS)])
def test_ids_that_spell_an_identifier_or_hide_characters_are_refused(
    client: TestClient, session: Session, ich: Model, ingest_key: str, field: str, value: str
) -> None:
    answer = client.post(INFERENCES, json={"records": [inference(0, **{field: value})]}, headers=auth(ingest_key))

    assert answer.status_code == 200
    [rejection] = answer.json()["rejected"]
    assert rejection["field"] == field and value not in answer.text
    assert session.execute(select(Inference.id)).first() is None


@pytest.mark.parametrize(
    "value", [v for f, v in ID_LEAKS if f == "inference_id"], ids=lambda v: repr(v)[:20].replace(" ", "_")
)
def test_outcome_ids_pass_the_same_gate(client: TestClient, ich: Model, ingest_key: str, value: str) -> None:
    answer = client.post("/api/v1/outcomes", json={"records": [outcome(value)]}, headers=auth(ingest_key))

    [rejection] = answer.json()["rejected"]
    assert rejection["field"] == "inference_id" and value not in answer.text


# ---------------------------------------------------------------------------- policy names


@pytest.mark.parametrize("where", ["feature", "segment"])
@pytest.mark.parametrize("name", POLICY_NAME_LEAKS)
def test_a_policy_may_not_declare_an_identifier(
    client: TestClient, session: Session, ich: Model, name: str, where: str
) -> None:
    _, key = make_user(session, role="qa")
    policy: dict[str, Any] = {"features": [{"name": "site", "type": "categorical"}]}
    if where == "feature":
        policy["features"].append({"name": name, "type": "categorical"})
    else:
        policy["segments"] = [name]

    answer = client.put("/api/v1/models/ich-ct/policy", json=policy, headers=auth(key))

    assert answer.status_code == 422, answer.text
    assert "looks like" in answer.text and "radmon stores no direct identifiers" in answer.text


def test_a_declared_vocabulary_may_not_hold_identifiers(client: TestClient, session: Session, ich: Model) -> None:
    _, key = make_user(session, role="qa")
    policy = {"features": [{"name": "referrer", "type": "categorical", "values": ["ED", "DOE^JOHN"]}]}

    answer = client.put("/api/v1/models/ich-ct/policy", json=policy, headers=auth(key))

    assert answer.status_code == 422 and "DICOM person name" in answer.text


# ---------------------------------------------------------------------------- reference uploads


def _reference_rows(n: int = 30) -> list[dict[str, Any]]:
    return [
        {"score": 0.1 + 0.02 * i, "prediction": i % 2, "label": i % 2, "features": {"site": "north", "kvp": 120}}
        for i in range(n)
    ]


def _upload(client: TestClient, key: str, rows: list[dict[str, Any]], form: str) -> Any:
    if form == "json":
        return client.post(REFERENCE, json={"records": rows}, headers=auth(key))
    flat = pd.DataFrame([{**{k: v for k, v in r.items() if k != "features"}, **r["features"]} for r in rows])
    if form == "csv":
        files = {"file": ("reference.csv", flat.to_csv(index=False).encode(), "text/csv")}
    else:
        buffer = io.BytesIO()
        flat.astype({c: str for c in flat.columns if flat[c].dtype == object}).to_parquet(buffer)
        files = {"file": ("reference.parquet", buffer.getvalue(), "application/octet-stream")}
    return client.post(REFERENCE, files=files, headers=auth(key))


@pytest.mark.parametrize("form", ["json", "csv", "parquet"])
@pytest.mark.parametrize(("name", "value"), FEATURE_LEAKS, ids=_ids(FEATURE_LEAKS))
def test_a_leak_in_a_reference_upload_is_refused_and_not_quoted(
    client: TestClient, session: Session, ich: Model, name: str, value: Any, form: str
) -> None:
    if form != "json" and isinstance(value, list):
        pytest.skip("a CSV or Parquet cell holds one value")
    features = [{"name": "site", "type": "categorical"}, {"name": "kvp", "type": "numeric"}]
    if _declarable(name):
        features.append(_spec(name, value))
    _put_policy(session, {"features": features})
    _, key = make_user(session, role="qa")
    rows = _reference_rows()
    if isinstance(value, int) and form == "parquet" and abs(value) > 2**63:
        value = float(value)
    rows[7]["features"][name] = value

    answer = _upload(client, key, rows, form)

    assert answer.status_code == 422, answer.text
    assert not _quoted(value, answer.text)
    assert session.execute(select(ReferenceRow.id)).first() is None


# ---------------------------------------------------------------------------- legitimate values


@pytest.mark.parametrize(("name", "value"), LEGITIMATE, ids=_ids(LEGITIMATE))
def test_legitimate_radiology_metadata_passes_the_gate(name: str, value: Any) -> None:
    gate = phi.gate_for(MonitoringPolicy.model_validate(LEGIT_POLICY))

    assert phi.features_problem({name: value}) is None
    assert gate.apply({name: value}) == ({name: value}, [])
    if not (isinstance(value, (int, float)) and abs(value) > phi.NUMERIC_BOUND):  # beyond the default range
        assert phi.gate_for(MonitoringPolicy()).apply({name: value}) == ({name: value}, [])


def test_the_corpus_is_as_large_as_promised() -> None:
    assert len(FEATURE_LEAKS) + len(ID_LEAKS) + len(POLICY_NAME_LEAKS) >= 60
    assert len(LEGITIMATE) >= 200


def test_every_legitimate_value_is_stored_through_the_api(
    client: TestClient, session: Session, ich: Model, ingest_key: str
) -> None:
    _put_policy(session, LEGIT_POLICY)
    records = [inference(i, features={name: value}) for i, (name, value) in enumerate(LEGITIMATE)]

    answer = client.post(INFERENCES, json={"records": records}, headers=auth(ingest_key))

    assert answer.json() == {"accepted": len(LEGITIMATE), "duplicates": [], "rejected": []}


def test_every_legitimate_value_is_accepted_in_a_reference_upload(
    client: TestClient, session: Session, ich: Model
) -> None:
    _put_policy(session, LEGIT_POLICY)
    _, key = make_user(session, role="qa")
    rows = [
        {
            "score": 0.5,
            "prediction": i % 2,
            "label": i % 2,
            "occurred_at": f"2026-11-{1 + i % 28:02d}T08:{i % 60:02d}:00Z",
            "features": {name: value},
        }
        for i, (name, value) in enumerate(LEGITIMATE)
    ]

    answer = client.post(REFERENCE, json={"records": rows}, headers=auth(key))

    assert answer.status_code == 201, answer.text


def test_pseudonyms_and_hexadecimal_ids_are_never_mistaken_for_identifiers() -> None:
    # Digests hold digit runs that read like dates ("b20220605fc...") or a label and a number
    # ("...4acc335..."): the simulator's ids and the DICOM helper's pseudonyms must all pass.
    rng = random.Random(14)
    digests = [f"{rng.getrandbits(160):040x}" for _ in range(5000)]

    assert [d for d in digests if phi.id_problem(f"inf-{d[:32]}") is not None] == []
    assert [d for d in digests if phi.value_problem(f"sta-{d}") is not None] == []
    assert [d for d in digests if phi.value_problem(pseudonymize(d, key="k", kind="institution"))] == []
