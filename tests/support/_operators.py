"""Test controllers that play operators which cannot run on the kwok test cluster.

``KServeStandIn`` plays KServe v0.20's InferenceService controller in Standard (formerly
RawDeployment) mode: KServe's own controller needs Knative or a gateway. For each
InferenceService it creates what the real one creates (a Deployment and a Service named
``<name>-predictor``, owned by the InferenceService so that deleting it cascades through the
real garbage collector) and writes the status the real one writes, ported from
``pkg/apis/serving/v1beta1/inference_service_status.go`` (PropagateRawStatus,
PropagateModelStatus) and ``reconcilers/ingress/kube_ingress_reconciler.go``. The real
Deployment controller makes the pods and kwok runs them.

It runs as a thread in the test process, polling every 0.2 s with the official client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

__all__ = ["INFERENCE_SERVICE", "KSERVE_CONTAINER", "KServeStandIn"]

# (group, version, plural)
INFERENCE_SERVICE = ("serving.kserve.io", "v1beta1", "inferenceservices")
KSERVE_CONTAINER = "kserve-container"
_FINALIZER = "inferenceservice.finalizers"
_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# inferenceservice-config as shipped: the cluster default mode and the ingress domain.
_DEFAULT_MODE = "Knative"
_INGRESS_DOMAIN = "example.com"
_LEGACY_MODES = {"RawDeployment": "Standard", "Serverless": "Knative"}
# The stand-in's own mark of the spec it last wrote into a Deployment or Service.
_SPEC_HASH = "ocibuild.test/kserve-stand-in-spec"
# PredictorSpec fields that are not PodSpec fields (ComponentExtensionSpec and the model kinds).
_NOT_POD_SPEC = frozenset(
    {
        *("minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType"),
        *("autoScaling", "containerConcurrency", "timeout", "canaryTrafficPercent", "logger"),
        *("batcher", "labels", "annotations", "deploymentStrategy", "name", "model"),
        *("sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface"),
        *("pmml", "lightgbm", "paddle", "storageUris", "storageContainerName", "workerSpec"),
    }
)
# inferenceservice-config's "resource" defaults, which KServe's defaulter puts on the container.
_DEFAULT_RESOURCES = {"cpu": "1", "memory": "2Gi"}


class KServeStandIn:
    """Reconciles every InferenceService in the cluster until `stop()`."""

    def __init__(self, api: client.ApiClient, interval: float = 0.2) -> None:
        self._api = api
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # The last few reconcile errors, for a test that wonders why nothing happened.
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kserve-stand-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, then drop the finalizer from what is left so nothing waits for a controller."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
            try:
                for isvc in self._list():
                    self._remove_finalizer(isvc)
            except ApiException:
                pass  # the cluster is going away too

    def reconcile_all(self) -> None:
        for isvc in self._list():
            self._reconcile(isvc)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.reconcile_all()
            except Exception as err:  # a controller outlives a failed pass, as the real one does
                self.errors = [*self.errors[-9:], f"{type(err).__name__}: {err}"]

    def _list(self) -> list[dict[str, Any]]:
        api = client.CustomObjectsApi(self._api)
        objects: Any = api.list_cluster_custom_object(*INFERENCE_SERVICE)
        items: list[dict[str, Any]] = objects["items"]
        return items

    def _json(self, obj: object) -> Any:
        """A client model as the API's own JSON."""
        return self._api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]

    def _reconcile(self, isvc: dict[str, Any]) -> None:
        meta = isvc["metadata"]
        if meta.get("deletionTimestamp"):
            self._remove_finalizer(isvc)
            return
        if _FINALIZER not in meta.get("finalizers", []):
            self._patch(
                isvc, {"metadata": {"finalizers": [*meta.get("finalizers", []), _FINALIZER]}}
            )
        status = json.loads(json.dumps(isvc.get("status") or {}))
        conditions = _Conditions(status)
        mode = _deployment_mode(isvc)
        status["deploymentMode"] = mode
        if mode == "Standard" and isvc["spec"]["predictor"].get("containers"):
            self._reconcile_standard(isvc, status, conditions)
        elif mode == "Standard":
            # Model-format predictors need ServingRuntimes, which this stand-in has none of.
            why = "the KServe stand-in serves custom containers only"
            conditions.set("PredictorReady", "False", "NoSupportingRuntime", why)
            conditions.set_ready()
        # else: KServe without Knative refuses Knative mode and leaves every condition Unknown.
        conditions.store()
        if status != isvc.get("status"):
            name, namespace = meta["name"], meta["namespace"]
            client.CustomObjectsApi(self._api).patch_namespaced_custom_object_status(
                *INFERENCE_SERVICE[:2], namespace, INFERENCE_SERVICE[2], name, {"status": status}
            )

    def _reconcile_standard(
        self, isvc: dict[str, Any], status: dict[str, Any], conditions: _Conditions
    ) -> None:
        name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
        component = f"{name}-predictor"
        deployment, service = _desired(isvc, component)
        apps, core = client.AppsV1Api(self._api), client.CoreV1Api(self._api)
        self._ensure(
            deployment,
            lambda: apps.read_namespaced_deployment(component, namespace),
            lambda body: apps.create_namespaced_deployment(namespace, body),
            lambda body: apps.replace_namespaced_deployment(component, namespace, body),
        )
        self._ensure(
            service,
            lambda: core.read_namespaced_service(component, namespace),
            lambda body: core.create_namespaced_service(namespace, body),
            # The API server keeps the allocated clusterIP when a replacement leaves it out.
            lambda body: core.replace_namespaced_service(component, namespace, body),
        )
        live = self._json(apps.read_namespaced_deployment(component, namespace))
        pods = core.list_namespaced_pod(namespace, label_selector=f"app=isvc.{component}")
        pod_list = self._json(pods)["items"]

        components = status.setdefault("components", {})
        predictor = components.setdefault("predictor", {})
        _propagate_raw_status(conditions, live.get("status", {}))
        if conditions.get("PredictorReady").get("status") == "True":
            predictor["url"] = f"http://{component}-{namespace}.{_INGRESS_DOMAIN}"
        if "observedGeneration" in live.get("status", {}):
            status["observedGeneration"] = live["status"]["observedGeneration"]
        _propagate_model_status(status, conditions, pod_list)
        status["url"] = f"http://{name}-{namespace}.{_INGRESS_DOMAIN}"
        status["address"] = {"url": f"http://{component}.{namespace}.svc.cluster.local"}
        conditions.set("IngressReady", "True")
        conditions.set_ready()

    def _ensure(
        self,
        desired: dict[str, Any],
        read: Callable[[], object],
        create: Callable[[Any], object],
        update: Callable[[Any], object],
    ) -> None:
        try:
            live = self._json(read())
        except ApiException as err:
            if err.status != 404:
                raise
            create(desired)
            return
        if live["metadata"].get("annotations", {}).get(_SPEC_HASH) != _spec_hash(desired):
            desired["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            update(desired)

    def _patch(self, isvc: dict[str, Any], patch: dict[str, Any]) -> None:
        meta = isvc["metadata"]
        client.CustomObjectsApi(self._api).patch_namespaced_custom_object(
            *INFERENCE_SERVICE[:2], meta["namespace"], INFERENCE_SERVICE[2], meta["name"], patch
        )

    def _remove_finalizer(self, isvc: dict[str, Any]) -> None:
        finalizers = isvc["metadata"].get("finalizers", [])
        if _FINALIZER in finalizers:
            kept = [f for f in finalizers if f != _FINALIZER]
            self._patch(isvc, {"metadata": {"finalizers": kept}})


def _deployment_mode(isvc: Mapping[str, Any]) -> str:
    """The mode as KServe resolves it: the status first, then the annotation, then the default."""
    recorded = (isvc.get("status") or {}).get("deploymentMode")
    if recorded:
        return str(recorded)
    value = isvc["metadata"].get("annotations", {}).get(_MODE_ANNOTATION, "")
    value = _LEGACY_MODES.get(value, value)
    return value if value in ("Standard", "Knative", "ModelMesh") else _DEFAULT_MODE


def _desired(isvc: Mapping[str, Any], component: str) -> tuple[dict[str, Any], dict[str, Any]]:
    meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
    name = meta["name"]
    labels = {
        **meta.get("labels", {}),
        **predictor.get("labels", {}),
        "serving.kserve.io/inferenceservice": name,
        "component": "predictor",
    }
    annotations = {
        k: v
        for k, v in {**meta.get("annotations", {}), **predictor.get("annotations", {})}.items()
        if not k.startswith("kubectl.kubernetes.io/")
    }
    app = f"isvc.{component}"
    pod_spec = {k: v for k, v in predictor.items() if k not in _NOT_POD_SPEC}
    containers = [dict(c) for c in pod_spec["containers"]]
    # KServe's defaulter names a lone (or unnamed first) container and gives it resources.
    if len(containers) == 1 or not containers[0].get("name"):
        containers[0]["name"] = KSERVE_CONTAINER
    resources = dict(containers[0].get("resources") or {})
    for kind in ("requests", "limits"):
        resources[kind] = {**_DEFAULT_RESOURCES, **(resources.get(kind) or {})}
    containers[0]["resources"] = resources
    pod_spec["containers"] = containers
    owner = {
        "apiVersion": "/".join(INFERENCE_SERVICE[:2]),
        "kind": "InferenceService",
        "name": name,
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    object_meta = {
        "name": component,
        "namespace": meta["namespace"],
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [owner],
    }
    deployment_spec: dict[str, Any] = {
        "replicas": predictor.get("minReplicas") or 1,
        "selector": {"matchLabels": {"app": app}},
        "template": {
            "metadata": {"labels": {**labels, "app": app}, "annotations": annotations},
            "spec": pod_spec,
        },
    }
    if predictor.get("deploymentStrategy"):
        deployment_spec["strategy"] = predictor["deploymentStrategy"]
    deployment = _with_hash(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": object_meta},
        deployment_spec,
    )
    service_spec = {"selector": {"app": app}, "ports": _service_ports(containers, component)}
    service = _with_hash(
        {"apiVersion": "v1", "kind": "Service", "metadata": json.loads(json.dumps(object_meta))},
        service_spec,
    )
    return deployment, service


def _service_ports(containers: Sequence[Mapping[str, Any]], component: str) -> list[Any]:
    ports = containers[0].get("ports") or []
    if not ports:
        return [{"name": component, "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    # The first container port is served on 80, any others on their own numbers.
    numbers = [80] + [port["containerPort"] for port in ports[1:]]
    return [
        {
            **({"name": port["name"]} if port.get("name") else {}),
            "port": number,
            "targetPort": port["containerPort"],
            "protocol": port.get("protocol", "TCP"),
        }
        for port, number in zip(ports, numbers, strict=True)
    ]


def _with_hash(obj: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    obj["spec"] = spec
    obj["metadata"]["annotations"] = {**obj["metadata"]["annotations"], _SPEC_HASH: ""}
    obj["metadata"]["annotations"][_SPEC_HASH] = _spec_hash(obj)
    return obj


def _spec_hash(obj: Mapping[str, Any]) -> str:
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != _SPEC_HASH}
    text = json.dumps({"metadata": meta, "spec": obj["spec"]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Conditions:
    """Knative-duck conditions, kept in `status` with Knative's transition-time rule."""

    def __init__(self, status: dict[str, Any]) -> None:
        self._status = status
        self._by_type = {c["type"]: c for c in status.get("conditions", [])}
        for kind in ("IngressReady", "PredictorReady", "Ready"):
            self._by_type.setdefault(kind, {"type": kind, "status": "Unknown"})
            self._by_type[kind].setdefault("lastTransitionTime", _now())

    def get(self, kind: str) -> dict[str, Any]:
        found: dict[str, Any] = self._by_type.get(kind, {})
        return found

    def set(self, kind: str, state: str, reason: str = "", message: str = "") -> None:
        new = {"type": kind, "status": state}
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        old = {k: v for k, v in self.get(kind).items() if k != "lastTransitionTime"}
        if old != new:
            self._by_type[kind] = {**new, "lastTransitionTime": _now()}

    def set_ready(self) -> None:
        """Ready follows PredictorReady and IngressReady: a False one first, then Unknown."""
        parts = [self.get("PredictorReady"), self.get("IngressReady")]
        for state in ("False", "Unknown"):
            for part in parts:
                if part.get("status") == state:
                    self.set("Ready", state, part.get("reason", ""), part.get("message", ""))
                    return
        self.set("Ready", "True")

    def store(self) -> None:
        self._status["conditions"] = [self._by_type[k] for k in sorted(self._by_type)]


def _propagate_raw_status(conditions: _Conditions, deployment_status: Mapping[str, Any]) -> None:
    """PredictorReady from the Deployment's conditions, as KServe's PropagateRawStatus."""
    by_type = {c["type"]: c for c in deployment_status.get("conditions", [])}
    available = by_type.get("Available", {})
    progressing = by_type.get("Progressing", {})
    failure = by_type.get("ReplicaFailure", {})
    verdict: tuple[str, str, str] = ("False", "", "")
    if available.get("status") == "True":
        verdict = ("True", available.get("reason", ""), available.get("message", ""))
    if progressing.get("status") == "False" and progressing.get("message"):
        verdict = ("False", progressing.get("reason", ""), progressing["message"])
    elif progressing.get("status") == "True":
        if progressing.get("reason") == "NewReplicaSetAvailable":
            verdict = ("True", progressing["reason"], progressing.get("message", ""))
        elif available.get("status") != "True":
            verdict = ("Unknown", progressing.get("reason", ""), progressing.get("message", ""))
    if available.get("status") == "False":
        verdict = ("False", available.get("reason", ""), available.get("message", ""))
    if failure.get("status") == "True":
        verdict = ("False", failure.get("reason", ""), failure.get("message", ""))
    conditions.set("PredictorReady", *verdict)


def _propagate_model_status(
    status: dict[str, Any], conditions: _Conditions, pods: Sequence[Mapping[str, Any]]
) -> None:
    """modelStatus from the predictor's pods, as KServe's PropagateModelStatus (raw mode)."""
    model = status.setdefault("modelStatus", {})
    ready = sum(1 for pod in pods if _pod_ready(pod))
    model["copies"] = {"failedCopies": 0, **({"totalCopies": ready} if ready else {})}
    if not pods:
        _set_model_state(model, "Pending")
        return
    if conditions.get("Ready").get("status") == "True":
        _set_model_state(model, "Loaded")
        return
    for container in pods[0].get("status", {}).get("containerStatuses", []):
        if container["name"] != KSERVE_CONTAINER:
            continue
        state = container.get("state", {})
        terminated = state.get("terminated") or {}
        waiting = state.get("waiting") or {}
        if terminated.get("reason") == "Error":
            _set_model_state(model, "FailedToLoad", _failure(terminated))
        elif waiting.get("reason") == "CrashLoopBackOff":
            last = container.get("lastState", {}).get("terminated") or {}
            _set_model_state(model, "FailedToLoad", _failure(last))
        else:
            _set_model_state(model, "Pending")


# KServe's UpdateModelRevisionStates: the transition status each target state implies.
_TRANSITIONS = {
    "Pending": "InProgress",
    "Loaded": "UpToDate",
    "FailedToLoad": "BlockedByFailedLoad",
}


def _set_model_state(
    model: dict[str, Any], target: str, failure: dict[str, Any] | None = None
) -> None:
    states = model.setdefault("states", {"activeModelState": ""})
    states["targetModelState"] = target
    model["transitionStatus"] = _TRANSITIONS[target]
    if target == "Loaded":
        states["activeModelState"] = "Loaded"
    if failure is not None:
        model["lastFailureInfo"] = failure


def _failure(terminated: Mapping[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {"reason": "ModelLoadFailed"}
    if terminated.get("message"):
        info["message"] = terminated["message"]
    if terminated.get("exitCode"):
        info["exitCode"] = terminated["exitCode"]
    return info


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status", {})
    return status.get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
    )


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
