"""Change requests on the versions page: who sees which controls, filing a request, and signing
decisions in the electronic-signature dialog (re-authentication, lockout, quorum, forgeries)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.models import AuditEvent
from monitor.auth.actors import SYSTEM
from monitor.registry import changes
from monitor.registry import service as registry_service
from monitor.registry.models import ChangeRequest, Signature
from monitor.registry.schemas import ChangeRequestCreate
from tests.dashboard.callbacks import call, find, response_of, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.factories import PASSWORD, make_model, make_user, make_version

OPEN = "versions-sign-open"


@pytest.fixture
def deployed(session: Session) -> None:
    """ich-ct: 2.0.0 went live first, then 2.1.0 was promoted outside the dashboard's concern."""
    for role, username, name in [
        ("viewer", "vera", "Vera Viewer"),
        ("qa", "quinn", "Quinn Quality"),
        ("approver", "avery", "Avery Approver"),
        ("approver", "blake", "Blake Approver"),
        ("admin", "ada", "Ada Admin"),
    ]:
        make_user(session, role=role, username=username, full_name=name)
    make_model(session)
    make_version(session, version="2.0.0")
    make_version(session, version="2.1.0", activate=True)


def file_rollback(session: Session, requester: str = "quinn") -> int:
    actor = next(a for a in _actors(session) if a.username == requester)
    created = changes.request_change(
        session=session,
        actor=actor,
        data=ChangeRequestCreate(
            model="ich-ct", kind="rollback", target_version="2.0.0", reason="sensitivity at north below target"
        ),
    )
    return created.id


def _actors(session: Session):  # type: ignore[no-untyped-def]
    from monitor.auth import service as auth_service
    from monitor.auth.models import User

    return [auth_service.actor_for(u) for u in session.execute(select(User)).scalars()]


def open_dialog(client: TestClient, change_request_id: int, decision: str = "approve"):  # type: ignore[no-untyped-def]
    button = {"cr": change_request_id, "decision": decision, "type": OPEN}
    return call(
        client,
        f"{OPEN}.n_clicks",
        {"versions-model-store.data": "ich-ct"},
        pattern={f"{OPEN}.n_clicks": [{"id": button, "property": "n_clicks", "value": 1}]},
        triggered=json.dumps(button, separators=(",", ":"), sort_keys=True) + ".n_clicks",
    )


def sign(
    client: TestClient, change_request_id: int, password: str = PASSWORD, decision: str = "approve", comment: str = ""
):  # type: ignore[no-untyped-def]
    return call(
        client,
        "versions-sign-submit.n_clicks",
        {
            "versions-sign-submit.n_clicks": 1,
            "versions-sign-store.data": {"change_request_id": change_request_id, "decision": decision},
            "versions-sign-password.value": password,
            "versions-sign-comment.value": comment,
            "versions-model-store.data": "ich-ct",
        },
    )


def active(session: Session) -> str:
    version, _ = registry_service.active_version(session=session, actor=SYSTEM, model_name="ich-ct")
    return version.version


def actions(session: Session, prefix: str) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq)
        ).scalars()
    )


# -- who sees what ------------------------------------------------------------------------------


def test_viewer_sees_requests_and_signatures_but_no_action_controls(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")
    response_of(sign(dashboard_client, change_request_id, comment="north site data reviewed"))
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/versions", "?model=ich-ct")

    assert f"versions-cr-{change_request_id}" in page and "sensitivity at north below target" in page
    assert "Avery Approver" in page and "1 of 2 approvals" in page and "north site data reviewed" in page
    assert "I approve this rollback of ich-ct from version 2.1.0 to version 2.0.0" in page
    for control in (
        "versions-request-open",
        OPEN,
        "versions-sign-modal",
        "versions-request-modal",
        "versions-activate-button",
    ):
        assert control not in page


def test_qa_may_request_but_not_sign_and_approvers_the_reverse(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    sign_in(dashboard_client, "quinn")
    qa_page = render_page(dashboard_client, "/versions", "?model=ich-ct")
    file_rollback(session)
    sign_in(dashboard_client, "avery")
    approver_page = render_page(dashboard_client, "/versions", "?model=ich-ct")

    assert "versions-request-open" in qa_page and "versions-sign-modal" not in qa_page
    assert OPEN in approver_page and "versions-sign-modal" in approver_page
    assert "versions-request-open" not in approver_page


def test_a_pending_request_disables_a_second_one(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "quinn")

    page = render_page(dashboard_client, "/versions", "?model=ich-ct")

    assert f"#{change_request_id} is pending" in page


def test_the_alert_page_link_opens_a_prefilled_rollback_form(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    sign_in(dashboard_client, "quinn")

    page = render_page(dashboard_client, "/versions", "?model=ich-ct&request=rollback&alert=7")

    assert find(page, "versions-request-modal")["is_open"] is True
    assert find(page, "versions-request-kind")["value"] == "rollback"
    assert find(page, "versions-request-target")["value"] == "2.0.0"
    assert find(page, "versions-request-alert")["value"] == 7


# -- filing a request ---------------------------------------------------------------------------


def request_values(**overrides: object) -> dict[str, object]:
    values = {
        "versions-request-submit.n_clicks": 1,
        "versions-model-store.data": "ich-ct",
        "versions-request-kind.value": "rollback",
        "versions-request-target.value": "2.0.0",
        "versions-request-reason.value": "subgroup breach at site north",
        "versions-request-alert.value": None,
    }
    return {**values, **overrides}


def test_qa_files_a_rollback_and_the_page_lists_it(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    sign_in(dashboard_client, "quinn")

    result = response_of(call(dashboard_client, "versions-request-submit.n_clicks", request_values()))

    [filed] = session.execute(select(ChangeRequest)).scalars().all()
    assert (filed.kind, filed.requested_by, filed.reason) == ("rollback", "quinn", "subgroup breach at site north")
    assert result["versions-request-modal"]["is_open"] is False
    assert f"Change request #{filed.id}" in text_of(result["versions-flash"])
    assert f"versions-cr-{filed.id}" in text_of(result["versions-body"])
    assert [e.actor for e in actions(session, "change_request.create")] == ["quinn"]


def test_a_request_without_reason_is_explained_in_the_form(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    sign_in(dashboard_client, "quinn")

    result = response_of(
        call(
            dashboard_client,
            "versions-request-submit.n_clicks",
            request_values(**{"versions-request-reason.value": "  "}),
        )
    )

    assert "a change request needs a reason" in text_of(result["versions-request-feedback"])
    assert session.execute(select(ChangeRequest)).first() is None


def test_a_request_in_the_wrong_direction_shows_the_service_reason(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    sign_in(dashboard_client, "quinn")

    result = response_of(
        call(
            dashboard_client,
            "versions-request-submit.n_clicks",
            request_values(**{"versions-request-kind.value": "promotion"}),
        )
    )

    assert "request a rollback instead" in text_of(result["versions-request-feedback"])


@pytest.mark.parametrize("username", ["vera", "avery"])
def test_forged_request_callbacks_are_refused(
    dashboard_client: TestClient, session: Session, deployed: None, username: str
) -> None:
    sign_in(dashboard_client, username)

    result = call(dashboard_client, "versions-request-submit.n_clicks", request_values())

    assert result.status_code == 403
    assert session.execute(select(ChangeRequest)).first() is None


# -- signing ------------------------------------------------------------------------------------


def test_the_dialog_shows_the_request_and_the_meaning_statement(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")

    result = response_of(open_dialog(dashboard_client, change_request_id, "reject"))

    assert result["versions-sign-modal"]["is_open"] is True
    assert (
        result["versions-sign-meaning"]["children"]
        == "I reject this rollback of ich-ct from version 2.1.0 to version 2.0.0"
    )
    content = text_of(result["versions-sign-content"])
    assert "sensitivity at north below target" in content and "abababababababab" in content
    assert result["versions-sign-submit"] == {"children": "Sign and reject", "color": "danger"}
    assert result["versions-sign-store"]["data"] == {"change_request_id": change_request_id, "decision": "reject"}
    assert "Avery Approver" in text_of(result["versions-sign-signer"])


def test_two_approvers_sign_and_the_live_version_changes(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")
    first = response_of(sign(dashboard_client, change_request_id))
    assert "1 of 2" in text_of(first["versions-flash"]) and active(session) == "2.1.0"

    sign_in(dashboard_client, "blake")
    second = response_of(sign(dashboard_client, change_request_id, comment="agree"))

    assert active(session) == "2.0.0"
    assert "version 2.0.0 of ich-ct is live now" in text_of(second["versions-flash"])
    assert second["versions-sign-modal"]["is_open"] is False
    body = text_of(second["versions-body"])
    assert '"Active version"' in body and "executed" in body
    signatures = session.execute(select(Signature).order_by(Signature.id)).scalars().all()
    assert [(s.username, s.meaning) for s in signatures] == [
        ("avery", "I approve this rollback of ich-ct from version 2.1.0 to version 2.0.0"),
        ("blake", "I approve this rollback of ich-ct from version 2.1.0 to version 2.0.0"),
    ]
    assert [e.action for e in actions(session, "change_request.")][-1] == "change_request.execute"


def test_a_wrong_password_signs_nothing_says_why_and_is_recorded(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")

    result = response_of(sign(dashboard_client, change_request_id, password="not my password"))

    feedback = text_of(result["versions-sign-feedback"])
    assert "the password does not match" in feedback and "4 more wrong passwords lock signing" in feedback
    assert result["versions-sign-password"]["value"] == ""
    assert "versions-sign-modal" not in result  # the dialog stays open
    assert session.execute(select(Signature)).first() is None
    assert [e.actor for e in actions(session, "signature.failed")] == ["avery"]


def test_the_fifth_wrong_password_locks_signing_and_says_until_when(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")
    for _ in range(4):
        response_of(sign(dashboard_client, change_request_id, password="not my password"))

    locked = text_of(
        response_of(sign(dashboard_client, change_request_id, password="not my password"))["versions-sign-feedback"]
    )
    still = text_of(response_of(sign(dashboard_client, change_request_id, password=PASSWORD))["versions-sign-feedback"])

    assert "Signing locked" in locked and "signing is locked for 'avery' until" in locked and "UTC" in locked
    assert "Signing locked" in still  # even the right password waits for the lockout to end
    assert session.execute(select(Signature)).first() is None


def test_an_empty_password_is_not_a_failed_signature(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")

    result = response_of(sign(dashboard_client, change_request_id, password=""))

    assert "Enter your password to sign." in text_of(result["versions-sign-feedback"])
    assert actions(session, "signature.failed") == []


def test_the_requester_cannot_approve_their_own_request(
    dashboard_client: TestClient, session: Session, deployed: None
) -> None:
    change_request_id = file_rollback(session, requester="ada")
    sign_in(dashboard_client, "ada")

    page = render_page(dashboard_client, "/versions", "?model=ich-ct")
    result = response_of(sign(dashboard_client, change_request_id))

    assert "You filed this request." in page
    assert "under the two-person rule someone else must approve or reject it" in text_of(
        result["versions-sign-feedback"]
    )
    assert session.execute(select(Signature)).first() is None


def test_one_rejection_rejects(dashboard_client: TestClient, session: Session, deployed: None) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")

    result = response_of(sign(dashboard_client, change_request_id, decision="reject", comment="evidence too thin"))

    assert "You rejected change request" in text_of(result["versions-flash"])
    assert session.get(ChangeRequest, change_request_id).status == "rejected"  # type: ignore[union-attr]
    assert active(session) == "2.1.0"


@pytest.mark.parametrize("username", ["vera", "quinn"])
def test_forged_signature_callbacks_are_refused_and_change_nothing(
    dashboard_client: TestClient, session: Session, deployed: None, username: str
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, username)

    opened = open_dialog(dashboard_client, change_request_id)
    signed = sign(dashboard_client, change_request_id)

    assert (opened.status_code, signed.status_code) == (403, 403)
    assert signed.json()["error"]["code"] == "forbidden"
    assert session.execute(select(Signature)).first() is None
    assert actions(session, "signature.") == [] and active(session) == "2.1.0"


def test_a_model_with_a_single_version_has_nothing_to_request(dashboard_client: TestClient, session: Session) -> None:
    make_user(session, role="qa", username="quinn")
    make_model(session)
    make_version(session, version="1.0.0", activate=True)
    sign_in(dashboard_client, "quinn")

    page = render_page(dashboard_client, "/versions", "?model=ich-ct")

    assert find(page, "versions-request-open")["disabled"] is True
    assert find(page, "versions-request-blocked")["children"] == "no other version registered"
