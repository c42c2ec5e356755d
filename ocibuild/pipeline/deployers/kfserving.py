"""The ``kfserving`` deployer (Fairing's ``KFServing``): the image as a KServe
``serving.kserve.io/v1beta1`` InferenceService.

By default the built image is the predictor's one container (``kserve-container``), with the
pod spec's other fields (service account, volumes, pull secrets, what the mutators added)
inline in the predictor. With ``model_format`` and ``storage_uri`` the predictor is instead
KServe's ``model`` form: one of the cluster's serving runtimes loads the model from the URI,
and the built image is not run. ``deploy()`` waits until the ``Ready`` condition is True and
the InferenceService has its URL; it fails on a terminal ``Ready=False`` reason, a model that
failed to load (``modelStatus.lastFailureInfo``), a crash-looping pod, or a pod Pending past
``pending_timeout``. The server stays up when ``deploy()`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .._errors import DeployError
from .._protocols import DeployStatus, PodSpec, PodSpecMutator
from ._workload import NO_SIDECAR, KubeDeployer, Resource, WorkloadRun, condition_text
from .job import object_metadata, runtime_pod_spec

__all__ = ["INFERENCE_SERVICE", "KFServing", "KFServingRun", "inference_service_status"]

INFERENCE_SERVICE = Resource("serving.kserve.io/v1beta1", "InferenceService", "inferenceservices")
KSERVE_CONTAINER = "kserve-container"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
ISVC_LABEL = "serving.kserve.io/inferenceservice"
# KServe 0.16 renamed RawDeployment to Standard and Serverless to Knative, and accepts both.
_MODES = ("Standard", "Knative", "RawDeployment", "Serverless")
# Ready=False reasons (and lastFailureInfo reasons) that no wait will change.
_TERMINAL = frozenset(
    {
        "ProgressDeadlineExceeded",
        "ModelLoadFailed",
        "RuntimeUnhealthy",
        "RuntimeDisabled",
        "NoSupportingRuntime",
        "RuntimeNotRecognized",
        "InvalidPredictorSpec",
    }
)


def inference_service_status(
    isvc: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
) -> DeployStatus:
    """The phase of an InferenceService: ``running`` once Ready, ``failed`` on a terminal
    reason, ``pending`` before."""
    status = isvc.get("status") or {}
    conditions = {str(c.get("type")): c for c in status.get("conditions") or ()}
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "True":
        return DeployStatus("running", f"ready at {status.get('url')}")
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure.get("reason") in _TERMINAL:
        return DeployStatus("failed", condition_text(failure))
    if ready.get("status") == "False" and ready.get("reason") in _TERMINAL:
        return DeployStatus("failed", condition_text(ready))
    if ready.get("reason"):
        return DeployStatus("pending", condition_text(ready))
    return DeployStatus("pending", "waiting for KServe")


class KFServing(KubeDeployer):
    """Fairing's ``KFServing`` deployer, on today's KServe API.

    ``framework`` (Fairing's name; ``model_format`` is KServe's) is ``"custom"`` (the built
    image serves) or a model format KServe's runtimes serve (``sklearn``, ``xgboost``,
    ``tensorflow``, ``pytorch``, ``onnx``, ``huggingface``, ...), which needs ``storage_uri``
    (Fairing's ``default_storage_uri``). A custom predictor given a ``storage_uri`` gets it as
    ``STORAGE_URI``, so KServe's storage initializer downloads the model to ``/mnt/models``.
    ``min_replicas``/``max_replicas`` bound its autoscaling. ``deployment_mode``: the
    ``serving.kserve.io/deploymentMode`` annotation, always written, since KServe's shipped
    configuration still defaults to Knative: ``Standard`` (a Deployment and Service, the
    default) or ``Knative``; the names before KServe 0.16, ``RawDeployment`` and
    ``Serverless``, are written as given, which is what a KServe older than 0.16 needs.
    Fairing's canary options are refused: a canary changes an InferenceService that exists,
    and ``deploy()`` creates a new one.
    """

    resource = INFERENCE_SERVICE
    ends = False
    default_name = "ocibuild-isvc"

    def __init__(
        self,
        framework: str = "custom",
        default_storage_uri: str | None = None,
        canary_storage_uri: str | None = None,
        canary_traffic_percent: int = 0,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        *,
        isvc_name: str | None = None,
        model_format: str | None = None,
        storage_uri: str | None = None,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        deployment_mode: str = "Standard",
        deployer_type: str = "kfserving",
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
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
    ) -> None:
        if canary_storage_uri is not None or canary_traffic_percent:
            raise DeployError(
                "canary_storage_uri/canary_traffic_percent: a canary changes an "
                "InferenceService that exists, and the kfserving deployer creates a new one: "
                "deploy without them, then change its predictor with kubectl"
            )
        self.model_format = _one("framework", framework, "model_format", model_format, "custom")
        self.storage_uri = _one(
            "default_storage_uri", default_storage_uri, "storage_uri", storage_uri, None
        )
        if self.model_format != "custom" and not self.storage_uri:
            raise DeployError(
                f"model_format={self.model_format!r}: a model KServe's runtime serves needs "
                "storage_uri (where the model is); for the built image use model_format='custom'"
            )
        if deployment_mode not in _MODES:
            raise DeployError(
                f"deployment_mode={deployment_mode!r}: use one of {', '.join(_MODES)}"
            )
        _check_replicas(min_replicas, max_replicas)
        super().__init__(
            namespace,
            labels=labels,
            annotations=annotations,
            name=isvc_name,
            deployer_type=deployer_type,
            pod_spec_mutators=pod_spec_mutators,
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
        self.framework = self.model_format
        self.isvc_name = isvc_name
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.deployment_mode = deployment_mode

    def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> list[dict[str, Any]]:
        """The InferenceService whose predictor runs ``pod_spec`` (or serves the model)."""
        spec = runtime_pod_spec(pod_spec, None)
        spec.pop("restartPolicy", None)  # KServe's Deployment sets its own
        containers = spec.pop("containers", None) or []
        predictor: dict[str, Any] = {**spec}
        if self.model_format == "custom":
            if not containers:
                raise DeployError("the pod spec has no container to serve")
            server = containers[0]
            server["name"] = KSERVE_CONTAINER
            if self.storage_uri:
                server["env"] = [e for e in server.get("env", []) if e.get("name") != "STORAGE_URI"]
                server["env"].append({"name": "STORAGE_URI", "value": self.storage_uri})
            predictor["containers"] = containers
        else:
            predictor["model"] = {
                "modelFormat": {"name": self.model_format},
                "storageUri": self.storage_uri,
            }
        if self.min_replicas is not None:
            predictor["minReplicas"] = self.min_replicas
        if self.max_replicas is not None:
            predictor["maxReplicas"] = self.max_replicas
        predictor["labels"] = dict(self.labels)
        predictor["annotations"] = {**NO_SIDECAR, **self.annotations}
        annotations = {**self.annotations, MODE_ANNOTATION: self.deployment_mode}
        return [
            {
                "apiVersion": INFERENCE_SERVICE.api_version,
                "kind": INFERENCE_SERVICE.kind,
                "metadata": object_metadata(name, namespace, self.labels, annotations),
                "spec": {"predictor": predictor},
            }
        ]


def _one(fairing: str, old: str | None, kserve: str, new: str | None, default: Any) -> Any:
    if old not in (None, default) and new is not None and new != old:
        raise DeployError(f"{fairing}={old!r} and {kserve}={new!r}: give one of them")
    return new if new is not None else old


def _check_replicas(low: int | None, high: int | None) -> None:
    for option, value in (("min_replicas", low), ("max_replicas", high)):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise DeployError(f"{option}={value!r}: a replica count is a whole number, 0 or more")
    if high is not None and high < 1:
        raise DeployError(f"max_replicas={high!r}: at least one replica must be allowed")
    if low is not None and high is not None and low > high:
        raise DeployError(f"min_replicas={low!r} is more than max_replicas={high!r}")


class KFServingRun(WorkloadRun):
    """An InferenceService ``deploy`` created: ``name``, ``namespace``, ``url`` (once KServe
    has written it), and what it is doing."""

    deployer: KFServing

    @property
    def inference_service(self) -> dict[str, Any]:
        """The InferenceService as last read."""
        return self.obj

    @property
    def selector(self) -> str:
        """The label selector of its predictor's pods (the label KServe sets)."""
        return f"{ISVC_LABEL}={self.name}"

    @property
    def many_pods(self) -> bool:
        return (self.deployer.min_replicas or 1) > 1

    @property
    def url(self) -> str | None:
        """``status.url``, where KServe says it answers (None until it says so)."""
        url = (self.obj.get("status") or {}).get("url")
        return str(url) if url else None

    @property
    def cluster_url(self) -> str | None:
        """``status.address.url``, its address inside the cluster."""
        url = ((self.obj.get("status") or {}).get("address") or {}).get("url")
        return str(url) if url else None

    def status_of(
        self, obj: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
    ) -> DeployStatus:
        return inference_service_status(obj, pods)

    def failure_reason(self) -> str:
        status = self.obj.get("status") or {}
        failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
        if failure.get("reason"):
            return str(failure["reason"])
        ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
        return str((ready[0].get("reason") if ready else None) or "Failed")


KFServing.run_class = KFServingRun
