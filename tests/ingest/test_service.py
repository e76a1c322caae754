from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM, Actor
from monitor.db import Database
from monitor.errors import Forbidden, TooLarge
from monitor.ingest import service
from monitor.ingest.models import Inference, Outcome
from monitor.ingest.pseudonym import pseudonymize
from monitor.registry.models import Model
from tests.factories import make_model, make_version
from tests.ingest.conftest import PSEUDONYM_KEY, inference, outcome

INGEST = Actor(username="ich-service", role="ingest")


def post(session: Session, records: list[Any], **kwargs: Any) -> dict[str, Any]:
    return service.ingest_inferences(
        session=session, actor=INGEST, records=records, pseudonym_key=PSEUDONYM_KEY, **kwargs
    ).as_dict()


def post_outcomes(session: Session, records: list[Any]) -> dict[str, Any]:
    return service.ingest_outcomes(
        session=session, actor=INGEST, records=records, pseudonym_key=PSEUDONYM_KEY
    ).as_dict()


def stored(session: Session) -> dict[str, Inference]:
    return {row.inference_id: row for row in session.execute(select(Inference)).scalars()}


def reasons(answer: dict[str, Any]) -> dict[int, tuple[str, str]]:
    return {item["index"]: (item["field"], item["reason"]) for item in answer["rejected"]}


# ---------------------------------------------------------------------------- inferences


def test_valid_batch_is_stored_with_pseudonymized_study_keys(session: Session, ich: Model) -> None:
    answer = post(session, [inference(0), inference(1, occurred_at="2026-11-02T09:14:05+01:00", latency_ms=None)])

    assert answer == {"accepted": 2, "duplicates": [], "rejected": []}
    rows = stored(session)
    first = rows["inf-00000"]
    assert first.study_key == pseudonymize("ACC00000000", key=PSEUDONYM_KEY)
    assert first.features["manufacturer"] == "GE MEDICAL SYSTEMS" and first.features["kvp"] == 120
    assert (first.score, first.prediction, first.latency_ms) == (0.87, 1, 412.0)
    assert rows["inf-00001"].occurred_at == datetime(2026, 11, 2, 8, 14, 5, tzinfo=UTC)  # normalized to UTC
    assert rows["inf-00001"].latency_ms is None
    assert len(first.content_hash) == 64


def test_a_retried_batch_answers_duplicates_and_stores_nothing_twice(session: Session, ich: Model) -> None:
    batch = [inference(i) for i in range(3)]
    post(session, batch)

    again = post(session, batch)

    assert again["accepted"] == 0 and again["rejected"] == []
    assert again["duplicates"] == [{"index": i, "inference_id": f"inf-{i:05d}"} for i in range(3)]
    assert session.scalar(select(Inference.id).where(Inference.inference_id == "inf-00002")) is not None
    assert len(stored(session)) == 3


def test_content_is_compared_canonically(session: Session, ich: Model) -> None:
    post(session, [inference(0)])
    same = inference(
        0, occurred_at="2026-11-02T09:14:05.000+01:00", features=dict(reversed(inference(0)["features"].items()))
    )

    assert post(session, [same])["duplicates"] == [{"index": 0, "inference_id": "inf-00000"}]


def test_same_id_with_different_content_is_rejected_and_the_stored_record_kept(session: Session, ich: Model) -> None:
    post(session, [inference(0)])

    answer = post(session, [inference(0, score=0.12, prediction=0)])

    assert answer["accepted"] == 0 and answer["duplicates"] == []
    [rejection] = answer["rejected"]
    assert rejection["index"] == 0 and rejection["inference_id"] == "inf-00000" and rejection["field"] == "inference_id"
    assert "conflicts with the stored record" in rejection["reason"]
    assert stored(session)["inf-00000"].score == 0.87


def test_duplicate_ids_inside_one_batch(session: Session, ich: Model) -> None:
    answer = post(session, [inference(0), inference(0), inference(0, score=0.5), inference(1)])

    assert answer["accepted"] == 2
    assert answer["duplicates"] == [{"index": 1, "inference_id": "inf-00000"}]
    assert reasons(answer)[2][0] == "inference_id"
    assert "appears earlier in this batch (record 0) with different content" in reasons(answer)[2][1]
    assert stored(session)["inf-00000"].score == 0.87


def test_an_inference_id_is_unique_per_model_not_globally(session: Session, ich: Model) -> None:
    make_model(session, name="ptx-cxr", display_name="Pneumothorax")
    make_version(session, model="ptx-cxr", version="1.0.0")

    answer = post(session, [inference(0), inference(0, model="ptx-cxr", version="1.0.0")])

    assert answer["accepted"] == 2


def test_unknown_model_or_version_is_rejected_and_never_created(session: Session, ich: Model) -> None:
    answer = post(session, [inference(0, model="nope"), inference(1, version="9.9"), inference(2)])

    assert answer["accepted"] == 1
    assert reasons(answer)[0] == ("model", reasons(answer)[0][1])
    assert reasons(answer)[0][1].startswith("unknown model 'nope'")
    assert reasons(answer)[1] == ("version", "model 'ich-ct' has no version '9.9'")
    assert session.scalar(select(Model.id).where(Model.name == "nope")) is None
    assert set(stored(session)) == {"inf-00002"}


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"score": 1.7}, "score", "score must be between 0 and 1 for a binary model; got 1.7"),
        ({"score": "high"}, "score", "score must be a number; got 'high'"),
        ({"score": None}, "score", "score is required"),
        ({"prediction": 2}, "prediction", "prediction must be 0 or 1 for a binary model; got 2"),
        ({"occurred_at": "2026-11-02T08:14:05"}, "occurred_at", "occurred_at must include a timezone"),
        ({"occurred_at": "last tuesday"}, "occurred_at", "occurred_at must be an ISO 8601 date-time with a timezone"),
        ({"occurred_at": "2099-01-01T00:00:00Z"}, "occurred_at", "occurred_at is more than a day in the future"),
        ({"inference_id": ""}, "inference_id", "inference_id must be a string of 1 to 128 printable characters"),
        ({"inference_id": "x" * 129}, "inference_id", "inference_id must be a string of 1 to 128 printable characters"),
        ({"inference_id": 17}, "inference_id", "inference_id must be a string"),
        ({"inference_id": "inf\x00-1"}, "inference_id", "printable characters"),  # never reaches the database
        ({"model": "ich-ct\x00"}, "model", "model must be a string of 1 to 128 printable characters"),
        ({"latency_ms": -3}, "latency_ms", "latency_ms must not be negative"),
        ({"study_key": ""}, "study_key", "study_key must be a non-empty string"),
        ({"features": [1, 2]}, "features", "features must be an object"),
        (
            {"features": {"roi": {"x": 1}}},
            "features.roi",
            "features.roi must be a number, string, boolean, null or a flat list",
        ),
        ({"features": {"site": "a\x00b"}}, "features.site", "features.site must be a short categorical value"),
        ({"features": {"findings": "x" * 300}}, "features.findings", "free text is not stored"),
        ({"features": {"PatientName": "DOE^JOHN"}}, "features.PatientName", "looks like an identifier (patient name)"),
        ({"features": {"contact": "jane.doe@example.org"}}, "features.contact", "looks like an email address"),
        ({"label": 1}, "label", "unknown field(s) 'label'"),
    ],
)
def test_each_bad_record_gets_a_reason_naming_its_field(
    session: Session, ich: Model, overrides: dict[str, Any], field: str, reason: str
) -> None:
    answer = post(session, [inference(0, **overrides), inference(1)])

    assert answer["accepted"] == 1
    [rejection] = answer["rejected"]
    assert rejection["index"] == 0 and rejection["field"] == field
    assert reason in rejection["reason"], rejection["reason"]
    assert set(stored(session)) == {"inf-00001"}


def test_missing_fields_and_non_objects_are_rejected(session: Session, ich: Model) -> None:
    without_model = inference(0)
    del without_model["model"]
    answer = post(session, [without_model, "not a record", None, inference(3)])

    assert reasons(answer) == {
        0: ("model", "model is required"),
        1: ("record", "each record must be a JSON object; got a string"),
        2: ("record", "each record must be a JSON object; got null"),
    }
    assert answer["accepted"] == 1


def test_phi_and_bad_records_never_keep_good_records_out(session: Session, ich: Model) -> None:
    batch = [
        inference(0),
        inference(1, features={"site": "north", "patient_mrn": "12345678"}),
        inference(2, score=1.7),
        inference(3, occurred_at="2026-11-02 08:14:05"),
        inference(4, features={"site": "north", "referrer": "(555) 123-4567"}),
        inference(5),
    ]

    answer = post(session, batch)

    assert answer["accepted"] == 2
    assert sorted(reasons(answer)) == [1, 2, 3, 4]
    assert reasons(answer)[1][0] == "features.patient_mrn"
    assert "12345678" not in reasons(answer)[1][1]  # a PHI reason never repeats the value
    assert "555" not in reasons(answer)[4][1]
    assert set(stored(session)) == {"inf-00000", "inf-00005"}


def test_raw_study_keys_are_never_stored(session: Session, ich: Model) -> None:
    post(session, [inference(i, study_key=f"RAW-ACCESSION-{i}") for i in range(3)])
    post_outcomes(session, [outcome(None, study_key="RAW-ACCESSION-1")])

    dumped = json.dumps(
        [
            [str(value) for value in row]
            for table in ("inferences", "outcomes", "audit_events")
            for row in session.execute(text(f"SELECT * FROM {table}"))
        ]
    )
    assert "RAW-ACCESSION" not in dumped
    assert pseudonymize("RAW-ACCESSION-1", key=PSEUDONYM_KEY) in dumped


def test_one_audit_event_per_batch_with_counts(session: Session, ich: Model) -> None:
    post(session, [inference(0), inference(1)])
    post(session, [inference(1), inference(2, score=4.0), inference(3)])

    events = (
        session.execute(select(AuditEvent).where(AuditEvent.action == "ingest.inferences").order_by(AuditEvent.seq))
        .scalars()
        .all()
    )
    assert [(e.entity, e.entity_id, e.actor) for e in events] == [("model", "ich-ct", "ich-service")] * 2
    assert events[1].after["accepted"] == 1 and events[1].after["duplicates"] == 1 and events[1].after["rejected"] == 1
    assert events[1].after["models"] == {"ich-ct": {"accepted": 1, "duplicates": 1, "rejected": 1}}


def test_records_metric_counts_each_result(session: Session, ich: Model) -> None:
    def count(result: str) -> float:
        return REGISTRY.get_sample_value("radmon_ingest_records_total", {"kind": "inferences", "result": result}) or 0.0

    before = {result: count(result) for result in ("accepted", "duplicate", "rejected")}
    post(session, [inference(0), inference(0), inference(1, score=9)])

    assert {result: count(result) - before[result] for result in before} == {
        "accepted": 1,
        "duplicate": 1,
        "rejected": 1,
    }


def test_batch_limit_and_permission(session: Session, ich: Model) -> None:
    with pytest.raises(TooLarge, match="at most 3 records; got 4"):
        post(session, [inference(i) for i in range(4)], max_records=3)
    with pytest.raises(Forbidden):
        service.ingest_inferences(
            session=session,
            actor=Actor(username="v", role="viewer"),
            records=[inference(0)],
            pseudonym_key=PSEUDONYM_KEY,
        )
    assert stored(session) == {}


def test_bulk_batch_mixing_new_retried_and_conflicting_records(session: Session, ich: Model) -> None:
    """Large enough for PostgreSQL's COPY path; the same answer on SQLite's multi-row INSERT."""
    post(session, [inference(i) for i in range(300)])
    batch = [inference(i) for i in range(200)]  # retried
    batch += [inference(i, score=0.01) for i in range(200, 300)]  # same ids, new content
    batch += [inference(i) for i in range(300, 700)]  # new
    batch += [inference(9999, score=2.0)]

    answer = post(session, batch)

    assert answer["accepted"] == 400
    assert [d["index"] for d in answer["duplicates"]] == list(range(200))
    assert [r["index"] for r in answer["rejected"]] == [*range(200, 300), 700]
    assert len(stored(session)) == 700
    assert stored(session)["inf-00650"].study_key == pseudonymize("ACC00000650", key=PSEUDONYM_KEY)


def test_ids_stored_by_a_concurrent_request_after_the_check_are_classified(
    session: Session, ich: Model, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """PostgreSQL's COPY path looks stored ids up first; a retry committed just after that lookup
    makes the COPY fail, and the savepoint plus ON CONFLICT still classify every record."""
    if backend != "postgresql":
        pytest.skip("SQLite has no COPY path: its INSERT ... ON CONFLICT decides from the start")
    post(session, [inference(i) for i in range(250)])
    real = service._stored_hashes
    calls = []

    def blind_first_lookup(session_: Session, keys: Any) -> dict[Any, str]:
        calls.append(1)
        return {} if len(calls) == 1 else real(session_, keys)

    monkeypatch.setattr(service, "_stored_hashes", blind_first_lookup)
    batch = [inference(i) for i in range(240)] + [inference(240, score=0.3)] + [inference(i) for i in range(250, 500)]

    answer = post(session, batch)

    assert answer["accepted"] == 250 and len(answer["duplicates"]) == 240
    assert [r["index"] for r in answer["rejected"]] == [240]
    assert len(stored(session)) == 500


def test_concurrent_retries_of_one_batch_store_it_once(fresh_database: Database) -> None:
    """Two requests carrying the same batch at once (a client retrying a lost answer)."""
    with fresh_database.transaction() as setup:
        make_model(setup)
        make_version(setup, version="2.1.0")
    batch = [inference(i) for i in range(300)]
    first_inserted = threading.Event()
    answers: dict[str, dict[str, Any]] = {}

    def first() -> None:
        with fresh_database.transaction() as session:
            answers["first"] = post(session, batch)
            first_inserted.set()
            threading.Event().wait(0.5)  # still uncommitted while the second request arrives

    def second() -> None:
        first_inserted.wait(10)
        with fresh_database.transaction() as session:
            answers["second"] = post(session, batch)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert answers["first"]["accepted"] == 300
    assert answers["second"]["accepted"] == 0 and len(answers["second"]["duplicates"]) == 300
    with fresh_database.transaction() as session:
        assert session.scalar(select(text("count(*)")).select_from(Inference)) == 300


# ---------------------------------------------------------------------------- outcomes


def outcomes_of(session: Session) -> list[Outcome]:
    return list(session.execute(select(Outcome).order_by(Outcome.id)).scalars())


def effective(session: Session, ich: Model, version: str = "2.1.0") -> dict[str, int]:
    version_id = service.registry_service.version_ids(session=session, model_id=ich.id)[version]
    rows = service.effective_outcomes(
        session=session,
        model_id=ich.id,
        version_id=version_id,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 11, 8, tzinfo=UTC),
    )
    return {row.inference_id: row.label for row in rows}


def test_outcomes_by_inference_id_and_by_study_key(session: Session, ich: Model) -> None:
    post(session, [inference(0), inference(1, study_key="ACC-SHARED"), inference(2, study_key="ACC-SHARED")])

    answer = post_outcomes(
        session,
        [
            outcome("inf-00000", label=0),
            outcome(None, study_key="ACC-SHARED", source="pathology"),
            outcome("inf-99999"),
            outcome(None, study_key="ACC-UNKNOWN"),
        ],
    )

    assert answer["accepted"] == 2
    assert reasons(answer)[2] == (
        "inference_id",
        "model 'ich-ct' has no inference 'inf-99999'; post the inference before its outcome",
    )
    assert reasons(answer)[3][0] == "study_key" and "ACC-UNKNOWN" not in reasons(answer)[3][1]
    assert effective(session, ich) == {"inf-00000": 0, "inf-00001": 1, "inf-00002": 1}


def test_outcome_record_checks(session: Session, ich: Model) -> None:
    post(session, [inference(0)])
    answer = post_outcomes(
        session,
        [
            outcome("inf-00000", study_key="ACC00000000"),
            outcome(None),
            outcome("inf-00000", label=2),
            outcome("inf-00000", source="gut_feeling"),
            outcome("inf-00000", confirmed_at="2026-11-09T10:00:00"),
            outcome("inf-00000", model="nope"),
        ],
    )

    assert answer["accepted"] == 0
    found = reasons(answer)
    assert "give exactly one of inference_id" in found[0][1] and "got both" in found[0][1]
    assert "got neither" in found[1][1]
    assert found[2] == ("label", "label must be 0 or 1; got 2")
    assert (
        found[3][0] == "source" and "pathology, follow_up, consensus_read, report_nlp, final_read, other" in found[3][1]
    )
    assert found[4][0] == "confirmed_at" and "must include a timezone" in found[4][1]
    assert found[5][0] == "model" and found[5][1].startswith("unknown model 'nope'")


def test_exact_repeat_of_an_outcome_is_a_duplicate(session: Session, ich: Model) -> None:
    post(session, [inference(0)])
    post_outcomes(session, [outcome()])

    answer = post_outcomes(session, [outcome(), outcome()])

    assert answer["accepted"] == 0
    assert answer["duplicates"] == [
        {"index": 0, "inference_id": "inf-00000"},
        {"index": 1, "inference_id": "inf-00000"},
    ]
    assert len(outcomes_of(session)) == 1


def test_a_later_outcome_supersedes_and_history_is_kept(session: Session, ich: Model) -> None:
    post(session, [inference(0)])
    post_outcomes(session, [outcome(label=0, source="report_nlp", confirmed_at="2026-11-05T00:00:00Z")])

    answer = post_outcomes(session, [outcome(label=1, source="pathology", confirmed_at="2026-11-12T00:00:00Z")])

    assert answer["accepted"] == 1
    old, new = outcomes_of(session)
    assert (old.label, old.superseded_by) == (0, new.id) and old.superseded_at is not None
    assert (new.label, new.superseded_at) == (1, None)
    assert effective(session, ich) == {"inf-00000": 1}


def test_an_older_outcome_arriving_late_is_stored_already_superseded(session: Session, ich: Model) -> None:
    post(session, [inference(0)])
    post_outcomes(session, [outcome(label=1, confirmed_at="2026-11-12T00:00:00Z")])

    answer = post_outcomes(session, [outcome(label=0, source="report_nlp", confirmed_at="2026-11-05T00:00:00Z")])

    assert answer["accepted"] == 1
    current, late = outcomes_of(session)
    assert current.superseded_at is None
    assert late.superseded_by == current.id and late.superseded_at is not None
    assert effective(session, ich) == {"inf-00000": 1}


def test_outcomes_for_one_target_in_one_batch_leave_one_current(session: Session, ich: Model) -> None:
    post(session, [inference(0)])

    post_outcomes(
        session,
        [
            outcome(label=1, confirmed_at="2026-11-20T00:00:00Z", source="final_read"),
            outcome(label=0, confirmed_at="2026-11-06T00:00:00Z"),
            outcome(label=0, confirmed_at="2026-11-10T00:00:00Z", source="follow_up"),
        ],
    )

    rows = outcomes_of(session)
    assert [row.superseded_at is None for row in rows] == [True, False, False]
    assert {row.superseded_by for row in rows[1:]} == {rows[0].id}
    assert effective(session, ich) == {"inf-00000": 1}


def test_effective_outcomes_window_version_and_precedence(session: Session, ich: Model) -> None:
    post(
        session,
        [
            inference(0, study_key="S1"),
            inference(1, study_key="S1"),
            inference(2, study_key="S2"),
            inference(3, study_key="S3", occurred_at="2026-11-09T00:00:00Z"),  # after the window
            inference(4, study_key="S3", version="2.2.0"),  # other version
            inference(5),  # never labelled
        ],
    )
    post_outcomes(
        session,
        [
            outcome("inf-00000", label=0, confirmed_at="2026-11-05T00:00:00Z"),
            # A later study outcome does not override inf-00000's own outcome.
            outcome(None, study_key="S1", label=1, confirmed_at="2026-11-07T00:00:00Z"),
            outcome(None, study_key="S2", label=0),
            outcome(None, study_key="S3", label=1),
        ],
    )

    assert effective(session, ich) == {"inf-00000": 0, "inf-00001": 1, "inf-00002": 0}
    assert effective(session, ich, version="2.2.0") == {"inf-00004": 1}
    query = service.effective_outcomes_query(
        model_id=ich.id, version_id=1, start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime.now(UTC) + timedelta(days=1)
    )
    assert [column.name for column in query.selected_columns] == [
        "inference_pk",
        "inference_id",
        "label",
        "source",
        "confirmed_at",
    ]


def test_one_audit_event_per_outcome_batch(session: Session, ich: Model) -> None:
    post(session, [inference(0)])
    post_outcomes(session, [outcome(), outcome("inf-404")])

    [event] = session.execute(select(AuditEvent).where(AuditEvent.action == "ingest.outcomes")).scalars().all()
    assert (event.entity, event.entity_id) == ("model", "ich-ct")
    assert (event.after["accepted"], event.after["duplicates"], event.after["rejected"]) == (1, 0, 1)


def test_system_actor_may_ingest(session: Session, ich: Model) -> None:
    answer = service.ingest_inferences(
        session=session, actor=SYSTEM, records=[inference(0)], pseudonym_key=PSEUDONYM_KEY
    )
    assert answer.accepted == 1


def test_concurrent_batches_sharing_ids_in_different_orders_do_not_fail(fresh_database: Database, backend: str) -> None:
    """A holds ids B needs while B holds one A needs next: PostgreSQL picks a deadlock victim,
    whose COPY savepoint is undone and retried as an INSERT in key order; nobody gets an error."""
    if backend != "postgresql":
        pytest.skip("SQLite transactions take the write lock at BEGIN: they cannot interleave")
    with fresh_database.transaction() as setup:
        make_model(setup)
        make_version(setup, version="2.1.0")
    a_holds_first = threading.Event()
    answers: dict[str, Any] = {}

    def a() -> None:
        with fresh_database.transaction() as session:
            answers["a1"] = post(session, [inference(i) for i in range(300)])
            a_holds_first.set()
            threading.Event().wait(0.5)  # B is now waiting for id 0, holding 300..599
            answers["a2"] = post(session, [inference(450)] + [inference(i) for i in range(600, 800)])

    def b() -> None:
        a_holds_first.wait(10)
        with fresh_database.transaction() as session:
            answers["b"] = post(session, [inference(i) for i in range(300, 600)] + [inference(0)])

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert set(answers) == {"a1", "a2", "b"}, answers
    assert answers["a1"]["accepted"] + answers["a2"]["accepted"] + answers["b"]["accepted"] == 800
    assert all(not answer["rejected"] for answer in answers.values())
    with fresh_database.transaction() as session:
        assert session.scalar(select(text("count(*)")).select_from(Inference)) == 800
