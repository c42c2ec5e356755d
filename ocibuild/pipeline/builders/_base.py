"""What builders share: the pod spec that runs a built image's command."""

from __future__ import annotations

from .._context import RUNTIME_ENV, BuildContext
from .._protocols import PodSpec

__all__ = ["pod_spec_for"]


def pod_spec_for(image: str, context: BuildContext) -> PodSpec:
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
