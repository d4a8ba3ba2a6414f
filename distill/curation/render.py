"""Untrusted model text → safe HTML: markdown (raw HTML disabled), math kept verbatim for
KaTeX to typeset in the browser, and nh3 as the last word on what may appear.

Math is cut out before markdown sees it (markdown would eat the backslashes and underscores of
LaTeX) and put back HTML-escaped inside ``<span class="math">``; KaTeX's auto-render then finds
the delimiters in the text nodes.
"""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt

MAX_CHARS = 400_000  # a trace longer than this is cut (the raw text stays downloadable)

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_MATH = re.compile(r"(\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$])\$[^$\n]+?\$)", re.S)
_TAGS = {"p", "br", "hr", "pre", "code", "em", "strong", "ul", "ol", "li", "blockquote", "h1",
         "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "span", "del",
         "a"}
_ATTRS = {"span": {"class"}, "code": {"class"}, "a": {"href"}}


def render_markdown(text: str | None) -> tuple[str, bool]:
    """(safe HTML, truncated?)."""
    text = text or ""
    truncated = len(text) > MAX_CHARS
    if truncated:
        text = text[:MAX_CHARS]
    math: list[str] = []

    def stash(m: re.Match) -> str:
        math.append(m.group(0))
        return f"\ue000MATH{len(math) - 1}\ue001"

    # Code blocks keep their dollars: only cut math outside fenced code.
    parts = re.split(r"(```.*?```)", text, flags=re.S)
    masked = "".join(p if p.startswith("```") else _MATH.sub(stash, p) for p in parts)
    out = _MD.render(masked)
    out = re.sub(r"\ue000MATH(\d+)\ue001",
                 lambda m: f'<span class="math">{html.escape(math[int(m.group(1))])}</span>', out)
    safe = nh3.clean(out, tags=_TAGS, attributes=_ATTRS, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer nofollow")
    return safe, truncated
