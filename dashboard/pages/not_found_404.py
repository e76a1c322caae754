"""The page shown for a dashboard path that does not exist."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html
from dash.development.base_component import Component

from dashboard.components.widgets import empty_state, page_header

dash.register_page(__name__, path="/404", name="Not found", title="Not found · radmon")


def layout(**_query: Any) -> Component:
    return html.Div(
        [
            page_header("Page not found"),
            empty_state(
                "There is no dashboard page at this address.",
                ["Go back to the ", dcc.Link("overview", href=dash.get_relative_path("/")), "."],
                id="notfound-empty",
            ),
        ]
    )
