"""Issue 14 item 1, the audit half: no dashboard page or email template can emit client text as
markup. Dash renders strings as text nodes; these guards keep the few ways around that closed
(tests/alerts/test_emails.py renders an alert with a hostile headline and checks the escaping)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.alerts.emails import environment

ROOT = Path(__file__).resolve().parents[2]
# Each of these renders a string as HTML (or a document) in the dashboard's origin.
RAW_HTML = re.compile(r"dangerously_allow_html|srcDoc|html\.Iframe|DangerouslySetInnerHTML|\|\s*safe\b|Markup\(")


@pytest.mark.parametrize("path", sorted((ROOT / "dashboard").rglob("*.py")), ids=lambda p: p.name)
def test_no_dashboard_module_renders_raw_html(path: Path) -> None:
    assert not RAW_HTML.findall(path.read_text()), f"{path.relative_to(ROOT)} renders raw HTML"


def test_markdown_in_the_dashboard_never_allows_html() -> None:
    for path in (ROOT / "dashboard").rglob("*.py"):
        text = path.read_text()
        assert "dcc.Markdown" not in text or "dangerously_allow_html=True" not in text, path


def test_every_html_email_template_is_autoescaped() -> None:
    env = environment()
    names = env.list_templates()
    html = [name for name in names if ".html" in name]
    assert html, names
    for name in html:
        assert env.autoescape(name) is True, name  # type: ignore[operator]
        assert not re.search(r"\|\s*safe\b|autoescape\s+false", (env.loader.get_source(env, name)[0])), name  # type: ignore[union-attr]
