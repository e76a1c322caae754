"""The demo and the versions page as a newcomer meets them (issue 12, deliverable 9): the demo has
two approver accounts, an approver who signed no longer sees "Approve…/Reject…", the notice reads
"when 1 more approver signs", and the page says who may file a rollback."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor import demo
from monitor.auth.models import User
from tests.dashboard.callbacks import find, response_of, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.dashboard.test_approvals import OPEN, deployed, file_rollback, sign  # noqa: F401 (fixture)


def test_the_demo_has_two_approvers_so_a_rollback_needs_no_admin(session: Session) -> None:
    accounts = demo.create_accounts(session)

    approvers = [a for a in accounts if a.role == "approver"]
    assert len(approvers) == 2 and all(a.password for a in approvers)
    assert len({a.username for a in approvers}) == 2
    stored = session.execute(select(User.username, User.role).where(User.role == "approver")).all()
    assert sorted(stored) == [("approver", "approver"), ("approver2", "approver")]


def test_an_approver_who_signed_sees_their_signature_instead_of_the_buttons(
    dashboard_client: TestClient,
    session: Session,
    deployed: None,  # noqa: F811
) -> None:
    change_request_id = file_rollback(session)
    sign_in(dashboard_client, "avery")

    flash = response_of(sign(dashboard_client, change_request_id))["versions-flash"]
    mine = render_page(dashboard_client, "/versions", "?model=ich-ct")
    sign_in(dashboard_client, "blake")
    theirs = render_page(dashboard_client, "/versions", "?model=ich-ct")

    assert "it executes when 1 more approver signs." in text_of(flash)
    assert OPEN not in mine  # neither "Approve…" nor "Reject…"
    assert "You signed this request (approve)" in text_of(find(mine, f"versions-cr-{change_request_id}-signed"))
    assert OPEN in theirs  # the second approver still can


def test_the_versions_page_says_who_files_and_who_signs(
    dashboard_client: TestClient,
    session: Session,
    deployed: None,  # noqa: F811
) -> None:
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/versions", "?model=ich-ct")

    assert "qa and admin file a rollback or promotion; approvers (and admin) sign it" in text_of(
        find(page, "versions-cr-who")
    )
