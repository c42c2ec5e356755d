"""What an executor pod's end says: the digest it pushed (its termination message), or the
error line of a failed build (its log, else the log's end that ``FallbackToLogsOnError``
puts in the termination message)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..._errors import OCIBuildError
from ...oci import Digest
from .._errors import PipelineError

__all__ = [
    "ClusterBuildError",
    "build_failure",
    "error_line",
    "reported_digest",
    "termination_message",
]

# An executor's error lines: Kaniko's "error building image: ...", logrus' "ERRO[0003] ..."
# and level=error/fatal, buildctl's "error: failed to solve: ...".
_ERROR_LINE = re.compile(r"^(error\b|erro\[|fata\[|.*\blevel=(error|fatal)\b)", re.IGNORECASE)


class ClusterBuildError(PipelineError):
    """The executor's build failed: ``line`` is its own error line (the message ends with it),
    ``log_tail`` the end of its log."""

    def __init__(self, message: str, *, line: str | None = None, log_tail: Sequence[str] = ()):
        super().__init__(message)
        self.line = line
        self.log_tail = list(log_tail)


def build_failure(
    executor: str, destination: str, lines: list[str], message: str, status: str
) -> ClusterBuildError:
    """The error of a failed build: its line is the executor's last error line (of its log,
    else of its termination message), else its last line."""
    tail = [line for line in message.splitlines() if line.strip()]
    line = error_line(lines) or error_line(tail) or (lines or tail or [status])[-1]
    return ClusterBuildError(
        f"{executor} could not build {destination}: {line.strip()}",
        line=line.strip(),
        log_tail=lines[-20:],
    )


def termination_message(pod: Mapping[str, Any]) -> str:
    """The termination message of the pod's (first ended) container; empty when none."""
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated:
            return str(terminated.get("message") or "")
    return ""


def reported_digest(message: str, what: str) -> Digest:
    """The sha256 digest the executor reported, checked well-formed (``what``: the Job)."""
    text = message.strip()
    try:
        digest = Digest.parse(text)
    except OCIBuildError:
        digest = None
    if digest is None or digest.algorithm != "sha256" or len(digest.hex) != 64:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ClusterBuildError(
            f"{what} succeeded but reported {shown!r} as the pushed digest, which is not one "
            "(the executor writes it to /dev/termination-log)"
        )
    return digest


def error_line(lines: Sequence[str]) -> str | None:
    """The last of ``lines`` an executor writes for an error, if any."""
    for line in reversed(lines):
        if _ERROR_LINE.match(line.strip()):
            return line
    return None
