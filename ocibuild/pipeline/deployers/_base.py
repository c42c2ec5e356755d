"""What every deployer is: ``deploy(pod_spec, context)`` runs the built image somewhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from .._context import BuildContext
from .._errors import PipelineError

__all__ = ["Deployer", "PodSpecMutator", "check_pod_spec_mutators", "image_of"]

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


def check_pod_spec_mutators(items: Sequence[PodSpecMutator] | None) -> list[PodSpecMutator]:
    """Mutators as callables; a name is resolved by the pipeline (``create``), not here."""
    out: list[PodSpecMutator] = []
    for item in items or ():
        if not callable(item):
            raise PipelineError(
                f"pod spec mutator {item!r} is not callable: pass a function, or give its "
                "plugin name through config.set_deployer() or ocibuild.run()"
            )
        out.append(item)
    return out
