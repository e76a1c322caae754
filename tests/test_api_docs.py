"""Issue 12 item 7: /api/docs (Swagger UI) and /api/redoc render from radmon's own assets, on a
network with no way out (every non-loopback request is blocked in the browser test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from monitor.config import load_settings
from monitor.main import create_app
from tests.live_server import PSEUDONYM_KEY, SECRET_KEY, served_in_thread

PAGES = {"/api/docs": "swagger-ui-bundle.js", "/api/redoc": "redoc.standalone.js"}


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app(load_settings(secret_key=SECRET_KEY, pseudonym_key=PSEUDONYM_KEY))


@pytest.mark.parametrize("path", list(PAGES))
def test_the_docs_pages_name_only_local_assets(app: Any, path: str) -> None:
    with TestClient(app) as client:
        page = client.get(path)
        asset = client.get(f"/api/docs-assets/{PAGES[path]}")

    assert page.status_code == 200 and f'src="/api/docs-assets/{PAGES[path]}"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no web fonts
    assert asset.status_code == 200 and len(asset.content) > 500_000
    policy = page.headers["content-security-policy"]
    assert (
        "default-src 'none'" in policy
        and "frame-ancestors 'none'" in policy
        and "unsafe-inline'" not in (policy.split("script-src")[1].split(";")[0])
    )


@pytest.fixture(scope="module")
def base_url(app: Any) -> Iterator[str]:
    with served_in_thread(app, name="docs-live-server") as url:
        yield url


def test_both_docs_render_in_chromium_with_the_outside_network_blocked(base_url: str) -> None:
    from tests.dashboard.test_browser import CHROMIUM, LAUNCH_ARGS, playwright_api

    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium is required in CI and missing at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    outside: list[str] = []
    problems: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        context = browser.new_context(base_url=base_url)
        context.route("**/*", only_loopback)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

        page.goto("/api/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        swagger_title = page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector('[data-path="/api/v1/inferences"]', timeout=30_000)

        page.goto("/api/redoc")
        page.wait_for_selector("h1", timeout=30_000)
        redoc_title = page.inner_text("h1")
        page.get_by_text("/api/v1/inferences").first.wait_for(timeout=30_000)
        browser.close()

    assert swagger_title.startswith("radmon") and redoc_title.startswith("radmon")
    # ReDoc's "API docs by Redocly" badge points at its CDN; the policy refuses it before any request.
    refused_badge = [p for p in problems if "cdn.redoc.ly" in p and "Content Security Policy" in p]
    assert outside == [] and [p for p in problems if p not in refused_badge] == []
