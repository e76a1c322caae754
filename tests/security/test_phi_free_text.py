"""Free text that looks like PHI is refused before anything is stored (decision 0403).

Change-request reasons, decision comments, alert notes, activation reasons and a model's
intended use all land in the append-only audit trail, where they could never be purged.
Each leak of the corpus is refused with 422 on each of them, the message naming the record and
field and not quoting the text, and nothing of the request is stored.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts_service
from monitor.audit.models import AuditEvent
from monitor.config import Settings
from monitor.errors import Invalid
from monitor.ingest import phi
from monitor.registry.models import ChangeRequest, Signature
from tests.alerts.conftest import finding, seed
from tests.factories import PASSWORD, auth, make_model, make_user, make_version
from tests.security.phi_corpus import TEXT_LEAKS, TEXT_LEGITIMATE

ROLLBACK = {"model": "ich-ct", "kind": "rollback", "target_version": "1.0.0"}
LEAK_IDS = [f"{i}" for i in range(len(TEXT_LEAKS))]


def _events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _refused(answer, text: str, field: str) -> None:  # type: ignore[no-untyped-def]
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert field in message and "radmon stores no direct identifiers" in message
    assert text not in answer.text


@pytest.fixture
def people(session: Session) -> dict[str, str]:
    """ich-ct with 1.0.0 and 2.0.0 (live); keys for qa, an approver and an admin."""
    make_model(session)
    make_version(session, version="1.0.0")
    make_version(session, version="2.0.0", activate=True)
    return {role: make_user(session, role=role, username=role)[1] for role in ("qa", "approver", "admin")}


@pytest.mark.parametrize("text", TEXT_LEAKS, ids=LEAK_IDS)
def test_a_change_request_reason_with_phi_is_refused(
    client: TestClient, session: Session, people: dict[str, str], text: str
) -> None:
    before = _events(session)

    answer = client.post("/api/v1/change-requests", json={**ROLLBACK, "reason": text}, headers=auth(people["qa"]))

    _refused(answer, text, "reason")
    assert session.scalar(select(func.count()).select_from(ChangeRequest)) == 0 and _events(session) == before


@pytest.mark.parametrize("text", TEXT_LEAKS, ids=LEAK_IDS)
def test_a_decision_comment_with_phi_is_refused(
    client: TestClient, session: Session, people: dict[str, str], text: str
) -> None:
    filed = client.post("/api/v1/change-requests", json={**ROLLBACK, "reason": "drift"}, headers=auth(people["qa"]))
    assert filed.status_code == 201, filed.text
    before = _events(session)
    decision = {"decision": "approve", "meaning": "approved", "password": PASSWORD, "comment": text}

    answer = client.post(
        f"/api/v1/change-requests/{filed.json()['id']}/decision", json=decision, headers=auth(people["approver"])
    )

    _refused(answer, text, "comment")
    assert session.scalar(select(func.count()).select_from(Signature)) == 0 and _events(session) == before


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
@pytest.mark.parametrize("text", TEXT_LEAKS, ids=LEAK_IDS)
def test_an_alert_note_with_phi_is_refused(
    client: TestClient, session: Session, settings: Settings, text: str, action: str
) -> None:
    seed(session)
    [alert] = alerts_service.process_findings(session=session, findings=[finding()], settings=settings)
    _, key = make_user(session, role="qa")
    before = _events(session)

    answer = client.post(f"/api/v1/alerts/{alert.id}/{action}", json={"note": text}, headers=auth(key))

    _refused(answer, text, "note")
    assert _events(session) == before
    assert client.get(f"/api/v1/alerts/{alert.id}", headers=auth(key)).json()["status"] == "open"


@pytest.mark.parametrize("text", TEXT_LEAKS, ids=LEAK_IDS)
def test_an_activation_reason_an_intended_use_and_training_data_with_phi_are_refused(
    client: TestClient, session: Session, text: str
) -> None:
    _, admin = make_user(session, role="admin")
    model = {"name": "pe-ct", "display_name": "PE triage", "intended_use": text}

    _refused(client.post("/api/v1/models", json=model, headers=auth(admin)), text, "intended_use")
    make_model(session, name="pe-ct")
    make_version(session, model="pe-ct", version="1.0.0")
    answer = client.post("/api/v1/models/pe-ct/versions/1.0.0/activate", json={"reason": text}, headers=auth(admin))
    _refused(answer, text, "reason")
    version = {"version": "1.1.0", "artifact_uri": "s3://models/pe-ct/1.1.0", "artifact_sha256": "0" * 64}
    answer = client.post("/api/v1/models/pe-ct/versions", json={**version, "training_data": text}, headers=auth(admin))
    _refused(answer, text, "training_data")


@pytest.mark.parametrize("text", TEXT_LEGITIMATE, ids=[f"{i}" for i in range(len(TEXT_LEGITIMATE))])
def test_everyday_notes_and_reasons_pass(text: str) -> None:
    phi.check_free_text(field="note", value=text)


def test_an_everyday_note_is_stored(client: TestClient, session: Session, settings: Settings) -> None:
    seed(session)
    [alert] = alerts_service.process_findings(session=session, findings=[finding()], settings=settings)
    _, key = make_user(session, role="qa")
    note = TEXT_LEGITIMATE[0]

    answer = client.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": note}, headers=auth(key))

    assert answer.status_code == 200, answer.text
    assert answer.json()["history"][-1]["note"] == note


def test_the_refusal_names_record_field_and_kind_but_not_the_text() -> None:
    with pytest.raises(Invalid) as refused:
        phi.check_free_text(field="comment", value="pt DOE^JOHN", record="decision on change request #3")

    assert refused.value.message.startswith(
        "decision on change request #3: comment looks like it holds a DICOM person name (FAMILY^GIVEN)"
    )
    assert "DOE" not in refused.value.message
