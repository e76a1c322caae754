"""Layout at the widths a committee's screens have (issue 12, deliverable 8): at 1024 and 1440 px no
page scrolls sideways, no table hides columns behind a scrollbar or cuts a cell, and the navbar
stays on one line. On the analytic pages' simulated traffic (a scanner change at north, with the
alerts it raises), signed in as qa (who sees every action). Screenshots land in
test-artifacts/screenshots/layout-<width>-<page>.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dashboard import test_analytics_browser as analytics
from tests.dashboard.test_browser import Tab, browser  # noqa: F401 (the browser fixture)

live = analytics.live  # the simulated ich-ct with a month of daily checks and their alerts
WIDTHS = (1024, 1440)
PAGES = [
    ("overview", "/dashboard/", "#overview-sparkline-ich-ct .main-svg"),
    ("alerts", "/dashboard/alerts", "#alerts-list"),
    ("drift", "/dashboard/drift?model=ich-ct", "#drift-heatmap .main-svg"),
    ("performance", "/dashboard/performance?model=ich-ct", "#performance-cusum-graph .main-svg"),
    ("subgroups", "/dashboard/subgroups?model=ich-ct", "#subgroups-forest-graph .main-svg"),
    ("versions", "/dashboard/versions?model=ich-ct", "#versions-table"),
    ("policy", "/dashboard/policy?model=ich-ct", "#policy-window"),
    ("audit", "/dashboard/audit", "#audit-table"),
]
# Every element that hides part of its content: the page itself scrolling sideways, a box whose
# content is wider than it and that clips or scrolls it, or a cell whose text is cut. Plotly's own
# drawing and form fields (a long value in an input scrolls by design) are left out.
CLIPPED = """() => {
    const found = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth + 1) found.push(`page: ${root.scrollWidth}px wide in ${root.clientWidth}px`);
    for (const el of document.querySelectorAll('body *')) {
        if (el.closest('.js-plotly-plot, svg, input, textarea, select, .visually-hidden, .dash-debug-menu__outer')) continue;
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue;
        const style = getComputedStyle(el);
        const hides = ['hidden', 'clip', 'auto', 'scroll'].includes(style.overflowX);
        if (hides && el.scrollWidth > el.clientWidth + 1) {
            const what = el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`;
            found.push(`${what}: content ${el.scrollWidth}px in ${el.clientWidth}px: ${el.innerText.slice(0, 60)}`);
        }
    }
    return found;
}"""


@pytest.fixture
def tab(browser: object, live: analytics.Live) -> Iterator[Tab]:  # noqa: F811
    opened = Tab(browser, live.url)
    yield opened
    opened.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_clips_or_scrolls_sideways(tab: Tab, width: int) -> None:
    tab.page.set_viewport_size({"width": width, "height": 900})
    tab.sign_in("quinn")
    tab.page.wait_for_selector("#nav-user-role")  # the printed name is hidden below 1280 px
    clipped = {}

    for name, path, ready in PAGES:
        tab.open(path, ready)
        tab.screenshot(f"layout-{width}-{name}")
        found = tab.page.evaluate(CLIPPED)
        if found:
            clipped[name] = found
        navbar = tab.page.locator("nav.navbar").first.bounding_box()
        assert navbar is not None and navbar["height"] < 80, f"{name}: the navbar wraps ({navbar})"

    assert clipped == {}
    assert tab.problems == []
