"""What the analytic pages (drift, performance, subgroups) share: the model and version pickers,
the links between the three pages, status badges, and turning service values into figure input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, ctx, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from dashboard import auth, data
from dashboard.components.widgets import empty_state, page_header
from monitor.checks.reads import SeriesRow
from monitor.checks.schemas import CheckRunOut, MetricPointOut

GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}
PAGES = (
    ("drift", "/drift", "Drift"),
    ("performance", "/performance", "Performance"),
    ("subgroups", "/subgroups", "Subgroups"),
)
STATUS_BADGES = {
    "ok": ("ok", "success"),
    "warn": ("warning", "warning"),
    "breach": ("breach", "danger"),
    "insufficient_data": ("insufficient data", "secondary"),
    "completed": ("completed", "success"),
    "failed": ("failed", "danger"),
}
# A picker's value for "no choice" (the live version with its history; the whole population): a
# dbc.Select shows an empty box for "", its hidden placeholder's value.
LIVE_HISTORY = "live"
WHOLE_POPULATION = "all"
LOOKBACK_CHOICES = (14, 30, 90)
DEFAULT_LOOKBACK = 30


def page_href(path: str, query: Mapping[str, Any]) -> str:
    pairs = {key: str(value) for key, value in query.items() if value not in (None, "")}
    return dash.get_relative_path(path) + (f"?{urlencode(pairs)}" if pairs else "")


def lookback_days(value: Any) -> int:
    """The page's look-back in days: one of LOOKBACK_CHOICES, else the default."""
    try:
        days = int(str(value))
    except (TypeError, ValueError):
        return DEFAULT_LOOKBACK
    return days if days in LOOKBACK_CHOICES else DEFAULT_LOOKBACK


def lookback_select(page: str, days: int) -> Component:
    return html.Div(
        [
            html.Label("Windows shown", htmlFor=f"{page}-days-select", className="visually-hidden"),
            dbc.Select(
                id=f"{page}-days-select",
                options=[{"label": f"last {d} days", "value": str(d)} for d in LOOKBACK_CHOICES],
                value=str(days),
                size="sm",
                style={"minWidth": "9rem"},
            ),
        ]
    )


def status_badge(status: str | None, *, id: str | None = None) -> Component:
    text, color = STATUS_BADGES.get(status or "", (status or "no data", "light"))
    props: dict[str, Any] = {"id": id} if id else {}
    return dbc.Badge(text, color=color, text_color="dark" if color in ("warning", "light") else None,
                     className="text-uppercase radmon-status-badge", **props)  # fmt: skip


def window_days(run: CheckRunOut | None) -> int | None:
    return None if run is None else round((run.window_end - run.window_start).total_seconds() / 86400)


def window_span(ends: Iterable[datetime], size_days: int | None) -> str:
    """'7-day windows ending 2026-10-28 to 2026-11-26 (UTC)': what a time-series chart covers."""
    found = sorted(ends)
    size = f"{size_days}-day windows" if size_days else "windows"
    if not found:
        return f"{size} (none in this period)"
    if found[0] == found[-1]:
        return f"{size} ending {found[0]:%Y-%m-%d} (UTC)"
    return f"{size} ending {found[0]:%Y-%m-%d} to {found[-1]:%Y-%m-%d} (UTC)"


def window_text(run: CheckRunOut) -> str:
    """'2026-11-19 to 2026-11-26 (UTC)': the window of one run."""
    return f"{run.window_start:%Y-%m-%d} to {run.window_end:%Y-%m-%d} (UTC)"


def as_dicts(points: Iterable[MetricPointOut | SeriesRow]) -> list[dict[str, Any]]:
    """Metric points (the API's or the charts' plain rows) as the mappings the figure functions take."""
    return [point.model_dump() for point in points]


def header(
    page: str, title: str, scope: data.AnalysisScope, subtitle: str, *, extra: Component | None = None
) -> Component:
    """Title, the model/version pickers (and any page control), and the links to the sibling pages."""
    prefix = page
    pickers = html.Div(
        [
            html.Label("Model", htmlFor=f"{prefix}-model-select", className="visually-hidden"),
            dbc.Select(
                id=f"{prefix}-model-select",
                options=[{"label": f"{display} ({name})", "value": name} for name, display in scope.choices],
                value=scope.model.name,
                style={"minWidth": "18rem"},
                size="sm",
            ),
            html.Label("Model version", htmlFor=f"{prefix}-version-select", className="visually-hidden"),
            dbc.Select(
                id=f"{prefix}-version-select",
                options=_version_options(scope),
                value=scope.version if scope.pinned and scope.version else LIVE_HISTORY,
                style={"minWidth": "10rem"},
                size="sm",
            ),
            extra,
        ],
        className="d-flex gap-2 flex-wrap align-items-center radmon-analysis-pickers",
    )
    links = dbc.Nav(
        [
            dbc.NavItem(
                dbc.NavLink(label, href=page_href(path, scope.query), active=key == page, id=f"{prefix}-tab-{key}")
            )
            for key, path, label in PAGES
        ],
        pills=True,
        className="radmon-analysis-tabs mb-4",
    )
    heading: list[str | Component] = [
        html.Span(scope.model.display_name, className="fw-semibold"),
        f" · {scope.model.name} · ",
        subtitle,
    ]
    return html.Div(
        [
            dcc.Location(id=f"{prefix}-location", refresh="callback-nav"),
            page_header(title, heading, actions=pickers),
            links,
            version_note(page, scope),
        ]
    )


def _version_options(scope: data.AnalysisScope) -> list[dict[str, str]]:
    """The live version with its predecessors' history first (the default), then each version alone."""
    live = scope.model.active_version
    history = (
        [{"label": f"live version {live}" + (" and earlier" if scope.switches else ""), "value": LIVE_HISTORY}]
        if live
        else []
    )
    return history + [
        {"label": f"version {v} only" + (" (live)" if v == live else ""), "value": v} for v in scope.versions
    ]


def version_note(page: str, scope: data.AnalysisScope) -> Component | None:
    """What a reader must know when the live version changed: which windows are whose, and where the switch is."""
    switches = scope.switches
    if scope.pinned:
        if scope.version == scope.model.active_version:
            return None
        return dbc.Alert(
            [f"Showing version {scope.version} only; version {scope.model.active_version or '-'} is live. ",
             dcc.Link("Show the live version with the earlier versions' history", href=page_href(f"/{page}", {"model": scope.model.name}),
                      id=f"{page}-history-link")],
            color="light", className="small py-2 border", id=f"{page}-versions-note",
        )  # fmt: skip
    if not switches:
        return None
    last = switches[-1]
    how = " (rolled back)" if _older(scope, last.version, last.previous) else ""
    return dbc.Alert(
        [
            html.Span(f"Version {last.version} live since {last.at:%Y-%m-%d %H:%M} UTC{how}, after {last.previous}. ",
                      className="fw-medium"),
            (
                f"Windows that ended before the switch show {last.previous}'s figures, later ones {last.version}'s "
                "(each window is the version live when it ended); the dashed vertical line in each chart marks the "
                "switch. Pick one version above to see its windows only."
            ),
        ],
        color="info", className="small py-2", id=f"{page}-versions-note",
    )  # fmt: skip


def _older(scope: data.AnalysisScope, version: str, than: str) -> bool:
    """Registered before `than` (versions are listed in registration order)."""
    order = {v: i for i, v in enumerate(scope.versions)}
    return order.get(version, 0) < order.get(than, 0)


def switch_marks(scope: data.AnalysisScope) -> list[dict[str, Any]]:
    """The scope's version switches as the figures' `switches` argument (none for one pinned version)."""
    if scope.pinned:
        return []
    return [{"at": s.at, "label": f"{s.version} live"} for s in scope.switches]


def no_models(page: str, title: str) -> Component:
    return html.Div(
        [
            page_header(title),
            empty_state(
                "No models registered yet",
                "Monitoring figures appear once a model is registered, receives inferences and its checks have run.",
                id=f"{page}-empty",
            ),
        ]
    )


def register_navigation(app: Dash, page: str, path: str, *, extras: tuple[str, ...] = ()) -> None:
    """Picking a model, a version or one of the page's own controls (`extras`: ids like
    "subgroups-window-select", whose query key is the middle word) reloads the page for it;
    a new model starts at its default version."""
    ids = [f"{page}-model-select", f"{page}-version-select", *extras]

    @app.callback(Output(f"{page}-location", "href"), *[Input(i, "value") for i in ids], prevent_initial_call=True)
    def navigate(model: str | None, version: str | None, *values: Any) -> str:
        auth.current_actor()
        if not model:
            raise PreventUpdate
        query: dict[str, Any] = {"model": model}
        if ctx.triggered_id != f"{page}-model-select":
            query["version"] = None if version == LIVE_HISTORY else version
            query |= {
                i.removeprefix(f"{page}-").removesuffix("-select"): None if v == WHOLE_POPULATION else v
                for i, v in zip(extras, values, strict=True)
            }
        return page_href(path, query)
