"""What every deployer is: ``deploy(pod_spec, context)`` runs the built image somewhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from .._errors import PipelineError
from ..preprocessors._context import BuildContext

__all__ = ["Deployer", "PodSpecMutator", "image_of", "resolve_pod_spec_mutators"]

# Edits a PodSpec (JSON form) in place before it is deployed; namespace may be None.
PodSpecMutator = Callable[[dict[str, Any], "str | None"], None]


@runtime_checkable
class Deployer(Protocol):
    """Runs what a builder built. ``deploy`` returns a handle (a job name, a local run, ...)."""

    def deploy(self, pod_spec: dict[str, Any], context: BuildContext | None) -> Any:
        """Run the image described by ``pod_spec`` (built from ``context``, when known)."""
        ...


def image_of(pod_spec: dict[str, Any]) -> str:
    """The image of the first container of a PodSpec."""
    try:
        return str(pod_spec["containers"][0]["image"])
    except (KeyError, IndexError, TypeError) as err:
        raise PipelineError("the pod spec has no container image") from err


def resolve_pod_spec_mutators(items: Sequence[str | PodSpecMutator] | None) -> list[PodSpecMutator]:
    """Mutators given as callables, or by the name a plugin registered them under."""
    from ..plugins import lookup

    out: list[PodSpecMutator] = []
    for item in items or ():
        out.append(lookup("pod_spec_mutator", item)() if isinstance(item, str) else item)
    return out
