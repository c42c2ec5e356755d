"""Pod specs for the mutator tests, and applying mutators to them."""

from __future__ import annotations

from typing import Any, cast

from ocibuild.kubernetes.utils import apply_pod_spec_mutators
from ocibuild.pipeline import PodSpec


def two_containers() -> PodSpec:
    """What a builder makes, with a sidecar: both containers must get every edit."""
    return {
        "containers": [
            {
                "name": "main",
                "image": "registry.test/job@sha256:" + "a" * 64,
                "command": ["python", "train.py"],
                "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
            },
            {"name": "sidecar", "image": "registry.test/side:1"},
        ]
    }


def apply(mutators: list[Any], spec: PodSpec, namespace: str | None = "team") -> dict[str, Any]:
    """The mutated spec, as a plain dict to index freely."""
    return cast("dict[str, Any]", apply_pod_spec_mutators(mutators, spec, namespace))


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env from secret keys: variable -> its secretKeyRef."""
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
