"""Issue 15 ("Done when"): a crawl of every page of the demo finds no broken link. After
`create_demo`, an admin starts at / and follows same-origin links breadth-first (at most a few
hundred pages); no page answers 404 or 500."""

from __future__ import annotations

import re
from collections import Counter, deque
from html.parser import HTMLParser
from io import StringIO
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

MAX_PAGES = 400
# Pages of one kind (a dataset's problems, a run's samples, ?page=N) are many and alike: a few
# of each kind are visited, so the crawl reaches every kind of page within MAX_PAGES.
PER_KIND = 8
# Not pages to read: signing out ends the crawl's session. Django admin's own pages (one per
# object, sort order and filter) are Django's, not skyboard's: its index is checked, not crawled.
SKIP_PREFIXES = ("/logout",)
NOT_FOLLOWED = ("/admin/",)


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def same_origin_links(base: str, html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    out = []
    for href in parser.hrefs:
        url = urldefrag(urljoin(base, href)).url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "") or parts.netloc not in ("testserver", ""):
            continue
        out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


def kind(url: str) -> str:
    """``/datasets/3/problems/315/?after=50`` -> ``/datasets/N/problems/N/?after``."""
    parts = urlsplit(url)
    keys = sorted({q.split("=", 1)[0] for q in parts.query.split("&") if q})
    return re.sub(r"\d+", "N", parts.path) + ("?" + "&".join(keys) if keys else "")


def crawl(client: Client, start: str = "/", limit: int = MAX_PAGES):
    """``(visited, broken)``: every URL requested, and (url, status, found on) for each 404/500."""
    seen = {start: "(start)"}
    kinds = Counter([kind(start)])
    queue = deque([start])
    visited: list[str] = []
    broken: list[tuple[str, int, str]] = []
    while queue and len(visited) < limit:
        url = queue.popleft()
        response = client.get(url)
        visited.append(url)
        if response.status_code in (404, 500) or response.status_code >= 500:
            broken.append((url, response.status_code, seen[url]))
            continue
        if response.status_code in (301, 302) or response.streaming:
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        path = urlsplit(url).path
        if any(path.startswith(p) and path != p for p in NOT_FOLLOWED):
            continue
        for link in same_origin_links(f"http://testserver{url}", response.content.decode()):
            if link in seen or link.startswith(SKIP_PREFIXES):
                continue
            if any(link.startswith(p) and urlsplit(link).path != p for p in NOT_FOLLOWED):
                continue
            if kinds[kind(link)] >= PER_KIND:
                continue
            kinds[kind(link)] += 1
            seen[link] = url
            queue.append(link)
    return visited, broken, queue


def test_every_page_of_the_demo_has_no_broken_link(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RUNS_DIR = tmp_path / "runs"
    call_command("create_demo", stdout=StringIO())
    client = Client()
    assert client.login(username="admin", password="admin-skyboard")
    visited, broken, left = crawl(client)
    assert len(visited) > 30, visited  # the crawl reached the demo's pages, not just /
    for part in ("/curation/", "/runs/training/", "/evaluation/", "/review/", "/datasets/",
                 "/recipes/"):
        assert any(u.startswith(part) for u in visited), (part, visited)
    assert broken == [], "\n".join(f"{s} {u} (linked from {f})" for u, s, f in broken)
