"""The ``job`` deployer (Fairing's ``Job``): the image runs as a Kubernetes batch/v1 Job.

``deploy()`` applies the pod spec mutators, creates the Job (and, with
``image_pull_secret=True``, a pull secret for the image's registry), then by default waits:
it follows every pod's log, reports pods held in Pending at once, reads the Job's real
conditions, and returns once the Job is Complete, or raises :class:`JobFailedError` naming the
reason, the failing pod, its exit code and the end of its log. A Job that succeeded is deleted
with its pods (``cleanup=True``); a failed one is kept for inspection unless
``cleanup="always"``. The :class:`JobRun` it returns has ``status``, ``wait``, ``logs`` and
``delete``. Requests go through the official ``kubernetes`` client (``ocibuild[kubernetes]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .._context import RUNTIME_ENV
from .._errors import DeployError
from .._protocols import DeployStatus, PodSpec, PodSpecMutator
from ._workload import (
    MANAGED_BY,
    NO_SIDECAR,
    Cleanup,
    DryRun,
    KubeDeployer,
    Resource,
    WorkloadRun,
    condition_text,
    true_conditions,
)

__all__ = [
    "JOB",
    "MANAGED_BY",
    "NO_SIDECAR",
    "DryRun",
    "Job",
    "JobRun",
    "job_status",
    "object_metadata",
    "pod_template",
    "runtime_pod_spec",
]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
JOB = Resource("batch/v1", "Job", "jobs")


def job_status(
    job: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
) -> DeployStatus:
    """The phase of a Job from its conditions (and its pods, for Pending vs Running)."""
    status = job.get("status") or {}
    true = true_conditions(job)
    counts = f"{status.get('succeeded', 0)} succeeded, {status.get('failed', 0)} failed"
    if "Complete" in true:
        return DeployStatus("succeeded", f"complete: {counts}")
    if "Failed" in true:
        condition = true["Failed"]
        return DeployStatus("failed", condition_text(condition) + f" ({counts})")
    if "FailureTarget" in true:
        return DeployStatus("running", "failing: " + condition_text(true["FailureTarget"]))
    if "SuccessCriteriaMet" in true:
        return DeployStatus("running", "succeeding: its pods are ending")
    if "Suspended" in true:
        return DeployStatus("pending", "suspended")
    live = [p for p in (pods or {}).values() if not p.get("deleted")]
    running = [p for p in live if (p.get("status") or {}).get("phase") == "Running"]
    if running or status.get("ready"):
        return DeployStatus("running", f"{max(len(running), status.get('ready') or 0)} running")
    active = status.get("active") or 0
    return DeployStatus("pending", f"{active} pod(s) starting" if active else "no pod yet")


class Job(KubeDeployer):
    """Fairing's ``Job`` deployer: a batch/v1 Job that runs the image ``runs`` times."""

    resource = JOB

    def __init__(
        self,
        namespace: str | None = None,
        runs: int = 1,
        output: Any = None,
        cleanup: Cleanup = True,
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
        *,
        wait: bool = True,
        timeout: float | None = None,
        pending_timeout: float = 300,
        backoff_limit: int = 0,
        active_deadline_seconds: int | None = None,
        ttl_seconds_after_finished: int | None = None,
        dry_run: bool = False,
        image_pull_secret: str | bool | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        if not isinstance(runs, int) or runs < 1:
            raise DeployError(f"runs={runs!r}: the number of runs is a whole number, 1 or more")
        super().__init__(
            namespace,
            labels=labels,
            annotations=annotations,
            name=job_name,
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
        self.runs = runs
        self.output = output
        self.job_name = job_name
        self.backoff_limit = backoff_limit
        self.active_deadline_seconds = active_deadline_seconds
        self.ttl_seconds_after_finished = ttl_seconds_after_finished

    def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Job that runs ``pod_spec`` (:meth:`deploy` puts the pull secret of
        ``image_pull_secret=True`` before it)."""
        spec = runtime_pod_spec(pod_spec, "Never")
        job_spec: dict[str, Any] = {
            "completions": self.runs,
            "parallelism": self.runs,
            "backoffLimit": self.backoff_limit,
            "template": pod_template(spec, self.labels, self.annotations),
        }
        if self.active_deadline_seconds is not None:
            job_spec["activeDeadlineSeconds"] = self.active_deadline_seconds
        if self.ttl_seconds_after_finished is not None:
            job_spec["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
        return [
            {
                "apiVersion": JOB.api_version,
                "kind": JOB.kind,
                "metadata": object_metadata(name, namespace, self.labels, self.annotations),
                "spec": job_spec,
            }
        ]


class JobRun(WorkloadRun):
    """A Job ``deploy`` created: ``name``, ``namespace``, ``uid``, and what it is doing."""

    deployer: Job

    @property
    def job(self) -> dict[str, Any]:
        """The Job as last read."""
        return self.obj

    @property
    def selector(self) -> str:
        """The label selector of the Job's pods (the label its controller sets)."""
        return f"{JOB_NAME_LABEL}={self.name}"

    @property
    def many_pods(self) -> bool:
        return self.deployer.runs > 1

    def status_of(
        self, obj: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
    ) -> DeployStatus:
        return job_status(obj, pods)

    def failure_reason(self) -> str:
        true = true_conditions(self.obj)
        failed = true.get("Failed") or true.get("FailureTarget")
        return str(failed.get("reason") or "Failed") if failed else "Failed"


Job.run_class = JobRun


def runtime_pod_spec(pod_spec: PodSpec, restart_policy: str | None) -> dict[str, Any]:
    """A copy of ``pod_spec`` as every deployer runs it: containers named, the runtime
    environment (``OCIBUILD_RUNTIME``/``FAIRING_RUNTIME``) set, and ``restart_policy``."""
    spec: dict[str, Any] = json.loads(json.dumps(pod_spec))
    if restart_policy is not None:
        spec["restartPolicy"] = restart_policy
    for i, container in enumerate(spec.get("containers") or ()):
        container.setdefault("name", "main" if i == 0 else f"main-{i}")
        env = container.setdefault("env", [])
        present = {e.get("name") for e in env}
        env.extend({"name": k, "value": v} for k, v in RUNTIME_ENV.items() if k not in present)
    return spec


def pod_template(
    spec: Mapping[str, Any], labels: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Any]:
    """A pod template: ``labels``, ``annotations`` (with Istio's sidecar off), ``spec``."""
    return {
        "metadata": {"labels": dict(labels), "annotations": {**NO_SIDECAR, **annotations}},
        "spec": dict(spec),
    }


def object_metadata(
    name: str, namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Any]:
    """``metadata`` of a workload object (annotations only when there are some)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata
