"""The ``trainjob`` deployer: the image runs as a Kubeflow Trainer v2 TrainJob
(``trainer.kubeflow.org/v1alpha1``) on ``num_nodes`` nodes.

A TrainJob names a training runtime (``torch-distributed``, a ClusterTrainingRuntime, by
default) and says what differs: the image, its command, args and environment, the number of
nodes and their resources. Everything else the pod spec carries (what pod spec mutators add:
volumes and their mounts, service account, node selector, tolerations, pull secrets; the
deployer's labels and annotations on the pods) goes through one ``runtimePatches`` entry,
managed by ``ocibuild.dev/deployer``. That field is Trainer v2.2's; an older Trainer is refused
with a message saying so.

``deploy()`` creates the TrainJob and, by default, follows it: every node's log, prefixed with
its pod's name; pods in trouble (Unschedulable, ImagePullBackOff, CrashLoopBackOff) reported
while waiting; done on the TrainJob's ``Complete`` or ``Failed`` condition (the Trainer copies
them from its JobSet). It is *running* once every node's pod is Running or Succeeded.
``delete()`` removes the TrainJob with its JobSet, Jobs and pods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TextIO

from .._errors import DeployError
from .._protocols import DeployStatus, PodSpec, PodSpecMutator
from ._kube import KubeApiError
from ._workload import (
    POD,
    Cleanup,
    KubeDeployer,
    Resource,
    WorkloadRun,
    condition_text,
    true_conditions,
)
from .job import JOB, object_metadata, pod_template, runtime_pod_spec

__all__ = ["TRAINJOB", "PATCH_MANAGER", "TrainJob", "TrainJobRun", "trainjob_status"]

TRAINJOB = Resource("trainer.kubeflow.org/v1alpha1", "TrainJob", "trainjobs")
PATCH_MANAGER = "ocibuild.dev/deployer"
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
# The trainer's replicated job and its container, in every runtime the Trainer ships.
NODE = "node"
# What a runtime patch may set on a pod and on the trainer container (Trainer v2.3's
# PodSpecPatch and ContainerPatch); image, command, args, env and resources go in
# spec.trainer instead.
_POD_PATCH_FIELDS = frozenset(
    {
        "serviceAccountName",
        "volumes",
        "imagePullSecrets",
        "securityContext",
        "nodeSelector",
        "affinity",
        "tolerations",
        "schedulingGates",
        "terminationGracePeriodSeconds",
    }
)
_CONTAINER_FIELDS = frozenset(
    {"name", "image", "command", "args", "env", "resources", "volumeMounts", "securityContext"}
)
# The builders set the image's WORKDIR to the pod spec's workingDir, so dropping it is safe.
_DROPPED_CONTAINER_FIELDS = frozenset({"workingDir"})
_RUNTIME_KINDS = ("ClusterTrainingRuntime", "TrainingRuntime")


def trainjob_status(
    trainjob: Mapping[str, Any],
    pods: Mapping[str, Mapping[str, Any]] | None = None,
    num_nodes: int = 1,
) -> DeployStatus:
    """The phase of a TrainJob: its Complete/Failed/Suspended conditions, else *running* once
    all ``num_nodes`` of its node pods are Running or Succeeded (what the Kubeflow SDK calls
    Running), else *pending*."""
    true = true_conditions(trainjob)
    if "Complete" in true:
        return DeployStatus("succeeded", "complete: " + condition_text(true["Complete"]))
    if "Failed" in true:
        return DeployStatus("failed", condition_text(true["Failed"]))
    if "Suspended" in true:
        return DeployStatus("pending", "suspended")
    nodes = [
        p
        for p in (pods or {}).values()
        if not p.get("deleted")
        and ((p.get("metadata") or {}).get("labels") or {}).get(REPLICATED_JOB_LABEL) == NODE
    ]
    up = [p for p in nodes if (p.get("status") or {}).get("phase") in ("Running", "Succeeded")]
    if nodes and len(up) == len(nodes) and len(up) >= num_nodes:
        return DeployStatus("running", f"{len(up)} of {num_nodes} node(s) running")
    if nodes:
        return DeployStatus("pending", f"{len(up)} of {num_nodes} node(s) running")
    return DeployStatus("pending", "no node pod yet")


class TrainJob(KubeDeployer):
    """A Kubeflow Trainer v2 TrainJob that runs the image on ``num_nodes`` nodes.

    ``runtime``: the training runtime the job starts from (``torch-distributed``, a
    ClusterTrainingRuntime; ``runtime_kind="TrainingRuntime"`` for one in the namespace).
    ``num_proc_per_node``: processes per node (the runtime decides when None: ``auto`` for
    Torch). ``resources_per_node``: a ResourceRequirements mapping (``{"limits":
    {"nvidia.com/gpu": 1}}``), else the container's own resources. ``active_deadline_seconds``:
    the job fails with ``DeadlineExceeded`` after that long. The command, args and environment
    are the built image's (the pod spec's container). ``cleanup``: a TrainJob that completed
    is deleted with its pods; a failed one is kept for inspection unless ``"always"``.
    Needs Kubeflow Trainer 2.2 or later on the cluster.
    """

    resource = TRAINJOB
    default_name = "ocibuild-trainjob"

    def __init__(
        self,
        namespace: str | None = None,
        runtime: str = "torch-distributed",
        num_nodes: int = 1,
        *,
        runtime_kind: Literal["ClusterTrainingRuntime", "TrainingRuntime"] = (
            "ClusterTrainingRuntime"
        ),
        num_proc_per_node: int | None = None,
        resources_per_node: Mapping[str, Any] | None = None,
        active_deadline_seconds: int | None = None,
        job_name: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        cleanup: Cleanup = True,
        stream_log: bool = True,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
        wait: bool = True,
        timeout: float | None = None,
        pending_timeout: float = 300,
        dry_run: bool = False,
        image_pull_secret: str | bool | None = None,
        log_stream: TextIO | None = None,
        deployer_type: str = "trainjob",
    ) -> None:
        _check_options(runtime, runtime_kind, num_nodes, num_proc_per_node, resources_per_node)
        if active_deadline_seconds is not None and (
            not isinstance(active_deadline_seconds, int) or active_deadline_seconds < 1
        ):
            raise DeployError(
                f"active_deadline_seconds={active_deadline_seconds!r}: a whole number of "
                "seconds, 1 or more"
            )
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
        self.runtime = runtime
        self.runtime_kind = runtime_kind
        self.num_nodes = num_nodes
        self.num_proc_per_node = num_proc_per_node
        self.resources_per_node = dict(resources_per_node) if resources_per_node else None
        self.active_deadline_seconds = active_deadline_seconds
        self.job_name = job_name

    def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> list[dict[str, Any]]:
        """The TrainJob: the container in ``spec.trainer``, the rest of the pod spec in its
        runtime patch."""
        spec = runtime_pod_spec(pod_spec, None)
        container = _trainer_container(spec)
        trainer: dict[str, Any] = {"image": container["image"], "numNodes": self.num_nodes}
        for key in ("command", "args", "env"):
            if container.get(key):
                trainer[key] = container[key]
        if self.num_proc_per_node is not None:
            trainer["numProcPerNode"] = self.num_proc_per_node
        resources = self.resources_per_node or container.get("resources")
        if resources:
            trainer["resourcesPerNode"] = resources
        job_spec: dict[str, Any] = {
            "runtimeRef": {
                "name": self.runtime,
                "apiGroup": TRAINJOB.group,
                "kind": self.runtime_kind,
            },
            "trainer": trainer,
            "runtimePatches": [self._runtime_patch(spec, container)],
        }
        if self.active_deadline_seconds is not None:
            job_spec["activeDeadlineSeconds"] = self.active_deadline_seconds
        return [
            {
                "apiVersion": TRAINJOB.api_version,
                "kind": TRAINJOB.kind,
                "metadata": object_metadata(name, namespace, self.labels, self.annotations),
                "spec": job_spec,
            }
        ]

    def _runtime_patch(self, spec: Mapping[str, Any], container: Mapping[str, Any]) -> Any:
        pod: dict[str, Any] = {k: v for k, v in spec.items() if k in _POD_PATCH_FIELDS and v}
        patch_container = {
            k: container[k] for k in ("volumeMounts", "securityContext") if container.get(k)
        }
        if patch_container:
            pod["containers"] = [{"name": NODE, **patch_container}]
        template = pod_template(pod, self.labels, self.annotations)
        return {
            "manager": PATCH_MANAGER,
            "trainingRuntimeSpec": {
                "template": {
                    "spec": {
                        "replicatedJobs": [
                            {"name": NODE, "template": {"spec": {"template": template}}}
                        ]
                    }
                }
            },
        }

    def _create(
        self, manifests: list[dict[str, Any]], namespace: str, name: str, image: str
    ) -> WorkloadRun:
        try:
            return super()._create(manifests, namespace, name, image)
        except KubeApiError as err:
            if "runtimePatches" in str(err) and "unknown field" in str(err):
                raise DeployError(
                    f"creating TrainJob {namespace}/{name}: the cluster's Kubeflow Trainer "
                    "has no spec.runtimePatches, which ocibuild needs to change the pods "
                    "(labels, volumes, pull secrets): upgrade the Trainer to v2.2 or later"
                ) from None
            raise


def _check_options(
    runtime: str,
    runtime_kind: str,
    num_nodes: int,
    num_proc_per_node: int | None,
    resources_per_node: Mapping[str, Any] | None,
) -> None:
    if not isinstance(runtime, str) or not runtime:
        raise DeployError(f"runtime={runtime!r}: name a training runtime (torch-distributed)")
    if runtime_kind not in _RUNTIME_KINDS:
        raise DeployError(f"runtime_kind={runtime_kind!r}: use {' or '.join(_RUNTIME_KINDS)}")
    if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
        raise DeployError(f"num_nodes={num_nodes!r}: the number of nodes is 1 or more")
    if num_proc_per_node is not None and (
        not isinstance(num_proc_per_node, int) or num_proc_per_node < 1
    ):
        raise DeployError(
            f"num_proc_per_node={num_proc_per_node!r}: a whole number, 1 or more (None lets "
            "the runtime decide)"
        )
    if resources_per_node is not None and (
        not isinstance(resources_per_node, Mapping)
        or not set(resources_per_node) <= {"limits", "requests", "claims"}
    ):
        raise DeployError(
            f"resources_per_node={resources_per_node!r}: a ResourceRequirements mapping, "
            'such as {"limits": {"nvidia.com/gpu": 1}}'
        )


def _trainer_container(spec: dict[str, Any]) -> dict[str, Any]:
    """The pod spec's one container, checked to fit a TrainJob."""
    containers = spec.get("containers") or []
    if len(containers) != 1 or spec.get("initContainers"):
        raise DeployError(
            "a TrainJob runs one container per node (the runtime's 'node' container), and "
            f"the pod spec has {len(containers)} and {len(spec.get('initContainers') or [])} "
            "init container(s): put sidecars in a TrainingRuntime"
        )
    pod_extra = sorted(
        k for k, v in spec.items() if v and k not in {*_POD_PATCH_FIELDS, "containers"}
    )
    container: dict[str, Any] = containers[0]
    container_extra = sorted(
        k
        for k, v in container.items()
        if v and k not in _CONTAINER_FIELDS | _DROPPED_CONTAINER_FIELDS
    )
    if pod_extra or container_extra:
        fields = [*pod_extra, *(f"containers[0].{k}" for k in container_extra)]
        raise DeployError(
            f"the pod spec sets {', '.join(fields)}, which a TrainJob cannot change (its "
            "runtime patches take volumes, mounts, service account, node selector, "
            "affinity, tolerations and pull secrets): set it in a TrainingRuntime"
        )
    return container


class TrainJobRun(WorkloadRun):
    """A TrainJob ``deploy`` created: ``name``, ``namespace``, ``uid``, and what it is doing."""

    deployer: TrainJob

    @property
    def selector(self) -> str:
        """The TrainJob's pods: those of the JobSet of the same name."""
        return f"{JOBSET_NAME_LABEL}={self.name}"

    @property
    def many_pods(self) -> bool:
        return self.deployer.num_nodes > 1

    def status_of(
        self, obj: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
    ) -> DeployStatus:
        return trainjob_status(obj, pods, self.deployer.num_nodes)

    def children(self) -> list[tuple[Resource, str]]:
        """The JobSet's Jobs, then their pods (the JobSet goes before its Jobs)."""
        return [(JOB, self.selector), (POD, self.selector)]


TrainJob.run_class = TrainJobRun
