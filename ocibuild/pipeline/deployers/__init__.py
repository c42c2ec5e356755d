"""Deployers: run a built image. Built-in: ``local`` (a quick local check, not a container)
and ``job`` (needs a Kubernetes cluster; the Kubernetes deployers come in a later version).
What a deployer is (:class:`Deployer`, :class:`DeployHandle`) lives in :mod:`ocibuild.pipeline`.
"""

from .._protocols import Deployer, DeployHandle, DeployStatus, PodSpecMutator
from ._base import check_pod_spec_mutators, image_of
from .job import Job, find_kube_config
from .local import LocalDeployer, LocalRun

__all__ = [
    "DeployHandle",
    "DeployStatus",
    "Deployer",
    "Job",
    "LocalDeployer",
    "LocalRun",
    "PodSpecMutator",
    "check_pod_spec_mutators",
    "find_kube_config",
    "image_of",
]
