"""Jinja2 for printable documents: one configuration for every package's templates (decision 0600)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@cache
def environment(package: str) -> Environment:
    """The templates in ``<package>/templates``: everything autoescaped (strings too: user text never passes
    unescaped), a missing name is an error rather than an empty string, block tags leave no blank lines."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
