"""The policy's allow-list at ingestion (decision 0403): only declared features are stored."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from monitor.ingest.models import Inference
from monitor.registry.models import Model
from monitor.simulate import create_simulation, default_policy
from tests.factories import auth
from tests.ingest.conftest import inference

URL = "/api/v1/inferences"
DECLARED = {
    "features": [
        {"name": "kvp", "type": "numeric"},
        {"name": "slice_thickness", "type": "numeric", "min": 0.1, "max": 10},
        {"name": "manufacturer", "type": "categorical"},
        {"name": "view", "type": "categorical", "values": ["PA", "AP", "LAT"]},
    ],
    "segments": ["site", "manufacturer"],
}


def _policy(session: Session, **changes: Any) -> None:
    body = {**DECLARED, **changes}
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(body)
    )


def _stored(session: Session) -> list[dict[str, Any]]:
    return [
        f if isinstance(f, dict) else orjson.loads(f)
        for f in session.execute(select(Inference.features).order_by(Inference.id)).scalars()
    ]


def _post(client: TestClient, key: str, *records: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(URL, json={"records": list(records)}, headers=auth(key))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_an_undeclared_feature_is_dropped_and_named_and_the_record_kept(
    client: TestClient, session: Session, ich: Model, ingest_key: str
) -> None:
    _policy(session)
    features = {"site": "north", "manufacturer": "SIEMENS", "kvp": 120, "new_field": "x", "gantry_tilt": 0}

    body = _post(client, ingest_key, inference(0, features=features))

    assert body["accepted"] == 1 and body["rejected"] == []
    assert body["dropped"] == [{"index": 0, "inference_id": "inf-00000", "features": ["new_field", "gantry_tilt"]}]
    assert _stored(session) == [{"site": "north", "manufacturer": "SIEMENS", "kvp": 120}]
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "ingest.inferences")).scalar_one()
    assert event.after["dropped_features"] == 2


def test_a_retry_with_the_same_undeclared_feature_is_a_duplicate(
    client: TestClient, session: Session, ich: Model, ingest_key: str
) -> None:
    _policy(session)
    record = inference(0, features={"site": "north", "extra": 1})
    _post(client, ingest_key, record)

    again = _post(client, ingest_key, record)

    assert again["accepted"] == 0 and again["duplicates"] == [{"index": 0, "inference_id": "inf-00000"}]


def test_a_policy_may_reject_undeclared_features_instead(
    client: TestClient, session: Session, ich: Model, ingest_key: str
) -> None:
    _policy(session, undeclared_features="reject")

    body = _post(
        client,
        ingest_key,
        inference(0, features={"site": "north", "extra": 1}),
        inference(1, features={"site": "north"}),
    )

    assert body["accepted"] == 1
    [rejection] = body["rejected"]
    assert rejection["index"] == 0 and rejection["field"] == "features.extra"
    assert "not declared in the model's monitoring policy" in rejection["reason"]


@pytest.mark.parametrize(
    ("features", "field", "says"),
    [
        ({"kvp": True}, "features.kvp", "booleans are not numbers"),
        ({"kvp": "120"}, "features.kvp", "must be a number; got a string"),
        ({"kvp": 1_234_567}, "features.kvp", "outside its plausible range -1e+06 to 1e+06"),
        ({"slice_thickness": 12.5}, "features.slice_thickness", "outside its plausible range 0.1 to 10"),
        ({"view": "OBLIQUE"}, "features.view", "not one of the values the policy declares"),
        ({"manufacturer": "x" * 65}, "features.manufacturer", "at most 64 characters"),
        ({"site": "   "}, "features.site", "must not be blank"),
    ],
)
def test_declared_features_hold_what_the_policy_says(
    client: TestClient, session: Session, ich: Model, ingest_key: str, features: dict[str, Any], field: str, says: str
) -> None:
    _policy(session)

    [rejection] = _post(client, ingest_key, inference(0, features=features))["rejected"]

    assert rejection["field"] == field and says in rejection["reason"]
    assert _stored(session) == []


def test_a_declared_range_admits_large_real_values(
    client: TestClient, session: Session, ich: Model, ingest_key: str
) -> None:
    _policy(session, features=[{"name": "exposure_uas", "type": "numeric", "min": 0, "max": 1e7}])

    assert _post(client, ingest_key, inference(0, features={"exposure_uas": 2_500_000}))["accepted"] == 1


def test_without_declared_features_everything_is_judged_by_shape_and_range(
    client: TestClient, session: Session, ich: Model, ingest_key: str
) -> None:
    body = _post(
        client,
        ingest_key,
        inference(0, features={"site": "north", "anything": "CT"}),
        inference(1, features={"ref": 7_654_321}),
    )

    assert body["accepted"] == 1 and "dropped" not in body
    assert body["rejected"][0]["field"] == "features.ref"
    assert _stored(session) == [{"site": "north", "anything": "CT"}]


def test_the_simulators_records_are_all_stored_under_its_policy(
    client: TestClient, session: Session, ich: Model, ingest_key: str
) -> None:
    checks_policy.put_policy(
        session=session, actor=SYSTEM, model_name="ich-ct", policy=MonitoringPolicy.model_validate(default_policy())
    )
    simulation = create_simulation(days=2, per_day=150, seed=3)
    records = simulation.inferences()[:300]

    body = _post(client, ingest_key, *records)

    assert body == {"accepted": len(records), "duplicates": [], "rejected": []}
