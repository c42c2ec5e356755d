"""The ``job`` deployer (Fairing's ``Job``), until the Kubernetes deployers land.

This version looks for a Kubernetes configuration and stops with a clear error either way:
- none found (no ``config_file``, no in-cluster ``KUBERNETES_SERVICE_HOST``, no file in
  ``KUBECONFIG``, no ``~/.kube/config``): :class:`NoClusterError`, naming where it looked and
  the image that was pushed;
- one found: :class:`DeployError` saying the Kubernetes deployers are not available in this
  version yet (run the pushed image with your own tools, or use the ``local`` deployer).
It takes Fairing's parameters so code written for Fairing's ``Job`` keeps working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._context import BuildContext
from .._errors import DeployError, NoClusterError
from .._protocols import DeployHandle, PodSpec, PodSpecMutator
from ._base import check_pod_spec_mutators, image_of

__all__ = ["Job", "find_kube_config"]


def find_kube_config(
    config_file: str | os.PathLike[str] | None = None,
) -> tuple[str | None, list[str]]:
    """The Kubernetes configuration in use (a path, or ``"in-cluster"``) and every place looked."""
    looked: list[str] = []
    if config_file is not None:
        looked.append(f"config_file {os.fspath(config_file)}")
        if Path(config_file).is_file():
            return os.fspath(config_file), looked
    looked.append("in-cluster env KUBERNETES_SERVICE_HOST")
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "in-cluster", looked
    for path in filter(None, os.environ.get("KUBECONFIG", "").split(os.pathsep)):
        looked.append(f"KUBECONFIG {path}")
        if Path(path).is_file():
            return path, looked
    default = Path.home() / ".kube" / "config"
    looked.append(str(default))
    if default.is_file():
        return str(default), looked
    return None, looked


class Job:
    """Fairing's ``Job`` deployer: a Kubernetes Job (not available in this version; see above)."""

    def __init__(
        self,
        namespace: str | None = None,
        runs: int = 1,
        output: Any = None,
        cleanup: bool = True,
        labels: Mapping[str, str] | None = None,
        job_name: str | None = None,
        stream_log: bool = True,
        deployer_type: str = "job",
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        annotations: Mapping[str, str] | None = None,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
    ) -> None:
        self.namespace = namespace
        self.runs = runs
        self.output = output
        self.cleanup = cleanup
        self.labels = {"fairing-deployer": deployer_type, **(labels or {})}
        self.job_name = job_name
        self.stream_log = stream_log
        self.deployer_type = deployer_type
        self.pod_spec_mutators = check_pod_spec_mutators(pod_spec_mutators)
        self.annotations = dict(annotations or {})
        self.config_file = config_file
        self.context = context
        self.client_configuration = client_configuration
        self.persist_config = persist_config

    def deploy(self, pod_spec: PodSpec, context: BuildContext | None = None) -> DeployHandle:
        """Stop with :class:`NoClusterError` or :class:`DeployError` (see the module doc)."""
        image = image_of(pod_spec)
        verb = "written" if image.startswith(("oci:", "docker-archive:")) else "pushed"
        found, looked = find_kube_config(self.config_file)
        if found is None:
            raise NoClusterError(
                f"no Kubernetes configuration or cluster was found (looked at "
                f"{', '.join(looked)}); the image was {verb} as {image}"
            )
        raise DeployError(
            f"a Kubernetes configuration was found ({found}), but the Kubernetes deployers "
            f"(job, ...) are not available in this version of ocibuild yet; the image was "
            f"{verb} as {image}: run it with your own tools, or use deployer 'local' for a "
            "quick local check"
        )
