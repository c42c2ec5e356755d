"""One measured sample, as stored in the JSON results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .measure import Measured

__all__ = ["Sample", "combine"]


@dataclass(frozen=True)
class Sample:
    """One timed run of one tool (or limit) on one payload."""

    payload: str  # "a".."d"
    series: str  # "ocibuild-gzip", "fairing", "umoci+skopeo", "limit-gzip", ...
    mode: str  # "cold", "warm", "noop", or "once" for limits
    round: int
    wall: float
    user: float
    sys: float
    max_rss_mb: float
    payload_bytes: int
    registry_cpu: float | None = None  # CPU seconds the registry spent during the run
    blob_bytes: int | None = None
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds of named steps
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        """User plus system CPU seconds of the tool's processes."""
        return self.user + self.sys

    def as_json(self) -> dict[str, Any]:
        """A plain dict for the results file."""
        return {
            "payload": self.payload,
            "series": self.series,
            "mode": self.mode,
            "round": self.round,
            "wall": round(self.wall, 4),
            "cpu": round(self.cpu, 4),
            "user": round(self.user, 4),
            "sys": round(self.sys, 4),
            "max_rss_mb": round(self.max_rss_mb, 1),
            "payload_bytes": self.payload_bytes,
            "registry_cpu": None if self.registry_cpu is None else round(self.registry_cpu, 3),
            "blob_bytes": self.blob_bytes,
            "phases": self.phases,
            "info": self.info,
        }


def combine(*runs: Measured) -> Measured:
    """Several processes run one after another, counted as one: times add, RSS is the max."""
    return Measured(
        argv=tuple(a for r in runs for a in (*r.argv, "&&"))[:-1],
        returncode=next((r.returncode for r in runs if r.returncode), 0),
        wall=sum(r.wall for r in runs),
        user=sum(r.user for r in runs),
        sys=sum(r.sys for r in runs),
        max_rss_kib=max(r.max_rss_kib for r in runs),
        stdout="".join(r.stdout for r in runs),
        stderr="".join(r.stderr for r in runs),
    )
