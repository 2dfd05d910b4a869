"""Progress of a long pass over files: on a terminal a line redrawn in place (files done,
files per second); otherwise, as in a batch job's log, one log line per tenth."""
from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


class Progress:
    """Call advance(n) as files finish and close() at the end."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None):
        self.what, self.total, self.done = what, total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.started = time.perf_counter()
        self.tenths = 0

    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.started, 1e-9)

    def line(self) -> str:
        return f"{self.what}: {self.done:,}/{self.total:,} files ({self.rate():,.0f} files/s)"

    def advance(self, count: int) -> None:
        self.done += count
        if self.live:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            return
        tenths = self.done * 10 // max(self.total, 1)
        if tenths > self.tenths:
            self.tenths = tenths
            log.info(self.line())

    def close(self) -> float:
        """End the line on a terminal; the seconds the pass took."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
        return time.perf_counter() - self.started
