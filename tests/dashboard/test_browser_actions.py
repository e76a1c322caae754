"""The dashboard's actions in Chromium against a real server: a rollback requested and signed by two
approvers through the signature dialog, the policy edited, an alert acknowledged; what a viewer
sees; and a viewer's forged callback, posted from the page with the real CSRF token, refused.

A server of its own (not test_browser.py's): these tests change state that the page-rendering tests
there must not see. SQLite only, like test_browser.py; the server tests cover both backends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from dashboard.app import mount_dashboard
from monitor import migrate
from monitor.alerts import service as alerts_service
from monitor.alerts.schemas import Finding
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.checks import policy as checks_policy
from monitor.checks.schemas import MonitoringPolicy
from monitor.config import Settings, load_settings
from monitor.db import Database, set_database
from monitor.main import create_app
from monitor.registry import changes
from monitor.registry import service as registry_service
from monitor.registry.schemas import ChangeRequestCreate, DecisionCreate, ModelCreate, VersionCreate
from tests.dashboard.test_browser import PASSWORD, Tab, browser  # noqa: F401 (the browser fixture)
from tests.live_server import served_in_thread

USERS = {  # username -> (role, printed name)
    "vera": ("viewer", "Vera Viewer"),
    "quinn": ("qa", "Quinn Quality"),
    "avery": ("approver", "Avery Approver"),
    "blake": ("approver", "Blake Approver"),
    "ada": ("admin", "Ada Admin"),
}
POLICY = {
    "features": [
        {"name": "kvp", "type": "numeric"},
        {"name": "slice_thickness", "type": "numeric"},
        {"name": "mean_hu", "type": "numeric", "drift_method": "psi", "drift_threshold": 0.2},
        {"name": "noise_sd", "type": "numeric", "drift_method": "wasserstein"},
        {"name": "manufacturer", "type": "categorical"},
        {"name": "convolution_kernel", "type": "categorical", "drift_method": "chisquare"},
    ],
    "segments": ["site", "manufacturer", "patient_sex", "age_band"],
    "intersections": [["site", "manufacturer"]],
    "window_days": 7,
    "schedule": "0 2 * * *",
    "alert_recipients": ["ai-committee@hospital.example", "neuroradiology-qa@hospital.example"],
    "alert_severities": {"estimated_performance": "info"},
}


@dataclass(frozen=True)
class Live:
    url: str
    database: Database
    settings: Settings


def _at(days_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days_ago)


def _actor(session, username: str):  # type: ignore[no-untyped-def]
    return auth_service.actor_for(auth_service.get_user(session=session, username=username))


def _model(session, name: str, display: str, modality: str, body_part: str, versions: list[tuple[str, float]]) -> None:  # type: ignore[no-untyped-def]
    registry_service.create_model(
        session=session,
        actor=SYSTEM,
        data=ModelCreate(
            name=name,
            display_name=display,
            modality=modality,
            body_part=body_part,
            intended_use=f"{display}: worklist prioritization, not diagnosis",
            alert_recipients=["ai-committee@hospital.example"],
        ),
    )
    for number, (version, days_ago) in enumerate(versions):
        with mock.patch("monitor.registry.service.utcnow", return_value=_at(days_ago)):
            registry_service.create_version(
                session=session,
                actor=SYSTEM,
                model_name=name,
                data=VersionCreate(
                    version=version,
                    artifact_uri=f"s3://models/{name}/{version}.onnx",
                    artifact_sha256=f"{number + 3:x}{number + 7:x}" * 32,
                    targets={"sensitivity": 0.9, "specificity": 0.8, "auc": 0.85},
                    decision_threshold=0.4 + 0.05 * number,
                ),
            )


def _promote(session, model: str, version: str, reason: str, days_ago: float, signers: list[str]) -> int:  # type: ignore[no-untyped-def]
    """A promotion requested by qa and signed by the given approvers, dated days_ago."""
    created = changes.request_change(
        session=session,
        actor=_actor(session, "quinn"),
        data=ChangeRequestCreate(model=model, kind="promotion", target_version=version, reason=reason),
        now=_at(days_ago + 0.2),
    )
    for offset, signer in enumerate(signers):
        signed_at = _at(days_ago + 0.05 * (len(signers) - 1 - offset))
        # The deployment takes the wall clock; date it with the signature that completes the quorum.
        with mock.patch("monitor.registry.service.utcnow", return_value=signed_at):
            result = changes.decide(
                session=session,
                actor=_actor(session, signer),
                change_request_id=created.id,
                data=DecisionCreate(
                    decision="approve",
                    meaning=f"I approve this promotion of {model} from version {created.from_version} to version {version}",
                    password=PASSWORD,
                    comment="local validation report reviewed" if offset == 0 else "",
                ),
                now=signed_at,
            )
        assert result.refusal is None, result.refusal
    return created.id


def _raise_alerts(session, settings) -> None:  # type: ignore[no-untyped-def]
    """What a scanner change at site north looks like after three weekly windows on ich-ct 2.1.0."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for weeks_ago, sensitivity, kvp_drift in [(2, 0.81, 0.18), (1, 0.76, 0.27), (0, 0.71, 0.31)]:
        window_end = today - timedelta(weeks=weeks_ago)
        findings = [
            Finding(
                model="ich-ct",
                version="2.1.0",
                kind="subgroups",
                metric="sensitivity",
                status="breach",
                window_end=window_end,
                segment="site=north",
                value=sensitivity,
                ci_low=sensitivity - 0.09,
                ci_high=sensitivity + 0.07,
                n=84,
                threshold=0.9,
                run_id=10 + weeks_ago,
            ),
            Finding(
                model="ich-ct",
                version="2.1.0",
                kind="input_drift",
                metric="drift_score",
                status="breach",
                window_end=window_end,
                feature="kvp",
                value=kvp_drift,
                n=2100,
                threshold=0.1,
                method="wasserstein",
                run_id=20 + weeks_ago,
            ),
        ]
        alerts_service.process_findings(
            session=session, findings=findings, settings=settings, now=window_end + timedelta(hours=2)
        )
    alerts_service.process_findings(
        session=session,
        findings=[
            Finding(
                model="ich-ct",
                version="2.1.0",
                kind="output_drift",
                metric="positive_rate",
                status="warn",
                window_end=today,
                value=0.142,
                ci_low=0.128,
                ci_high=0.157,
                n=2100,
                threshold=0.12,
                run_id=30,
            )
        ],
        settings=settings,
    )


def seed(database: Database, settings=None) -> None:  # type: ignore[no-untyped-def]
    """ich-ct: 2.0.0 live 60 days, then 2.1.0 promoted with two signatures, and the alerts it
    raised since; ptx-cxr: a promotion waiting for its second signature; a saved policy for ich-ct."""
    with database.transaction() as session:
        for username, (role, name) in USERS.items():
            auth_service.create_user(
                session=session, actor=SYSTEM, username=username, role=role, password=PASSWORD, full_name=name
            )
        _model(session, "ich-ct", "Intracranial hemorrhage triage", "CT", "HEAD", [("2.0.0", 90), ("2.1.0", 20)])
        _model(session, "ptx-cxr", "Pneumothorax detection", "CR", "CHEST", [("1.0.0", 120), ("1.1.0", 3)])
        for model, version, days_ago in [("ich-ct", "2.0.0", 60), ("ptx-cxr", "1.0.0", 100)]:
            with mock.patch("monitor.registry.service.utcnow", return_value=_at(days_ago)):
                registry_service.activate_first(
                    session=session,
                    actor=SYSTEM,
                    model_name=model,
                    version=version,
                    reason="go-live after local validation",
                )
        _promote(
            session,
            "ich-ct",
            "2.1.0",
            "2.1.0 retrained with the 2026 multi-site data; validated at all four sites",
            14,
            ["avery", "blake"],
        )
        with mock.patch("monitor.registry.service.utcnow", return_value=_at(0.3)):
            pending = changes.request_change(
                session=session,
                actor=_actor(session, "quinn"),
                data=ChangeRequestCreate(
                    model="ptx-cxr",
                    kind="promotion",
                    target_version="1.1.0",
                    reason="1.1.0 lowers false positives on portable films",
                ),
            )
            changes.decide(
                session=session,
                actor=_actor(session, "avery"),
                change_request_id=pending.id,
                data=DecisionCreate(
                    decision="approve",
                    meaning="I approve this promotion of ptx-cxr from version 1.0.0 to version 1.1.0",
                    password=PASSWORD,
                ),
            )
        checks_policy.put_policy(
            session=session,
            actor=_actor(session, "ada"),
            model_name="ich-ct",
            policy=MonitoringPolicy.model_validate(POLICY),
        )
        if settings is not None:
            _raise_alerts(session, settings)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-actions') / 'radmon.db'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    settings = load_settings(
        database_url=url,
        secret_key="browser-test-secret-0123456789",
        log_format="text",
        log_level="WARNING",
        outbox_dir=str(tmp_path_factory.mktemp("browser-actions-outbox")),
    )
    seed(database, settings)
    previous = set_database(database)
    app = create_app(settings)
    mount_dashboard(app, settings=settings)
    try:
        with served_in_thread(app, name="dashboard-actions-server") as url:
            yield Live(url, database, settings)
    finally:
        set_database(previous)
        database.dispose()


@pytest.fixture
def tab(browser: object, live: Live) -> Iterator[Tab]:  # noqa: F811
    opened = Tab(browser, live.url)
    yield opened
    opened.close()


def active_version(live: Live, model: str) -> str:
    with live.database.transaction() as session:
        version, _ = registry_service.active_version(session=session, actor=SYSTEM, model_name=model)
        return version.version


def signatures_of(live: Live, change_request_id: int) -> list[str]:
    with live.database.transaction() as session:
        found = changes.get_change_request(session=session, actor=SYSTEM, change_request_id=change_request_id)
        return [s.username for s in found.signatures]


# -- versions and approvals -------------------------------------------------------------------------


def sign_in_as(tab: Tab, username: str) -> None:
    tab.sign_in(username)
    tab.page.wait_for_selector("#nav-user-name")


def test_two_approvers_approve_a_rollback_through_the_signature_dialog(tab: Tab, live: Live, browser: object) -> None:  # noqa: F811
    assert active_version(live, "ich-ct") == "2.1.0"
    sign_in_as(tab, "quinn")
    tab.open("/dashboard/versions?model=ich-ct", "#versions-timeline .main-svg")
    tab.page.click("#versions-request-open")
    tab.page.wait_for_selector(".modal.show #versions-request-modal")
    tab.page.check("input[value='rollback']", force=True)
    tab.page.fill(
        "#versions-request-reason",
        "Sensitivity at site north fell below target after the scanner upgrade; 2.0.0 held target there",
    )
    tab.screenshot("qa-versions-request-form")
    tab.page.click("#versions-request-submit")
    tab.page.wait_for_selector("#versions-request-filed")
    filed = int(tab.page.inner_text("#versions-request-filed").split("#")[1].split(" ")[0])
    tab.page.wait_for_selector(f"#versions-cr-{filed}")
    assert tab.problems == []
    tab.close()

    approver = Tab(browser, live.url)
    try:
        sign_in_as(approver, "avery")
        approver.open("/dashboard/versions?model=ich-ct", f"#versions-cr-{filed}")
        approver.page.click(f"#versions-cr-{filed} button:has-text('Approve')")
        approver.page.wait_for_selector(".modal.show #versions-sign-content-table")
        meaning = approver.page.inner_text("#versions-sign-meaning")
        assert meaning == "I approve this rollback of ich-ct from version 2.1.0 to version 2.0.0"
        approver.page.fill("#versions-sign-password", "not my password")
        approver.page.click("#versions-sign-submit")
        approver.page.wait_for_selector("#versions-sign-error")
        assert "the password does not match" in approver.page.inner_text("#versions-sign-error")
        approver.screenshot("approver-versions-signature-wrong-password")
        approver.page.fill("#versions-sign-password", PASSWORD)
        approver.page.fill("#versions-sign-comment", "Subgroup evidence at north reviewed")
        approver.screenshot("approver-versions-signature-dialog")
        approver.page.click("#versions-sign-submit")
        approver.page.wait_for_selector("#versions-signed-notice")
        assert "1 of 2" in approver.page.inner_text("#versions-signed-notice")
        assert active_version(live, "ich-ct") == "2.1.0"
        # the 401/403 of the refused attempt is an answer, not a problem: the wrong password is a 200
        assert approver.problems == []
    finally:
        approver.close()

    second = Tab(browser, live.url)
    try:
        sign_in_as(second, "blake")
        second.open("/dashboard/versions?model=ich-ct", f"#versions-cr-{filed}")
        second.page.click(f"#versions-cr-{filed} button:has-text('Approve')")
        second.page.wait_for_selector(".modal.show #versions-sign-content-table")
        second.page.fill("#versions-sign-password", PASSWORD)
        second.page.press("#versions-sign-password", "Enter")
        second.page.wait_for_selector("#versions-signed-notice")
        second.page.wait_for_selector("#versions-sign-modal", state="hidden")

        assert "version 2.0.0 of ich-ct is live now" in second.page.inner_text("#versions-signed-notice")
        assert "live" in second.page.inner_text("#versions-row-2\\.0\\.0")
        assert "2.0.0" in second.page.inner_text("#versions-model")
        assert second.page.inner_text(f"#versions-cr-{filed}-status").lower() == "executed"
        assert active_version(live, "ich-ct") == "2.0.0"
        assert signatures_of(live, filed) == ["avery", "blake"]
        second.screenshot("approver-versions-after-rollback")
        second.page.reload()
        second.page.wait_for_selector("#versions-timeline .main-svg")
        assert "live" in second.page.inner_text("#versions-row-2\\.0\\.0")
        assert second.problems == []
    finally:
        second.close()


def test_approver_sees_pending_requests_of_other_models_and_the_signature_manifestations(tab: Tab) -> None:
    sign_in_as(tab, "blake")
    tab.open("/dashboard/versions?model=ptx-cxr", "#versions-cr-list")

    text = tab.page.inner_text("#versions-cr-list")
    assert "Avery Approver" in text and "1 of 2 approvals" in text
    assert tab.page.locator("#versions-cr-list button:has-text('Approve')").count() == 1
    tab.screenshot("approver-versions-pending")
    assert tab.problems == []


# -- policy -----------------------------------------------------------------------------------------


def test_qa_edits_the_policy_and_sees_validation_inline(tab: Tab, live: Live) -> None:
    sign_in_as(tab, "quinn")
    tab.open("/dashboard/policy?model=ich-ct", "#policy-features-table")
    original = tab.page.input_value("#policy-editor")

    tab.page.fill(
        "#policy-editor",
        original.replace('"window_days": 7', '"window_days": 0').replace(
            '"schedule": "0 2 * * *"', '"schedule": "nightly"'
        ),
    )
    tab.page.click("#policy-save-button")
    tab.page.wait_for_selector("#policy-problems")
    problems = tab.page.inner_text("#policy-problems")
    assert "window_days" in problems and "schedule" in problems
    tab.screenshot("qa-policy-validation")

    tab.page.fill("#policy-editor", original.replace('"window_days": 7', '"window_days": 14'))
    tab.page.click("#policy-save-button")
    tab.page.wait_for_selector("#policy-saved")
    assert "14 days" in tab.page.inner_text("#policy-window")
    with live.database.transaction() as session:
        saved = checks_policy.get_policy(session=session, actor=SYSTEM, model_name="ich-ct")
    assert (saved.window_days, saved.updated_by) == (14, "quinn")
    tab.screenshot("qa-policy-saved")
    assert tab.problems == []


# -- what a viewer sees and cannot do ---------------------------------------------------------------

FORGED_SIGNATURE = """async ([changeRequestId, password]) => {
  const token = document.cookie.split('; ').find(c => c.startsWith('radmon_csrf=')).split('=')[1];
  const deps = await (await fetch('/dashboard/_dash-dependencies')).json();
  const dep = deps.find(d => d.inputs.some(i => i.id === 'versions-sign-submit'));
  const parts = dep.output.slice(2, -2).split('...');
  const value = {
    'versions-sign-submit.n_clicks': 1,
    'versions-sign-store.data': {change_request_id: changeRequestId, decision: 'approve'},
    'versions-sign-password.value': password,
    'versions-sign-comment.value': '',
    'versions-model-store.data': 'ptx-cxr',
  };
  const entry = i => ({id: i.id, property: i.property, value: value[i.id + '.' + i.property] ?? null});
  const response = await fetch('/dashboard/_dash-update-component', {
    method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
    body: JSON.stringify({
      output: dep.output,
      outputs: parts.map(p => { const at = p.lastIndexOf('.'); return {id: p.slice(0, at), property: p.slice(at + 1)}; }),
      inputs: dep.inputs.map(entry),
      state: dep.state.map(entry),
      changedPropIds: ['versions-sign-submit.n_clicks'],
    }),
  });
  return {status: response.status, body: await response.text()};
}"""


def test_a_viewer_sees_no_action_controls(tab: Tab) -> None:
    sign_in_as(tab, "vera")
    tab.open("/dashboard/versions?model=ptx-cxr", "#versions-cr-list")
    assert tab.page.locator("#versions-change-requests button").count() == 0
    assert tab.page.locator("#versions-sign-modal, #versions-request-modal").count() == 0
    tab.screenshot("viewer-versions-change-requests")

    tab.open("/dashboard/policy?model=ich-ct", "#policy-features-table")
    assert tab.page.locator("#policy-editor, #policy-save-button, #policy-validate-button").count() == 0
    assert tab.page.locator("#policy-read-only").count() == 1
    tab.screenshot("viewer-policy-read-only")
    assert tab.problems == []


def test_a_forged_signature_callback_from_a_viewer_is_refused_and_changes_nothing(tab: Tab, live: Live) -> None:
    with live.database.transaction() as session:
        [pending] = changes.list_change_requests(session=session, actor=SYSTEM, status="pending", model_name="ptx-cxr")
    sign_in_as(tab, "vera")
    tab.open("/dashboard/versions?model=ptx-cxr", "#versions-cr-list")

    forged = tab.page.evaluate(FORGED_SIGNATURE, [pending.id, PASSWORD])

    assert forged["status"] == 403 and '"forbidden"' in forged["body"]
    assert signatures_of(live, pending.id) == ["avery"]
    assert active_version(live, "ptx-cxr") == "1.0.0"
    tab.problems.clear()  # the refused forgery is the 403 this test expects


# -- alerts -----------------------------------------------------------------------------------------


def alert_ids(live: Live) -> dict[str, int]:
    with live.database.transaction() as session:
        return {
            a.kind: a.id
            for a in alerts_service.list_alerts(session=session, actor=SYSTEM, limit=50, settings=live.settings)
        }


def alert_status(live: Live, alert_id: int) -> str:
    with live.database.transaction() as session:
        return alerts_service.get_alert(session=session, actor=SYSTEM, alert_id=alert_id, settings=live.settings).status


def test_qa_acknowledges_an_alert_from_the_email_link(tab: Tab, live: Live) -> None:
    critical = alert_ids(live)["subgroups"]
    sign_in_as(tab, "quinn")
    tab.open("/dashboard/alerts", "#alerts-table")
    tab.screenshot("qa-alerts-list")

    tab.open(f"/dashboard/alerts?id={critical}", "#alerts-occurrences-graph .main-svg")
    assert "n = 84" in tab.page.inner_text("#alerts-detail-summary")
    tab.page.click("#alerts-ack-button")
    tab.page.wait_for_selector("#alerts-action-error")  # the note is required
    tab.page.fill(
        "#alerts-note", "North PACS team confirms a reconstruction-kernel change on 14 Nov; reviewing missed ICH cases"
    )
    tab.screenshot("qa-alerts-detail")
    tab.page.click("#alerts-ack-button")
    tab.page.wait_for_selector("#alerts-action-done")

    assert tab.page.inner_text("#alerts-detail-status").lower() == "acknowledged"
    assert "reconstruction-kernel change" in tab.page.inner_text("#alerts-history")
    assert alert_status(live, critical) == "acknowledged"
    tab.page.wait_for_selector("#alerts-occurrences-graph .main-svg")
    tab.screenshot("qa-alerts-acknowledged")
    assert tab.problems == []


def test_the_alert_page_offers_qa_a_prefilled_rollback_request(tab: Tab, live: Live) -> None:
    critical = alert_ids(live)["subgroups"]
    sign_in_as(tab, "quinn")
    tab.open(f"/dashboard/alerts?id={critical}", "#alerts-rollback-link")

    tab.page.click("#alerts-rollback-link")
    tab.page.wait_for_selector(".modal.show #versions-request-modal")

    assert tab.page.input_value("#versions-request-alert") == str(critical)
    assert tab.page.is_checked("input[value='rollback']")
    assert tab.problems == []


def test_a_viewer_sees_alerts_without_action_controls(tab: Tab, live: Live) -> None:
    critical = alert_ids(live)["subgroups"]
    sign_in_as(tab, "vera")
    tab.open(f"/dashboard/alerts?id={critical}", "#alerts-occurrences-graph .main-svg")

    assert tab.page.locator("#alerts-actions, #alerts-ack-button, #alerts-resolve-button, #alerts-note").count() == 0
    tab.screenshot("viewer-alerts-detail")
    assert tab.problems == []
