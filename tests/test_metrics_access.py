"""Issue 14 item 7: /metrics answers only a scraper holding RADMON_METRICS_TOKEN, or on a
listener of its own (RADMON_METRICS_ADDRESS); anyone else gets 401."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from monitor.config import load_settings
from monitor.errors import ConfigurationError
from monitor.main import create_app
from tests.live_server import PSEUDONYM_KEY, SECRET_KEY, free_port

TOKEN = "metrics-token-0123456789abcdef"


def _client(**settings: object) -> TestClient:
    return TestClient(create_app(load_settings(secret_key=SECRET_KEY, pseudonym_key=PSEUDONYM_KEY, **settings)))


def test_without_a_token_configured_metrics_are_refused_to_everyone() -> None:
    with _client() as client:
        answer = client.get("/metrics")
        guessed = client.get("/metrics", headers={"Authorization": "Bearer "})

    assert answer.status_code == 401 and guessed.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "RADMON_METRICS_TOKEN" in answer.json()["error"]["message"]
    assert "radmon_http_requests_total" not in answer.text


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
def test_a_missing_or_wrong_token_is_401(authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with _client(metrics_token=TOKEN) as client:
        answer = client.get("/metrics", headers=headers)

    assert answer.status_code == 401 and "radmon_http_requests_total" not in answer.text


def test_the_token_opens_the_metrics() -> None:
    with _client(metrics_token=TOKEN) as client:
        client.get("/healthz")
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert 'radmon_http_requests_total{method="GET",route="/healthz",status="200"}' in answer.text


def test_metrics_on_their_own_address_while_the_app_runs() -> None:
    address = f"127.0.0.1:{free_port()}"
    with _client(metrics_address=address) as client:
        own = httpx.get(f"http://{address}/metrics", timeout=5)
        on_api = client.get("/metrics")

    assert own.status_code == 200 and "radmon_http_requests_total" in own.text
    assert on_api.status_code == 401
    with pytest.raises(httpx.TransportError):  # the listener stops with the app
        httpx.get(f"http://{address}/metrics", timeout=2)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("metrics_token", "short", "RADMON_METRICS_TOKEN: must be at least 16 characters"),
        ("metrics_address", "9464", "RADMON_METRICS_ADDRESS: must be host:port"),
        ("metrics_address", "127.0.0.1:99999", "RADMON_METRICS_ADDRESS: must be host:port"),
    ],
)
def test_bad_metrics_settings_name_the_variable(setting: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(secret_key=SECRET_KEY, **{setting: value})
