"""Reading the built book's pages back as HTML and as text, for the tests that check what a
page says (tests/test_book_*.py). The built site comes from the ``site_dir`` fixture in
tests/conftest.py; the browser tests' helpers are in tests/site_browser.py.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

NUMBER = r"(-?[\d.,]+(?:e[-+]?\d+)?)"
"""A number as a page prints it (thousands commas, decimals, an exponent), as one group."""

ROOT_PAGES = ("intro",)
"""Pages built at the top of the site; every other page is in ``chapters/``."""


def read_page(site_dir: Path, page: str) -> str:
    """The built HTML of ``page`` (``"theory"`` is chapters/theory.html, ``"intro"`` the landing page)."""
    path = site_dir / f"{page}.html" if page in ROOT_PAGES else site_dir / "chapters" / f"{page}.html"
    assert path.exists(), f"{path} was not built"
    return path.read_text(encoding="utf-8")


def main_text(page_html: str) -> str:
    """The visible text of a page's ``<main>`` (no scripts or styles), whitespace collapsed."""
    main = page_html.split("<main", 1)[-1]
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", main, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return re.sub(r"\s+", " ", text)


def find(pattern: str, text: str) -> re.Match:
    """The first match of ``pattern`` in ``text``; fails the test, naming the pattern, if none."""
    m = re.search(pattern, text)
    assert m, f"not found on the page: {pattern!r}"
    return m


def to_number(s: str) -> float:
    """A number captured by :data:`NUMBER`, thousands commas removed."""
    return float(s.replace(",", ""))


def table_rows(page_html: str) -> list[list[str]]:
    """Cells of every body row of every table on the page, as text."""
    rows = []
    for body in re.findall(r"<tbody>(.*?)</tbody>", page_html, flags=re.S):
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)
            text = [html.unescape(re.sub(r"<[^>]+>", " ", c)) for c in cells]
            rows.append([re.sub(r"\s+", " ", t).strip() for t in text])
    return rows
