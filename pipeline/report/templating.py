"""The Jinja2 environment of the report and index: templates in ``templates/``, every
value written into them escaped."""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def _escaped(value: Any) -> Any:
    """What ``{{ value }}`` writes: markup (a macro's output, a chart) as it is, any other
    value as text escaped the way html.escape does it. MarkupSafe, which autoescape would
    use, writes a quote as &#34; and an apostrophe as &#39; where html.escape writes &quot;
    and &#x27;: escaping here keeps the bytes of pages written before the templates, so a
    rebuilt report stays byte-identical (docs/report.md). Autoescape stays on: whatever
    this returns is markup, so nothing is escaped twice."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value)))


@cache
def environment() -> Environment:
    """The templates of pipeline/report/templates/ (shipped in the wheel with the package)."""
    return Environment(
        loader=PackageLoader("pipeline.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        finalize=_escaped,
    )


def render(template: str, **context: Any) -> str:
    """The text of ``template`` with ``context``."""
    return environment().get_template(template).render(**context)
