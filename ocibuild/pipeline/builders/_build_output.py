"""The engine's build output: steps as progress, the image ID, and a failed step in one line.

Three dialects arrive on ``POST /build``:

- dockerd's legacy builder: ``{"stream": "Step 2/5 : RUN ...\\n"}``, then the step's output
  as more ``stream`` text, ``{"aux": {"ID": "sha256:..."}}`` at the end; a failure is an
  ``errorDetail`` message saying the command and its exit code;
- podman: the same shape, steps spelled ``STEP 2/5: RUN ...``;
- BuildKit (``version=2``): ``moby.buildkit.trace`` messages whose ``aux`` is a protobuf
  (:mod:`._buildkit`), the image ID under ``moby.image.id``; a failed step carries its error.

Each step is one INFO record of ``ocibuild.builders`` as it starts (a terminal shows them);
the last lines of each step's output are kept, so a failure names the step, its command and
what it printed last.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...oci import Digest
from .._errors import DockerBuildError
from ._buildkit import TRACE_ID, Vertex, decode_trace

__all__ = ["BuildOutput", "DockerBuildError"]

_log = logging.getLogger("ocibuild.builders")
_TAIL = 8  # output lines a failure shows
_TAIL_CHARS = 600
_STEP = re.compile(r"^(?:Step|STEP) (\d+)/(\d+) ?: ?(.*)$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]{12,64})\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The legacy builder's own lines between a step's output lines.
_BOOKKEEPING = re.compile(
    r"^(---> |Running in [0-9a-f]+$|Removing intermediate container |Using cache$)"
)


@dataclass
class _Step:
    name: str
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL))
    partial: str = ""

    def write(self, text: str) -> None:
        """Output of the step, in chunks that need not end at line ends."""
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            clean = _ANSI.sub("", line).rstrip("\r").strip()
            if clean:
                self.tail.append(clean)

    def last_lines(self) -> tuple[str, ...]:
        self.write("\n")
        return tuple(self.tail)


class BuildOutput:
    """Reads the build messages one at a time; :meth:`result` gives the image ID or raises."""

    def __init__(self) -> None:
        self.image_id: Digest | None = None
        self._steps: dict[str, _Step] = {}  # BuildKit: by vertex digest; legacy: by number
        self._current: _Step | None = None
        self._failed: tuple[_Step, str] | None = None
        self._error: str | None = None
        self._short_id: str | None = None

    def feed(self, message: Mapping[str, Any]) -> None:
        """One JSON message of the build stream."""
        if message.get("id") == TRACE_ID and "aux" in message:
            self._trace(message["aux"])
            return
        aux = message.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            self.image_id = Digest.parse(aux["ID"])
        detail = message.get("errorDetail")
        error = message.get("error")
        if isinstance(detail, Mapping) and detail.get("message"):
            self._error = str(detail["message"])
        elif isinstance(error, str) and error:
            self._error = error
        stream = message.get("stream")
        if isinstance(stream, str):
            self._legacy(stream)

    def result(self) -> Digest:
        """The built image's ID; a failed step or a silent engine is :class:`DockerBuildError`."""
        if self._error is not None or self._failed is not None:
            raise self._failure()
        if self.image_id is None:
            raise DockerBuildError(
                "the engine ended the build without naming the image it built"
                + (f" (it said it built {self._short_id})" if self._short_id else "")
            )
        return self.image_id

    @property
    def failed(self) -> bool:
        """Whether the engine reported an error."""
        return self._error is not None or self._failed is not None

    @property
    def short_id(self) -> str | None:
        """The ID a ``Successfully built ID`` line named (podman may send only that)."""
        return self._short_id

    # -- legacy builder and podman ----------------------------------------------------

    def _legacy(self, text: str) -> None:
        for line in text.splitlines(keepends=True):
            stripped = line.strip()
            match = _STEP.match(stripped)
            if match:
                number, total, instruction = match.groups()
                self._finish_partial()
                self._current = _Step(f"[{number}/{total}] {instruction}")
                self._steps[number] = self._current
                _log.info("%s", self._current.name)
                continue
            built = _BUILT.match(stripped)
            if built:
                self._short_id = built.group(1)
            if self._current is not None and not _BOOKKEEPING.match(stripped):
                self._current.write(line)

    def _finish_partial(self) -> None:
        if self._current is not None:
            self._current.write("\n")

    # -- BuildKit ---------------------------------------------------------------------

    def _trace(self, aux: object) -> None:
        status = decode_trace(aux)
        for vertex in status.vertexes:
            self._vertex(vertex)
        for log in status.logs:
            step = self._steps.get(log.vertex)
            if step is not None:
                step.write(log.data.decode("utf-8", "replace"))

    def _vertex(self, vertex: Vertex) -> None:
        step = self._steps.get(vertex.digest)
        if step is None:
            if not (vertex.started or vertex.cached or vertex.error):
                return
            step = self._steps[vertex.digest] = _Step(vertex.name)
            if not vertex.name.startswith("[internal]"):
                _log.info("%s%s", vertex.name, " (cached)" if vertex.cached else "")
        if vertex.error and self._failed is None:
            self._failed = (step, vertex.error)

    # -- the one line ---------------------------------------------------------------------

    def _failure(self) -> DockerBuildError:
        if self._failed is not None:
            step, error = self._failed
        elif self._current is not None:
            step, error = self._current, self._error or "failed"
        else:
            return DockerBuildError(f"the engine could not build the image: {self._error}")
        if self._error and self._error != error and error not in self._error:
            error = f"{error} ({self._error})" if len(self._error) < 200 else error
        lines = step.last_lines()
        # BuildKit's last output line often is the error itself.
        shown = [line for line in lines if line.strip() != error.strip()]
        tail = " | ".join(shown)
        if len(tail) > _TAIL_CHARS:
            tail = "..." + tail[-_TAIL_CHARS:]
        message = f"the build failed at step {step.name}: {' '.join(error.split())}"
        if tail:
            message += f"; its last output: {tail}"
        return DockerBuildError(message, step=step.name, output=lines)
