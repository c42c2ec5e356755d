"""Deployers: run a built image. Built-in: ``local`` (a quick local check, not a container)
and ``job`` (needs a Kubernetes cluster; the Kubernetes deployers come in a later version)."""

from ._base import Deployer, PodSpecMutator, image_of, resolve_pod_spec_mutators
from .job import Job, find_kube_config
from .local import LocalDeployer, LocalRun

__all__ = [
    "Deployer",
    "Job",
    "LocalDeployer",
    "LocalRun",
    "PodSpecMutator",
    "find_kube_config",
    "image_of",
    "resolve_pod_spec_mutators",
]
