"""What the browser tests share: the built site served on the loopback, one headless
Chromium, offline contexts. The fixtures themselves (``base_url``, ``browser``,
``new_context``) are in ``tests/conftest.py``, so that every test module uses the same
session-wide instances (Playwright's sync API allows one running instance per thread).
"""

from __future__ import annotations

import http.server
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
AXE_JS = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".ipynb": "application/x-ipynb+json", ".md": "text/markdown"}  # fmt: skip

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@dataclass
class Offline:
    """Blocks every request that is not for 127.0.0.1 and remembers it."""

    blocked: list[str] = field(default_factory=list)

    def __call__(self, route) -> None:  # noqa: ANN001
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("internetdisconnected")
