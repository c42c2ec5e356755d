"""Progress on a terminal: blobs done, bytes moved and speed, on one self-rewriting line."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

from ..image._inspect import human_bytes

__all__ = ["TerminalProgress"]


@dataclass
class _Blob:
    label: str
    done: int
    total: int | None


class TerminalProgress:
    """Draws ``[3/5 layers] 120.4 MiB 98.1 MiB/s <current>`` on stderr, up to 10 times a second."""

    def __init__(self, stream: TextIO | None = None, *, verb: str = "writing") -> None:
        self.stream = stream or sys.stderr
        self.verb = verb
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.total = 0
        self.done = 0
        self.seen = 0
        self.active: dict[str, _Blob] = {}
        self.outcomes: dict[str, int] = {}

    def blob_started(self, key: str, label: str, total: int | None) -> None:
        with self.lock:
            self.seen += 1
            self.active[key] = _Blob(label, 0, total)
            self._draw()

    def blob_advanced(self, key: str, nbytes: int) -> None:
        with self.lock:
            self.total += nbytes
            if key in self.active:
                self.active[key].done += nbytes
            self._draw()

    def blob_finished(self, key: str, outcome: str) -> None:
        with self.lock:
            self.done += 1
            self.active.pop(key, None)
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            self._draw(force=True)

    def close(self) -> None:
        """Finish the line (call once the work is over)."""
        with self.lock:
            if self.last_draw:
                self._draw(force=True)
                self.stream.write("\n")
                self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        elapsed = max(now - self.started, 1e-6)
        current = ""
        if self.active:
            blob = next(iter(self.active.values()))
            name = blob.label if len(blob.label) <= 40 else "..." + blob.label[-37:]
            size = human_bytes(blob.done)
            if blob.total is not None:
                size += f"/{human_bytes(blob.total)}"
            more = f" (+{len(self.active) - 1} more)" if len(self.active) > 1 else ""
            current = f"{name} {size}{more}"
        line = (
            f"{self.verb} [{self.done}/{self.seen} layers] {human_bytes(self.total)} "
            f"{human_bytes(self.total / elapsed)}/s {current}"
        )
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()
