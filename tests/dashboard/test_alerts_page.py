"""The alerts page: filters, the deep link the alert emails carry, the evidence panel, and
acknowledge / resolve with a note (qa, admin), which viewers and approvers cannot forge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.components.figures import alert_occurrences, metric_axis_title
from monitor.alerts import service as alerts_service
from monitor.alerts.models import Alert
from monitor.alerts.schemas import Finding
from monitor.audit.models import AuditEvent
from monitor.config import Settings
from tests.dashboard.callbacks import call, find, response_of, text_of
from tests.dashboard.conftest import render_page, sign_in
from tests.factories import make_model, make_user, make_version

WEEK_END = datetime(2026, 11, 20, tzinfo=UTC)


def sensitivity(window_end: datetime, value: float, *, segment: str = "site=north") -> Finding:
    return Finding(
        model="ich-ct",
        version="2.1.0",
        kind="subgroups",
        metric="sensitivity",
        status="breach",
        window_end=window_end,
        segment=segment,
        value=value,
        ci_low=value - 0.09,
        ci_high=value + 0.08,
        n=84,
        threshold=0.9,
        run_id=7,
    )


def drift(window_end: datetime) -> Finding:
    return Finding(
        model="ich-ct",
        version="2.1.0",
        kind="input_drift",
        metric="drift_score",
        status="breach",
        window_end=window_end,
        feature="kvp",
        value=0.31,
        n=2100,
        threshold=0.1,
        method="wasserstein",
        run_id=8,
    )


@pytest.fixture
def alerts(session: Session, settings: Settings) -> dict[str, int]:
    """A critical subgroup alert seen in three windows, and a drift warning."""
    for role, username in [("viewer", "vera"), ("qa", "quinn"), ("approver", "avery"), ("admin", "ada")]:
        make_user(session, role=role, username=username)
    make_model(session)
    make_version(session, version="2.1.0", activate=True)
    for days, value in [(14, 0.78), (7, 0.74), (0, 0.71)]:
        alerts_service.process_findings(
            session=session, findings=[sensitivity(WEEK_END - timedelta(days=days), value)], settings=settings
        )
    alerts_service.process_findings(session=session, findings=[drift(WEEK_END)], settings=settings)
    ids = {a.kind: a.id for a in session.execute(select(Alert)).scalars()}
    return {"critical": ids["subgroups"], "warning": ids["input_drift"]}


def act(
    client: TestClient,
    alert_id: int,
    button: str = "alerts-ack-button",
    note: str = "site north PACS team confirmed the protocol change",
):  # type: ignore[no-untyped-def]
    return call(
        client,
        f"{button}.n_clicks",
        {
            f"{button}.n_clicks": 1,
            "alerts-selected-store.data": alert_id,
            "alerts-note.value": note,
            "alerts-filters-store.data": {"status": "active", "severity": None, "model": None},
        },
    )


def status_of(session: Session, alert_id: int) -> str:
    session.expire_all()
    return session.get(Alert, alert_id).status  # type: ignore[union-attr]


def test_the_list_shows_active_alerts_most_severe_first(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int]
) -> None:
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/alerts")

    assert page.index(f"alerts-row-{alerts['critical']}") < page.index(f"alerts-row-{alerts['warning']}")
    assert "Sensitivity \\u00b7 site=north" in page and "Drift score \\u00b7 kvp" in page
    assert find(page, "alerts-tile-critical-value")["children"] == 1
    assert "alerts-no-selection" in page


def test_filters_narrow_the_list(dashboard_client: TestClient, session: Session, alerts: dict[str, int]) -> None:
    sign_in(dashboard_client, "vera")

    critical = render_page(dashboard_client, "/alerts", "?severity=critical")
    resolved = render_page(dashboard_client, "/alerts", "?status=resolved")

    assert f"alerts-row-{alerts['critical']}" in critical and f"alerts-row-{alerts['warning']}" not in critical
    assert "alerts-empty" in resolved


def test_the_filter_callback_keeps_the_selected_alert_in_the_url(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int]
) -> None:
    sign_in(dashboard_client, "vera")

    result = response_of(
        call(
            dashboard_client,
            "alerts-filter-severity.value",
            {
                "alerts-filter-status.value": "all",
                "alerts-filter-severity.value": "critical",
                "alerts-filter-model.value": "ich-ct",
                "alerts-selected-store.data": alerts["critical"],
            },
        )
    )

    assert (
        result["alerts-location"]["href"]
        == f"/dashboard/alerts?status=all&severity=critical&model=ich-ct&id={alerts['critical']}"
    )
    cleared = response_of(
        call(
            dashboard_client,
            "alerts-filter-severity.value",
            {
                "alerts-filter-status.value": "active",
                "alerts-filter-severity.value": "any",
                "alerts-filter-model.value": "any",
            },
        )
    )
    assert cleared["alerts-location"]["href"] == "/dashboard/alerts"


def test_the_email_deep_link_opens_the_evidence(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int]
) -> None:
    sign_in(dashboard_client, "vera")

    page = render_page(dashboard_client, "/alerts", f"?id={alerts['critical']}")

    evidence = json.dumps(find(page, "alerts-evidence"))
    for shown in (
        "0.710",
        "0.620 to 0.790",
        "84",
        "0.900",
        "site=north",
        "window ending 2026-11-06 00:00 UTC",
        "window ending 2026-11-20 00:00 UTC",
        "3 windows",
    ):
        assert shown in evidence, shown
    assert "n = 84" in json.dumps(find(page, "alerts-detail-summary"))
    graph = find(page, "alerts-occurrences-graph")["figure"]
    assert (
        len(graph["data"][0]["y"]) == 3
        and graph["layout"]["yaxis"]["title"]["text"] == "Sensitivity (proportion, 0\u20131)"
    )
    assert "opened" in json.dumps(find(page, "alerts-history"))
    assert "table-active" in json.dumps(find(page, f"alerts-row-{alerts['critical']}"))


def test_an_unknown_alert_id_says_so(dashboard_client: TestClient, session: Session, alerts: dict[str, int]) -> None:
    sign_in(dashboard_client, "vera")

    assert "alerts-detail-error" in render_page(dashboard_client, "/alerts", "?id=999999")
    assert "alerts-no-selection" in render_page(dashboard_client, "/alerts", "?id=not-a-number")


@pytest.mark.parametrize("username", ["vera", "avery"])
def test_viewers_and_approvers_see_no_action_controls(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int], username: str
) -> None:
    sign_in(dashboard_client, username)

    page = render_page(dashboard_client, "/alerts", f"?id={alerts['critical']}")

    for control in (
        "alerts-actions",
        "alerts-ack-button",
        "alerts-resolve-button",
        "alerts-note",
        "alerts-rollback-link",
    ):
        assert control not in page


def test_qa_sees_acknowledge_resolve_and_request_rollback(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int]
) -> None:
    sign_in(dashboard_client, "quinn")

    page = render_page(dashboard_client, "/alerts", f"?id={alerts['critical']}")

    assert find(page, "alerts-ack-button").get("disabled") is False
    assert (
        find(page, "alerts-rollback-link")["href"]
        == f"/dashboard/versions?model=ich-ct&request=rollback&alert={alerts['critical']}"
    )


def test_qa_acknowledges_with_a_note_and_it_is_audited(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int]
) -> None:
    sign_in(dashboard_client, "quinn")

    result = response_of(act(dashboard_client, alerts["critical"]))

    assert status_of(session, alerts["critical"]) == "acknowledged"
    detail = text_of(result["alerts-detail"])
    assert f"Alert #{alerts['critical']} acknowledged" in detail and "site north PACS team confirmed" in detail
    assert "acknowledged" in text_of(result["alerts-table-container"])
    assert find(result["alerts-tiles"]["children"], "alerts-tile-acknowledged-value")["children"] == 1
    assert find(result["alerts-tiles"]["children"], "alerts-tile-critical-value")["children"] == 0
    [event] = session.execute(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge")).scalars()
    assert (event.actor, event.reason) == ("quinn", "site north PACS team confirmed the protocol change")


def test_resolve_closes_the_alert(dashboard_client: TestClient, session: Session, alerts: dict[str, int]) -> None:
    sign_in(dashboard_client, "ada")

    response_of(
        act(dashboard_client, alerts["warning"], "alerts-resolve-button", "kVp change was the planned protocol update")
    )

    assert status_of(session, alerts["warning"]) == "resolved"


def test_a_note_is_required(dashboard_client: TestClient, session: Session, alerts: dict[str, int]) -> None:
    sign_in(dashboard_client, "quinn")

    result = response_of(act(dashboard_client, alerts["critical"], note="   "))

    assert "Write a note first" in text_of(result["alerts-action-feedback"])
    assert "alerts-detail" not in result  # the typed note stays in the box
    assert status_of(session, alerts["critical"]) == "open"


def test_acknowledging_twice_says_why_not(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int]
) -> None:
    sign_in(dashboard_client, "quinn")
    response_of(act(dashboard_client, alerts["critical"]))

    again = response_of(act(dashboard_client, alerts["critical"]))
    page = render_page(dashboard_client, "/alerts", f"?id={alerts['critical']}")

    assert "is already acknowledged" in text_of(again["alerts-action-feedback"])
    assert find(page, "alerts-ack-button")["disabled"] is True


@pytest.mark.parametrize("username", ["vera", "avery"])
def test_a_forged_acknowledgement_is_refused_and_changes_nothing(
    dashboard_client: TestClient, session: Session, alerts: dict[str, int], username: str
) -> None:
    sign_in(dashboard_client, username)

    result = act(dashboard_client, alerts["critical"])

    assert result.status_code == 403 and result.json()["error"]["code"] == "forbidden"
    assert status_of(session, alerts["critical"]) == "open"
    assert session.execute(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge")).first() is None


def test_the_occurrence_chart_is_titled_with_units_and_draws_the_interval() -> None:
    occurrences = [
        {
            "window_end": WEEK_END - timedelta(days=7),
            "value": 0.74,
            "ci_low": 0.65,
            "ci_high": 0.82,
            "n": 80,
            "threshold": 0.9,
            "status": "breach",
        },
        {
            "window_end": WEEK_END,
            "value": 0.71,
            "ci_low": 0.62,
            "ci_high": 0.79,
            "n": 84,
            "threshold": 0.9,
            "status": "breach",
        },
        {"window_end": WEEK_END - timedelta(days=14), "value": None, "threshold": 0.9, "status": "breach"},
    ]

    figure = alert_occurrences(
        occurrences, metric="sensitivity", method=None, title="Sensitivity · site=north per window"
    )

    value, threshold = figure.data
    assert list(value.y) == [0.74, 0.71] and list(value.x) == ["2026-11-13 00:00:00", "2026-11-20 00:00:00"]
    assert list(value.error_y.array) == pytest.approx([0.08, 0.08]) and list(value.error_y.arrayminus) == pytest.approx(
        [0.09, 0.09]
    )
    assert list(threshold.y) == [0.9, 0.9]
    assert figure.layout.title.text == "Sensitivity · site=north per window"
    assert figure.layout.xaxis.title.text == "Window end (UTC)"


@pytest.mark.parametrize(
    ("metric", "method", "title"),
    [
        ("drift_score", "wasserstein", "Drift score (wasserstein distance)"),
        ("drift_score", "ks", "p-value (ks test)"),
        ("positive_rate", None, "Positive-prediction rate (share, 0–1)"),
    ],
)
def test_axis_titles_say_the_units(metric: str, method: str | None, title: str) -> None:
    assert metric_axis_title(metric, method) == title
