"""Issue 14 finding 1: feature values posted by an ingest key reach the Evidently report as data,
never as markup or script, and the report page is sandboxed away from the dashboard's origin."""

from __future__ import annotations

import gzip
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.auth.actors import SYSTEM
from monitor.checks import flows as checks_flows
from monitor.checks import report
from monitor.checks.models import CheckReport
from monitor.checks.schemas import FeatureSpec
from tests.dashboard.conftest import dashboard_client, sign_in  # noqa: F401  (dashboard_client is a fixture)
from tests.factories import auth, make_keys, make_model, make_version
from tests.security.chain import END, HOSTILE, bind_ingest, hostile_records, insert_hostile, post_hostile, prepare

PAYLOAD = "__radmonXss"


class _Tokens(HTMLParser):
    """What a browser's tokenizer makes of a page: script element bodies, and event-handler attributes."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self._in_script = False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [(tag, name) for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _policy_hashes(policy: str) -> set[str]:
    return set(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", policy))


@pytest.fixture(scope="module")
def evidently_page() -> str:
    """Evidently's own page over a window holding every hostile value (as radmon served it before)."""
    rng = np.random.default_rng(3)
    current = pd.DataFrame({"age": rng.normal(60, 10, 400), "manufacturer": rng.choice(["GE", *HOSTILE], 400)})
    reference = pd.DataFrame({"age": rng.normal(62, 10, 400), "manufacturer": rng.choice(["GE", "Siemens"], 400)})
    columns = [
        FeatureSpec.model_construct(name="age", type="numeric"),
        FeatureSpec.model_construct(name="manufacturer", type="categorical"),
    ]
    return report._evidently_html(current.astype({"manufacturer": object}), reference, columns, {}, {})


def test_script_json_leaves_no_way_out_of_a_script_element() -> None:
    text = json.dumps({"v": "</script><!--<script>&\u2028\u2029</SCRIPT >"}, ensure_ascii=False)
    escaped = report.script_json(text)
    assert not set("<>&\u2028\u2029") & set(escaped)
    assert json.loads(escaped) == json.loads(text)  # the same values once parsed


def test_evidentlys_page_alone_lets_the_values_out(evidently_page: str) -> None:
    # The page as radmon stored it before: the tokenizer finds the attacker's script and handlers.
    tokens = _Tokens(evidently_page)
    assert any(PAYLOAD in script and "drawDashboard" not in script for script in tokens.scripts)


def test_the_stored_page_runs_only_its_own_scripts_and_shows_the_values_as_text(evidently_page: str) -> None:
    page = report.safe_page(evidently_page)
    tokens = _Tokens(page)
    assert tokens.handlers == []
    # Every script element is one of Evidently's, and the policy names exactly those.
    data, *code = tokens.scripts
    assert not any(PAYLOAD in script for script in code)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None and "'unsafe-inline'" not in policy[1].split("style-src")[0]
    assert len(_policy_hashes(policy[1])) == len(set(tokens.scripts))
    # The data block still carries every value, whole, for Evidently to draw as text.
    info = json.loads(re.search(r"var metric_[0-9a-f]+ = ([^\n]*);\n", data)[1])  # type: ignore[index]
    shown = json.dumps(info, ensure_ascii=False)
    assert all(json.dumps(value)[1:-1] in shown for value in HOSTILE)


def test_report_headers_sandbox_the_page_into_an_opaque_origin(evidently_page: str) -> None:
    policy = report.headers(report.safe_page(evidently_page))["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["sandbox"] == ["allow-scripts"]  # never allow-same-origin
    assert directives["default-src"] == ["'none'"] and directives["connect-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'self'"]
    assert all(source.startswith("'sha256-") for source in directives["script-src"])
    # A page stored by older code gets no script at all.
    assert "script-src 'none'" in report.headers(evidently_page)["Content-Security-Policy"]


def _hostile_run(client: TestClient, session: Session, keys: dict[str, str]) -> int:
    version = make_version(session, activate=True)
    prepare(session, version)
    bind_ingest(client, session)
    answer = post_hostile(client.post, keys["ingest"])
    if answer.status_code != 200 or answer.json()["accepted"] != len(hostile_records()):
        # A stricter ingest gate refused them: the report must still hold rows stored before it.
        insert_hostile(session, version)
    runs = client.post(
        "/api/v1/checks/run",
        json={"model": "ich-ct", "kinds": ["input_drift"], "window_end": END.isoformat()},
        headers=auth(keys["qa"]),
    )
    assert runs.status_code == 200, runs.text
    return int(runs.json()[0]["id"])


def test_the_api_serves_the_report_escaped_and_sandboxed(client: TestClient, session: Session) -> None:
    make_model(session)
    keys = make_keys(session)
    run_id = _hostile_run(client, session, keys)

    answer = client.get(f"/api/v1/checks/{run_id}/report", headers=auth(keys["viewer"]))

    assert answer.status_code == 200, answer.text
    assert "sandbox allow-scripts;" in answer.headers["content-security-policy"]
    tokens = _Tokens(answer.text)
    assert tokens.handlers == [] and not any(PAYLOAD in script for script in tokens.scripts[1:])
    assert _policy_hashes(answer.headers["content-security-policy"]) == _policy_hashes(
        re.search(r'content="([^"]*script-src[^"]*)"', answer.text)[1]  # type: ignore[index]
    )


def test_a_report_stored_by_older_code_is_rendered_again(client: TestClient, session: Session) -> None:
    make_model(session)
    keys = make_keys(session)
    run_id = _hostile_run(client, session, keys)
    old = f"<html><head></head><body><script>{PAYLOAD}=1</script></body></html>".encode()
    session.add(
        CheckReport(
            run_id=run_id,
            media_type="text/html",
            encoding="gzip",
            body=gzip.compress(old),
            size_bytes=len(old),
            window_rows=1,
            reference_rows=1,
            created_at=END,
        )
    )
    session.flush()

    answer = client.get(f"/api/v1/checks/{run_id}/report", headers=auth(keys["viewer"]))

    assert answer.status_code == 200 and f"<script>{PAYLOAD}=1" not in answer.text
    assert answer.text.count(report.PAGE_MARKER) == 1
    stored = session.get(CheckReport, run_id)
    assert stored is not None and report.is_current(stored)


def test_the_dashboard_serves_the_report_sandboxed_and_its_pages_under_a_strict_policy(
    dashboard_client: TestClient,  # noqa: F811
    session: Session,
) -> None:
    make_model(session)
    make_keys(session)
    version = make_version(session, activate=True)
    prepare(session, version)
    insert_hostile(session, version)
    (run,) = checks_flows.run_checks(
        session=session, actor=SYSTEM, model_name="ich-ct", kinds=["input_drift"], window_end=END
    )
    run_id = run.id
    login = dashboard_client.get("/dashboard/login")
    assert sign_in(dashboard_client, "qa-user").status_code in (302, 303)

    page = dashboard_client.get(f"/dashboard/checks/{run_id}/report")
    home = dashboard_client.get("/dashboard/")

    assert page.status_code == 200 and "sandbox allow-scripts;" in page.headers["content-security-policy"]
    assert not any(PAYLOAD in script for script in _Tokens(page.text).scripts[1:])
    for answer in (home, login):
        policy = answer.headers["content-security-policy"]
        directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
        assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
        assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    # The one inline script of Dash's index page is allowed by its hash, and nothing else inline.
    inline = [s for s in _Tokens(home.text).scripts if s.strip() and "_dash-config" not in s]
    assert inline and all(s.strip() for s in inline)
