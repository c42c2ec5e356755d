"""Progress for people: steps and blobs redrawn in place on a terminal, or one line each.

Three displays take the same events (:class:`ocibuild.transports.Progress`, with phases):
:class:`TerminalProgress` draws them with rich, within the terminal's width, leaving one line
per finished step or blob above a live area that holds only what is under way;
:class:`PlainProgress` writes one plain line per finished step or blob (CI logs, ``--progress
plain``); :class:`SilentProgress` shows nothing. rich is imported only by the first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ..image._inspect import human_bytes

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = ["PlainProgress", "SilentProgress", "TerminalProgress", "shorten"]


def shorten(label: str, width: int) -> str:
    """``label`` within ``width`` characters; each of several sources (``a, b``) keeps its ends."""
    if len(label) <= width:
        return label
    parts = label.split(", ")
    if len(parts) > 1:
        room = max(width - 2 * (len(parts) - 1), len(parts))
        each = max(room // len(parts), 5)
        label = ", ".join(_middle(part, each) for part in parts)
    return _middle(label, width)


def _middle(text: str, width: int) -> str:
    """``text`` cut in the middle (``/home/me/…/main.py``), where names matter least."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


@dataclass
class _Blob:
    label: str
    total: int | None
    started: float = field(default_factory=time.monotonic)
    done: int = 0


class _Tally:
    """What every display counts: blobs and their outcomes, bytes, steps, time."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.blobs: dict[str, _Blob] = {}
        self.phases: dict[str, float] = {}
        self.outcomes: dict[str, int] = {}
        self.moved = 0
        self.steps = 0  # phases finished
        self.closed = False

    def summary(self) -> str:
        """``appending: 2 blobs (1 uploaded, 1 exists), 500.0 MiB in 5.2 s``"""
        elapsed = time.monotonic() - self.started
        count = sum(self.outcomes.values())
        outcomes = ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items()))
        blobs = f"{count} blob{'s' * (count != 1)}" + (f" ({outcomes})" if outcomes else "")
        return f"{self.verb}: {blobs}, {human_bytes(self.moved)} in {elapsed:.1f} s"

    def finished_blob(self, key: str, outcome: str) -> tuple[_Blob, str]:
        blob = self.blobs.pop(key, None) or _Blob(key, None)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        size = human_bytes(blob.done) + (f" of {human_bytes(blob.total)}" if blob.total else "")
        return blob, f"{outcome} {{label}}: {size} in {time.monotonic() - blob.started:.1f} s"

    def finished_phase(self, name: str, detail: str) -> str:
        began = self.phases.pop(name, time.monotonic())
        self.steps += 1
        said = f": {detail}" if detail else ""
        return f"{name}{said} ({time.monotonic() - began:.1f} s)"


class SilentProgress:
    """``--progress none`` / ``-q``: nothing on stderr."""

    def blob_started(self, key: str, label: str, total: int | None) -> None:
        pass

    def blob_advanced(self, key: str, nbytes: int) -> None:
        pass

    def blob_finished(self, key: str, outcome: str) -> None:
        pass

    def phase_started(self, name: str) -> None:
        pass

    def phase_finished(self, name: str, detail: str) -> None:
        pass

    def close(self) -> None:
        pass

    def stop(self) -> None:
        pass


class PlainProgress(SilentProgress):
    """One line per finished step or blob, then the totals; no control codes, nothing redrawn."""

    def __init__(self, stream: TextIO, *, verb: str) -> None:
        self.stream = stream
        self.tally = _Tally(verb)

    def blob_started(self, key: str, label: str, total: int | None) -> None:
        with self.tally.lock:
            self.tally.blobs[key] = _Blob(label, total)

    def blob_advanced(self, key: str, nbytes: int) -> None:
        with self.tally.lock:
            self.tally.moved += nbytes
            if key in self.tally.blobs:
                self.tally.blobs[key].done += nbytes

    def blob_finished(self, key: str, outcome: str) -> None:
        with self.tally.lock:
            blob, line = self.tally.finished_blob(key, outcome)
            self._line(line.format(label=blob.label))

    def phase_started(self, name: str) -> None:
        with self.tally.lock:
            self.tally.phases[name] = time.monotonic()

    def phase_finished(self, name: str, detail: str) -> None:
        with self.tally.lock:
            self._line(self.tally.finished_phase(name, detail))

    def close(self) -> None:
        with self.tally.lock:
            if not self.tally.closed and (self.tally.steps or self.tally.outcomes):
                self._line(self.tally.summary())
            self.tally.closed = True

    def _line(self, text: str) -> None:
        self.stream.write(f"ocibuild: {text}\n")
        self.stream.flush()


class TerminalProgress(PlainProgress):
    """The live display: one bar per step or blob under way, a line for each one finished."""

    def __init__(self, stream: TextIO, *, verb: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        super().__init__(stream, verb=verb)
        width = _columns(stream)
        self.console = Console(file=stream, width=width, force_terminal=True, highlight=False)
        # Every column but the label has a fixed width (bar 12, "100%", "476.8/476.8 MiB",
        # "476.8 MiB/s", "0:00:03", the gaps between them): the label gets the rest, so a
        # row never wraps (a wrapped row is left behind on screen by the next redraw).
        wide = width >= 72
        self.label_width = max(width - (58 if wide else 24), 8)
        label = TextColumn(
            "{task.description}",
            table_column=Column(no_wrap=True, overflow="ellipsis", width=self.label_width),
        )
        columns: list[Any] = [label]
        if wide:
            columns += [BarColumn(bar_width=12)]
        columns += [TaskProgressColumn(), DownloadColumn(binary_units=True)]
        if wide:
            columns += [_speed_column(), TimeRemainingColumn()]
        self.bars: RichProgress = Progress(
            *columns,
            console=self.console,
            refresh_per_second=8,
            transient=True,
            # stdout holds results (a reference, JSON) even when it is this terminal too.
            redirect_stdout=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.total = self.bars.add_task(verb, total=None)
        self.bars.start()
        self.handlers = _follow_console(stream)

    def blob_started(self, key: str, label: str, total: int | None) -> None:
        super().blob_started(key, label, total)
        with self.tally.lock:
            self.tasks[key] = self.bars.add_task(shorten(label, self.label_width), total=total)
            self._recount()

    def blob_advanced(self, key: str, nbytes: int) -> None:
        super().blob_advanced(key, nbytes)
        task = self.tasks.get(key)
        if task is not None:
            self.bars.advance(task, nbytes)
        self.bars.advance(self.total, nbytes)

    def blob_finished(self, key: str, outcome: str) -> None:
        with self.tally.lock:
            blob, line = self.tally.finished_blob(key, outcome)
            task = self.tasks.pop(key, None)
            if task is not None:
                self.bars.remove_task(task)
            self._recount()
            width = self.console.width - len(line.format(label="")) - 2
            self._line(line.format(label=shorten(blob.label, max(width, 12))))

    def phase_started(self, name: str) -> None:
        super().phase_started(name)
        with self.tally.lock:
            self.tasks[f"phase {name}"] = self.bars.add_task(name, total=None)

    def phase_finished(self, name: str, detail: str) -> None:
        with self.tally.lock:
            task = self.tasks.pop(f"phase {name}", None)
            if task is not None:
                self.bars.remove_task(task)
            self._line(self.tally.finished_phase(name, detail))

    def close(self) -> None:
        """Stop drawing and leave the totals (the work is over)."""
        self.stop()
        super().close()

    def stop(self) -> None:
        """Stop drawing (and leave the cursor on a fresh line); safe to call more than once."""
        if self.bars.live.is_started:
            self.bars.stop()
            _restore(self.handlers)

    def _recount(self) -> None:
        finished = sum(self.tally.outcomes.values())
        seen = finished + len(self.tally.blobs)
        self.bars.update(self.total, description=f"{self.tally.verb} {finished}/{seen} blobs")

    def _line(self, text: str) -> None:
        # Above the live area while it draws; after it stopped, a line of its own.
        self.console.print(text, no_wrap=True, overflow="ellipsis", crop=True, markup=False)


def _speed_column() -> Any:
    """Speed in the binary units the sizes use (rich's own column speaks MB/s next to MiB)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task: Task) -> Text:
            shown = f"{human_bytes(task.speed)}/s" if task.speed else ""
            return Text(shown.rjust(11), style="progress.data.speed")

    return Speed()


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` is (not of stdin or stdout, which may be others)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError):
        return 80


def _follow_console(stream: TextIO) -> list[tuple[logging.StreamHandler[Any], Any]]:
    """Point ocibuild's log handlers that write to ``stream`` at rich's stand-in for it, so a
    warning lands above the live area instead of through it; returns what to restore."""
    import sys

    moved = []
    for name in ("ocibuild", "ocibuild.builders", "ocibuild.deployers"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                moved.append((handler, handler.setStream(sys.stderr)))
    return moved


def _restore(moved: list[tuple[logging.StreamHandler[Any], Any]]) -> None:
    for handler, stream in moved:
        handler.setStream(stream)
