"""Dashboard fixtures: the API app with the dashboard mounted, bound to the test's session."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dashboard import data
from dashboard.app import mount_dashboard
from monitor.config import Settings
from monitor.main import create_app
from tests.factories import PASSWORD

BASE_URL = "http://testserver"
SAME_ORIGIN = {"Origin": BASE_URL}
ROUTING_OUTPUT = ".._pages_content.children..._pages_store.data.."


def point_transaction_at(
    monkeypatch: pytest.MonkeyPatch, transaction: Callable[[], AbstractContextManager[Session]]
) -> None:
    """Every dashboard unit of work uses `transaction`: the facade's name (the pages call
    data.transaction()) and the one each page family's module imported from dashboard.data.base."""
    monkeypatch.setattr(data, "transaction", transaction)
    for module in (data.base, data.registry, data.alerting, data.audit, data.analysis):
        if hasattr(module, "transaction"):
            monkeypatch.setattr(module, "transaction", transaction)


@pytest.fixture
def dashboard_client(session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """API + dashboard; each dashboard unit of work commits or rolls back inside the test's transaction."""

    @contextmanager
    def transaction() -> Iterator[Session]:
        session.commit()  # what the test set up before the request counts as committed
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    point_transaction_at(monkeypatch, transaction)
    app = create_app(settings)
    mount_dashboard(app, settings=settings)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def sign_in(client: TestClient, username: str, password: str = PASSWORD, **extra: str) -> Any:
    return client.post(
        "/dashboard/login",
        data={"username": username, "password": password, **extra},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )


def callback_headers(client: TestClient) -> dict[str, str]:
    """What the Dash renderer sends: same Origin, and the CSRF cookie echoed in X-CSRFToken."""
    return {**SAME_ORIGIN, "X-CSRFToken": client.cookies.get("radmon_csrf") or ""}


def callback_body(
    outputs: list[tuple[str, str]],
    inputs: list[tuple[str, str, Any]],
    state: list[tuple[str, str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """The JSON the Dash renderer posts to /_dash-update-component for one callback."""
    if len(outputs) == 1:
        output: str = f"{outputs[0][0]}.{outputs[0][1]}"
        described: Any = {"id": outputs[0][0], "property": outputs[0][1]}
    else:
        output = ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".."
        described = [{"id": i, "property": p} for i, p in outputs]
    return {
        "output": output,
        "outputs": described,
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"] if inputs else [],
    }


def post_callback(client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/dashboard/_dash-update-component",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **(callback_headers(client) if headers is None else headers)},
    )


def render_page(client: TestClient, path: str, search: str = "") -> str:
    """The page layout as the pages router returns it (serialized component tree)."""
    body = callback_body(
        [("_pages_content", "children"), ("_pages_store", "data")],
        [("_pages_location", "pathname", f"/dashboard{path}"), ("_pages_location", "search", search)],
    )
    response = post_callback(client, body)
    assert response.status_code == 200, response.text
    return json.dumps(response.json()["response"]["_pages_content"]["children"])
