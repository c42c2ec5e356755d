"""Applying pod spec mutators (placeholder until the mutator helpers land)."""

from __future__ import annotations

from collections.abc import Sequence

from .._protocols import PodSpec, PodSpecMutator

__all__ = ["apply_pod_spec_mutators"]


def apply_pod_spec_mutators(
    mutators: Sequence[PodSpecMutator], pod_spec: PodSpec, namespace: str | None, backend: object
) -> PodSpec:
    """Apply ``mutators`` in order to ``pod_spec``, in place."""
    for mutator in mutators:
        mutator(pod_spec, namespace)
    return pod_spec
