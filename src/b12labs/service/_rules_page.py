"""HTML pages for ``GET /rules`` and ``GET /rules/{CODE}``, rendered from the rule catalogue
(:data:`b12labs.rules.CATALOGUE`), so a wheel without the ``docs/`` folder can serve them.

Cards link here (``source.url``, ``links``); EHRs open these URLs in a browser, so the pages
are static, need no authentication and contain no patient data. Every catalogue string is
HTML-escaped and the response carries a restrictive Content-Security-Policy.
"""

from __future__ import annotations

import functools
from html import escape
from typing import Final

from .._version import __version__
from ..rules import CATALOGUE, Rule

__all__ = ["HTML_HEADERS", "rule_page", "rules_index"]

HTML_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=3600",
}

_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;"
    "line-height:1.45;color:#222}code{background:#f3f3f3;padding:0 .2em}"
    ".sev{display:inline-block;padding:0 .5em;border-radius:.3em;color:#fff}"
    ".info{background:#3b6ea5}.warning{background:#b8860b}.critical{background:#b22222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>\n{body}\n"
        f"<hr><p><small>b12labs {escape(__version__)}: clinical decision support, "
        "not a diagnosis.</small></p></body></html>\n"
    )


def _by_code() -> dict[str, Rule]:
    return {r.code: r for r in CATALOGUE}


@functools.cache
def rule_page(code: str) -> str | None:
    """The page of one rule, or ``None`` for an unknown code."""
    rule = _by_code().get(code)
    if rule is None:
        return None
    sev = rule.severity.value
    parts = [
        '<p><a href="../rules">All rules</a></p>',
        f"<h1><code>{escape(rule.code)}</code></h1>",
        f"<p><strong>{escape(rule.title)}</strong></p>",
        "<table>",
        f"<tr><th>Area</th><td>{escape(rule.area)}</td></tr>",
        f'<tr><th>Severity</th><td><span class="sev {escape(sev)}">{escape(sev)}</span>'
        + (f" {escape(rule.severity_note)}" if rule.severity_note else "")
        + "</td></tr>",
        "</table>",
        "<h2>Why</h2>",
        f"<p>{escape(rule.why)}</p>",
    ]
    if rule.actions:
        parts.append("<h2>Recommended next steps</h2><ul>")
        for a in rule.actions:
            kind = {"order_test": "Order", "review": "Review", "avoid": "Avoid"}.get(a.kind, a.kind)
            loinc = f" (LOINC <code>{escape(a.loinc)}</code>)" if a.loinc else ""
            parts.append(f"<li>{escape(kind)}: {escape(a.test)}{loinc}</li>")
        parts.append("</ul>")
    parts.append("<h2>Sources</h2><ol>")
    parts += [f"<li>{escape(s)}</li>" for s in rule.citations()]
    parts.append("</ol>")
    return _page(f"b12labs rule {rule.code}", "\n".join(parts))


@functools.cache
def rules_index() -> str:
    """The list of every rule."""
    rows = [
        f'<tr><td><a href="rules/{escape(r.code)}"><code>{escape(r.code)}</code></a></td>'
        f'<td>{escape(r.area)}</td><td><span class="sev {escape(r.severity.value)}">'
        f"{escape(r.severity.value)}</span></td><td>{escape(r.title)}</td></tr>"
        for r in CATALOGUE
    ]
    body = (
        "<h1>b12labs rule catalogue</h1>\n<table><tr><th>Code</th><th>Area</th><th>Severity</th>"
        "<th>Title</th></tr>\n" + "\n".join(rows) + "\n</table>"
    )
    return _page("b12labs rule catalogue", body)
