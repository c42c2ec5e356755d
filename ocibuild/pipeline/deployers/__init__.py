"""Deployers: run a built image. Built-in: ``job`` (a Kubernetes batch/v1 Job), ``trainjob``
(a Kubeflow Trainer v2 TrainJob), ``pytorchjob`` and ``tfjob`` (Training Operator v1), and ``local``
(a quick local check, not a container). What a deployer is (:class:`Deployer`,
:class:`DeployHandle`) lives in :mod:`ocibuild.pipeline`.
"""

from .._protocols import Deployer, DeployHandle, DeployStatus, PodSpecMutator
from ._base import check_pod_spec_mutators, image_of
from ._kube import KubeAccess, find_kube_config
from ._workload import DryRun, KubeDeployer, Resource, WorkloadRun
from .job import Job, JobRun, job_status
from .kfserving import KFServing, KFServingRun, inference_service_status
from .kubeflow import KubeflowJob, KubeflowJobRun, PyTorchJob, TFJob, TfJob
from .local import LocalDeployer, LocalRun
from .serving import Serving, ServingRun, deployment_status
from .trainjob import TrainJob, TrainJobRun

__all__ = [
    "DeployHandle",
    "DeployStatus",
    "Deployer",
    "DryRun",
    "Job",
    "JobRun",
    "KFServing",
    "KFServingRun",
    "KubeAccess",
    "KubeDeployer",
    "KubeflowJob",
    "KubeflowJobRun",
    "LocalDeployer",
    "LocalRun",
    "PodSpecMutator",
    "PyTorchJob",
    "Resource",
    "Serving",
    "ServingRun",
    "TFJob",
    "TfJob",
    "TrainJob",
    "TrainJobRun",
    "WorkloadRun",
    "check_pod_spec_mutators",
    "deployment_status",
    "find_kube_config",
    "image_of",
    "inference_service_status",
    "job_status",
]
