"""Progress of a long grading run, for a person at a terminal or for a log file.

On a terminal: a tqdm bar with the rate, the time left, and the submissions being graded
right now with how long each has been running. Not on a terminal (a log, CI, ``nohup``):
plain dated lines, one at start, one every ``log_seconds`` and one at the end, each with
the count, the rate, the time left and the running submissions. In both, a line of its own
for each submission stopped by a limit (time, memory, output) or not graded.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """``start(label)`` when a submission starts, ``done(label, note)`` when it ends,
    ``tick()`` now and then, ``close()`` at the end."""

    def __init__(
        self, total: int, what: str = "graded", stream: TextIO | None = None, log_seconds: float = 30
    ):
        self.total = total
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_seconds = log_seconds
        self.started = time.monotonic()
        self.running: dict[str, float] = {}
        self.count = 0
        self._last_log = 0.0
        self.bar = (
            tqdm(total=total, unit="sub", file=self.stream, dynamic_ncols=True, smoothing=0.05, desc=what)
            if self.tty
            else None
        )
        if not self.tty:
            self._log(f"{self.what}: 0/{total}")

    # -- events --------------------------------------------------------------------------
    def start(self, label: str) -> None:
        self.running[label] = time.monotonic()
        self.tick()

    def done(self, label: str, note: str = "") -> None:
        self.running.pop(label, None)
        self.count += 1
        if note:
            self.line(f"{label}: {note}")
        if self.bar is not None:
            self.bar.update(1)
        self.tick(force=self.count == self.total)

    def line(self, text: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self._log(text)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.bar is not None:
            self.bar.set_postfix_str(self._running_text(now, 3), refresh=True)
        elif force or now - self._last_log >= self.log_seconds:
            self._log(self.summary(now))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._log(self.summary(time.monotonic()) + " (finished)")

    # -- text ----------------------------------------------------------------------------
    def rate(self, now: float) -> float:
        """Submissions per minute so far."""
        return 60 * self.count / max(now - self.started, 1e-9)

    def summary(self, now: float) -> str:
        rate = self.rate(now)
        left = (self.total - self.count) / rate * 60 if rate > 0 else float("nan")
        eta = tqdm.format_interval(left) if left == left else "?"
        running = self._running_text(now, 5)
        text = f"{self.what}: {self.count}/{self.total}, {rate:.1f}/min, {eta} left"
        return text + (f"; running: {running}" if running else "")

    def _running_text(self, now: float, n: int) -> str:
        items = sorted(self.running.items(), key=lambda kv: kv[1])
        shown = [f"{label} ({now - t:.0f}s)" for label, t in items[:n]]
        more = len(items) - len(shown)
        return ", ".join(shown) + (f" +{more} more" if more > 0 else "")

    def _log(self, text: str) -> None:
        self._last_log = time.monotonic()
        stamp = time.strftime("%H:%M:%S")
        self.stream.write(f"[{stamp}] {text}\n")
        self.stream.flush()
