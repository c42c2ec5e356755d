"""Deployers: run a built image. Built-in: ``local`` (a quick local check, not a container)
and ``job`` (needs a Kubernetes cluster; the Kubernetes deployers come in a later version)."""

from ._base import Deployer, PodSpecMutator, check_pod_spec_mutators, image_of
from .job import Job, find_kube_config
from .local import LocalDeployer, LocalRun

__all__ = [
    "Deployer",
    "Job",
    "LocalDeployer",
    "LocalRun",
    "PodSpecMutator",
    "check_pod_spec_mutators",
    "find_kube_config",
    "image_of",
]
