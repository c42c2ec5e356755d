"""The ``pytorchjob`` and ``tfjob`` deployers (Fairing's ``PyTorchJob`` and ``TfJob``): the
image runs as a Kubeflow Training Operator v1 (``kubeflow.org/v1``) PyTorchJob or TFJob.

Both kinds are one replica map of pod templates and a ``runPolicy``; they differ by a table
(:class:`JobKind`): the map's key, the replica types, the container name the operator
requires (``pytorch``, ``tensorflow``), the default restart policy and the condition reasons.
Replica counts take Fairing's option names (``master_count``, ``worker_count``;
``chief_count``, ``ps_count``, ``worker_count``, and ``evaluator_count``); a count of 0 leaves
that replica type out.

``deploy()`` creates the job and by default follows it: every pod's log, prefixed with the
pod's name; pods in trouble reported while waiting (CrashLoopBackOff fails at once); done on
the job's ``Succeeded`` or ``Failed`` condition, a failure naming the failing pod, its exit
code and the end of its log. ``delete()`` removes the job with its pods and services.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TextIO

from .._errors import DeployError
from .._protocols import DeployStatus, PodSpec, PodSpecMutator
from ._workload import (
    Cleanup,
    KubeDeployer,
    Resource,
    WorkloadRun,
    condition_text,
    true_conditions,
)
from .job import object_metadata, pod_template, runtime_pod_spec

__all__ = [
    "PYTORCH",
    "TENSORFLOW",
    "JobKind",
    "KubeflowJob",
    "KubeflowJobRun",
    "PyTorchJob",
    "TFJob",
    "TfJob",
    "kubeflow_job_status",
]

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
# Parameter servers only hold variables: Fairing took the GPUs off their pods, and so does this.
_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
_REPLICA_TYPES = {
    "master_count": "Master",
    "chief_count": "Chief",
    "ps_count": "PS",
    "worker_count": "Worker",
    "evaluator_count": "Evaluator",
}


@dataclass(frozen=True)
class JobKind:
    """What tells one Training Operator v1 kind from another."""

    resource: Resource
    replica_key: str  # the spec key of the replica map
    container: str  # the container name the operator requires
    replica_types: tuple[str, ...]  # in the order the manifest lists them
    restart_policy: str  # the operator's default, per replica
    default_name: str


PYTORCH = JobKind(
    Resource("kubeflow.org/v1", "PyTorchJob", "pytorchjobs"),
    "pytorchReplicaSpecs",
    "pytorch",
    ("Master", "Worker"),
    "OnFailure",
    "ocibuild-pytorchjob",
)
TENSORFLOW = JobKind(
    Resource("kubeflow.org/v1", "TFJob", "tfjobs"),
    "tfReplicaSpecs",
    "tensorflow",
    ("Chief", "PS", "Worker", "Evaluator"),
    "Never",
    "ocibuild-tfjob",
)


def kubeflow_job_status(kind: str, job: Mapping[str, Any]) -> DeployStatus:
    """The phase of a Training Operator v1 job from its conditions."""
    true = true_conditions(job)
    replicas = (job.get("status") or {}).get("replicaStatuses") or {}
    counts = ", ".join(
        f"{rtype}: {r.get('active', 0)} active, {r.get('succeeded', 0)} succeeded, "
        f"{r.get('failed', 0)} failed"
        for rtype, r in sorted(replicas.items())
    )
    suffix = f" ({counts})" if counts else ""
    if "Succeeded" in true:
        return DeployStatus("succeeded", condition_text(true["Succeeded"]) + suffix)
    if "Failed" in true:
        return DeployStatus("failed", condition_text(true["Failed"]) + suffix)
    if "Suspended" in true:
        return DeployStatus("pending", "suspended")
    if "Restarting" in true:
        return DeployStatus("running", "restarting: " + condition_text(true["Restarting"]))
    if "Running" in true:
        return DeployStatus("running", condition_text(true["Running"]) + suffix)
    if "Created" in true:
        return DeployStatus("pending", f"{kind} created, its pods are starting")
    return DeployStatus("pending", f"the {kind} controller has not taken it up yet")


class KubeflowJob(KubeDeployer):
    """A Training Operator v1 job: ``replicas`` pods of each replica type, one pod template.

    A subclass sets ``job_kind`` and turns its own count options into ``replicas``.
    """

    job_kind: ClassVar[JobKind]

    def __init__(
        self,
        namespace: str | None,
        replicas: Mapping[str, int],
        *,
        runs: int = 1,
        job_name: str | None,
        restart_policy: str | None = None,
        clean_pod_policy: str | None = None,
        backoff_limit: int | None = None,
        ttl_seconds_after_finished: int | None = None,
        active_deadline_seconds: int | None = None,
        **options: Any,
    ) -> None:
        kind = self.job_kind.resource.kind
        if runs != 1:
            raise DeployError(f"runs={runs!r}: a {kind} runs once; deploy it again for another run")
        self.replicas = _checked_replicas(kind, replicas)
        if restart_policy is not None and restart_policy not in RESTART_POLICIES:
            raise DeployError(
                f"restart_policy={restart_policy!r}: use one of {', '.join(RESTART_POLICIES)}"
            )
        if clean_pod_policy is not None and clean_pod_policy not in ("None", "Running", "All"):
            raise DeployError(f"clean_pod_policy={clean_pod_policy!r}: use None, Running or All")
        for option, value, least in (
            ("backoff_limit", backoff_limit, 0),
            ("ttl_seconds_after_finished", ttl_seconds_after_finished, 0),
            ("active_deadline_seconds", active_deadline_seconds, 1),
        ):
            if value is not None and (not isinstance(value, int) or value < least):
                raise DeployError(f"{option}={value!r}: a whole number, {least} or more")
        super().__init__(namespace, name=job_name, **options)
        self.job_name = job_name
        self.restart_policy = restart_policy or self.job_kind.restart_policy
        self.run_policy: dict[str, Any] = {
            key: value
            for key, value in (
                ("cleanPodPolicy", clean_pod_policy),
                ("backoffLimit", backoff_limit),
                ("ttlSecondsAfterFinished", ttl_seconds_after_finished),
                ("activeDeadlineSeconds", active_deadline_seconds),
            )
            if value is not None
        }

    def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> list[dict[str, Any]]:
        """The job: one replica spec per replica type, the first container renamed to the
        name the operator requires."""
        kind = self.job_kind
        # ExitCode is the operator's own policy: it runs the pods with Never.
        pod_policy = "Never" if self.restart_policy == "ExitCode" else self.restart_policy
        spec = runtime_pod_spec(pod_spec, pod_policy)
        containers = spec.get("containers") or []
        if not containers:
            raise DeployError(f"the pod spec has no container for the {kind.resource.kind}")
        containers[0]["name"] = kind.container
        replica_specs: dict[str, Any] = {}
        for rtype in kind.replica_types:
            count = self.replicas.get(rtype, 0)
            if count == 0:
                continue
            rspec = _without_gpus(spec) if rtype == "PS" else copy.deepcopy(spec)
            replica_specs[rtype] = {
                "replicas": count,
                "restartPolicy": self.restart_policy,
                "template": pod_template(rspec, self.labels, self.annotations),
            }
        return [
            {
                "apiVersion": kind.resource.api_version,
                "kind": kind.resource.kind,
                "metadata": object_metadata(name, namespace, self.labels, self.annotations),
                # runPolicy has no omitempty in the operator's Go type: always send it.
                "spec": {"runPolicy": dict(self.run_policy), kind.replica_key: replica_specs},
            }
        ]


def _checked_replicas(kind: str, replicas: Mapping[str, int]) -> dict[str, int]:
    for option, count in replicas.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise DeployError(f"{option}={count!r}: a replica count is a whole number, 0 or more")
    for option in ("master_count", "chief_count"):
        if replicas.get(option, 0) > 1:
            raise DeployError(
                f"{option}={replicas[option]}: a {kind} has at most one "
                f"{option.split('_')[0]}; add workers instead"
            )
    if not any(replicas.values()):
        counts = ", ".join(f"{k}=0" for k in replicas)
        raise DeployError(f"{counts}: a {kind} needs at least one replica")
    return {_REPLICA_TYPES[option]: n for option, n in replicas.items()}


def _without_gpus(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(spec))
    for container in out.get("containers") or ():
        for key in ("limits", "requests"):
            amounts = (container.get("resources") or {}).get(key) or {}
            for gpu in _GPU_RESOURCES:
                amounts.pop(gpu, None)
    return out


class KubeflowJobRun(WorkloadRun):
    """A PyTorchJob or TFJob ``deploy`` created: ``name``, ``namespace``, ``uid``, status."""

    deployer: KubeflowJob

    @property
    def selector(self) -> str:
        """The job's pods: the label the operator sets on every pod it makes."""
        return f"{JOB_NAME_LABEL}={self.name}"

    @property
    def many_pods(self) -> bool:
        return sum(self.deployer.replicas.values()) > 1

    def status_of(
        self, obj: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
    ) -> DeployStatus:
        return kubeflow_job_status(self.kind, obj)


class PyTorchJob(KubeflowJob):
    """Fairing's ``PyTorchJob``: a ``kubeflow.org/v1`` PyTorchJob of ``master_count`` (0 or
    1) Master and ``worker_count`` Worker pods, its container named ``pytorch``.

    ``restart_policy`` (per replica: ``OnFailure``, the operator's default, ``Never``,
    ``Always`` or ``ExitCode``); ``clean_pod_policy``, ``backoff_limit``,
    ``ttl_seconds_after_finished``, ``active_deadline_seconds`` go in its ``runPolicy``.
    ``cleanup`` is False as in Fairing: the finished job stays until ``delete()`` (True
    deletes a job that succeeded, ``"always"`` any job).
    """

    job_kind = PYTORCH
    resource = PYTORCH.resource
    default_name = PYTORCH.default_name

    def __init__(
        self,
        namespace: str | None = None,
        master_count: int = 1,
        worker_count: int = 1,
        runs: int = 1,
        job_name: str | None = None,
        stream_log: bool = True,
        labels: Mapping[str, str] | None = None,
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        cleanup: Cleanup = False,
        annotations: Mapping[str, str] | None = None,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
        *,
        restart_policy: str | None = None,
        clean_pod_policy: str | None = None,
        backoff_limit: int | None = None,
        ttl_seconds_after_finished: int | None = None,
        active_deadline_seconds: int | None = None,
        deployer_type: str = "pytorchjob",
        wait: bool = True,
        timeout: float | None = None,
        pending_timeout: float = 300,
        dry_run: bool = False,
        image_pull_secret: str | bool | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        super().__init__(
            namespace,
            {"master_count": master_count, "worker_count": worker_count},
            runs=runs,
            job_name=job_name,
            restart_policy=restart_policy,
            clean_pod_policy=clean_pod_policy,
            backoff_limit=backoff_limit,
            ttl_seconds_after_finished=ttl_seconds_after_finished,
            active_deadline_seconds=active_deadline_seconds,
            labels=labels,
            annotations=annotations,
            deployer_type=deployer_type,
            pod_spec_mutators=pod_spec_mutators,
            cleanup=cleanup,
            stream_log=stream_log,
            config_file=config_file,
            context=context,
            client_configuration=client_configuration,
            persist_config=persist_config,
            wait=wait,
            timeout=timeout,
            pending_timeout=pending_timeout,
            dry_run=dry_run,
            image_pull_secret=image_pull_secret,
            log_stream=log_stream,
        )


class TFJob(KubeflowJob):
    """Fairing's ``TfJob``: a ``kubeflow.org/v1`` TFJob of ``worker_count`` Worker,
    ``ps_count`` PS, ``chief_count`` (0 or 1) Chief and ``evaluator_count`` Evaluator pods,
    its container named ``tensorflow``. The PS pods get no GPUs (``nvidia.com/gpu`` and
    ``amd.com/gpu`` are taken off their resources, as Fairing did): they only hold variables.

    ``restart_policy`` (per replica: ``Never``, the operator's default, ``OnFailure``,
    ``Always`` or ``ExitCode``); ``clean_pod_policy``, ``backoff_limit``,
    ``ttl_seconds_after_finished``, ``active_deadline_seconds`` go in its ``runPolicy``.
    ``cleanup`` is False as in Fairing: the finished job stays until ``delete()`` (True
    deletes a job that succeeded, ``"always"`` any job).
    """

    job_kind = TENSORFLOW
    resource = TENSORFLOW.resource
    default_name = TENSORFLOW.default_name

    def __init__(
        self,
        namespace: str | None = None,
        worker_count: int = 1,
        ps_count: int = 0,
        chief_count: int = 0,
        runs: int = 1,
        job_name: str | None = None,
        stream_log: bool = True,
        labels: Mapping[str, str] | None = None,
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        cleanup: Cleanup = False,
        annotations: Mapping[str, str] | None = None,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
        *,
        evaluator_count: int = 0,
        restart_policy: str | None = None,
        clean_pod_policy: str | None = None,
        backoff_limit: int | None = None,
        ttl_seconds_after_finished: int | None = None,
        active_deadline_seconds: int | None = None,
        deployer_type: str = "tfjob",
        wait: bool = True,
        timeout: float | None = None,
        pending_timeout: float = 300,
        dry_run: bool = False,
        image_pull_secret: str | bool | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        super().__init__(
            namespace,
            {
                "chief_count": chief_count,
                "ps_count": ps_count,
                "worker_count": worker_count,
                "evaluator_count": evaluator_count,
            },
            runs=runs,
            job_name=job_name,
            restart_policy=restart_policy,
            clean_pod_policy=clean_pod_policy,
            backoff_limit=backoff_limit,
            ttl_seconds_after_finished=ttl_seconds_after_finished,
            active_deadline_seconds=active_deadline_seconds,
            labels=labels,
            annotations=annotations,
            deployer_type=deployer_type,
            pod_spec_mutators=pod_spec_mutators,
            cleanup=cleanup,
            stream_log=stream_log,
            config_file=config_file,
            context=context,
            client_configuration=client_configuration,
            persist_config=persist_config,
            wait=wait,
            timeout=timeout,
            pending_timeout=pending_timeout,
            dry_run=dry_run,
            image_pull_secret=image_pull_secret,
            log_stream=log_stream,
        )


TfJob = TFJob  # Fairing's spelling
KubeflowJob.run_class = KubeflowJobRun
