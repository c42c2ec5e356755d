"""What deployers share: reading a pod spec, checking pod spec mutators."""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import PipelineError
from .._protocols import PodSpec, PodSpecMutator

__all__ = ["check_pod_spec_mutators", "image_of"]


def image_of(pod_spec: PodSpec) -> str:
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
