"""What every builder is: ``build()`` gives the written image, pinned by digest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ...oci import Digest
from .._context import RUNTIME_ENV, BuildContext

if TYPE_CHECKING:
    from ...image._write import WriteResult

__all__ = ["BuildResult", "Builder", "pod_spec_for"]


@dataclass(frozen=True)
class BuildResult:
    """A built image: where it was written (with ``@digest``) and what went into it."""

    image: str  # e.g. "registry:5000/team/job:3f2a...@sha256:..." or "oci:DIR:TAG@sha256:..."
    digest: Digest
    pushed: bool  # written to a registry (as opposed to a local layout or archive)
    context: BuildContext
    write: WriteResult | None = None  # per-blob details, for --json


@runtime_checkable
class Builder(Protocol):
    """Builds the context a preprocessor made into an image and writes it somewhere."""

    def build(self) -> BuildResult:
        """Preprocess, build and write; return the image pinned by digest."""
        ...

    def generate_pod_spec(self, image: str | None = None) -> dict[str, Any]:
        """A Kubernetes PodSpec (JSON form) that runs the last built image's command."""
        ...


def pod_spec_for(image: str, context: BuildContext) -> dict[str, Any]:
    """The PodSpec Fairing's builders generated: one container running the context's command."""
    return {
        "containers": [
            {
                "name": "main",
                "image": image,
                "command": list(context.command),
                "workingDir": context.workdir,
                "env": [{"name": k, "value": v} for k, v in RUNTIME_ENV.items()],
            }
        ]
    }
