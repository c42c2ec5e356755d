"""The ``serving`` deployer (Fairing's ``Serving``): the image as an apps/v1 Deployment behind a
v1 Service.

``deploy()`` creates the Service and the Deployment (one set of id labels on both, on the pod
template, in the Deployment's selector and in the Service's), then by default waits until the
Deployment is ready exactly as ``kubectl rollout status`` decides: the controller has seen
this generation, every replica is updated and available. It raises
:class:`WorkloadFailedError` when the rollout passes its progress deadline or a pod crash-loops
(with that pod's exit code and log tail), and :class:`PodPendingError` when a pod stays Pending
(ImagePullBackOff, Unschedulable) for ``pending_timeout``. The server stays up when ``deploy()``
returns; :meth:`ServingRun.delete` removes the Deployment, its pods and the Service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TextIO

from .._errors import DeployError
from .._protocols import DeployStatus, PodSpec, PodSpecMutator
from ._workload import MANAGED_BY, KubeDeployer, Resource, WorkloadRun, condition_text
from .job import object_metadata, pod_template, runtime_pod_spec

__all__ = [
    "DEPLOYMENT",
    "SERVICE",
    "Serving",
    "ServingRun",
    "deployment_status",
]

DEPLOYMENT = Resource("apps/v1", "Deployment", "deployments")
SERVICE = Resource("v1", "Service", "services")
INSTANCE_LABEL = "app.kubernetes.io/instance"
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
_PORT_NAME = "http"
# seldon-core 1.x's microservice listens for REST here (Fairing's 5000 was seldon-core 0.x).
_SELDON_PORT = 9000


def deployment_status(
    deployment: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
) -> DeployStatus:
    """The phase of a Deployment, as ``kubectl rollout status`` reads it: ``running`` once
    ready, ``failed`` past its progress deadline, ``pending`` before."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if status.get("observedGeneration", 0) < metadata.get("generation", 1):
        return DeployStatus("pending", "waiting for the Deployment controller")
    conditions = {str(c.get("type")): c for c in status.get("conditions") or ()}
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return DeployStatus("failed", condition_text(progressing))
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return DeployStatus("pending", f"{updated} of {wanted} replicas updated")
    if status.get("replicas", 0) > updated:
        old = status["replicas"] - updated
        return DeployStatus("pending", f"{old} old replica(s) terminating")
    if available < updated:
        return DeployStatus("pending", f"{available} of {updated} updated replicas available")
    return DeployStatus("running", f"ready: {available} of {wanted} replicas available")


class Serving(KubeDeployer):
    """Fairing's ``Serving`` deployer: a Deployment of ``replicas`` pods behind a Service.

    ``serving_class``: Fairing ran every server through Seldon Core's microservice wrapper,
    which loaded that class. ocibuild runs the image's own command by default (None): the
    image was built with the server's entrypoint (FastAPI, KServe's ``ModelServer``, ...), and
    Seldon Core's v1 wrapper is not what most servers run today. Given a class name, the
    container runs ``seldon-core-microservice CLASS --service-type MODEL`` as Fairing did (the
    image must have ``seldon-core`` installed) and listens on seldon's port 9000.

    ``runs`` is Fairing's name for the replica count, ``replicas`` the name Kubernetes uses;
    give one. ``port``: the Service's port; ``container_port``: the port the server listens on
    inside its container (the Service's target port, named ``http``); ``service_type``:
    ``ClusterIP``, ``NodePort`` or ``LoadBalancer``; ``readiness_path``: an HTTP path the
    kubelet probes before a pod counts as ready (None: ready once running);
    ``progress_deadline_seconds``: how long a rollout may make no progress before the wait
    fails (Kubernetes' default is 600); ``min_ready_seconds``: how long a pod must stay ready
    before it counts as available (without a readiness probe a server that crashes a second
    after it starts is ready for that second). ``wait`` waits until the Deployment is ready; the
    server then stays up (there is no ``cleanup``): :meth:`ServingRun.delete` ends it.
    """

    resource = DEPLOYMENT
    ends = False
    default_name = "ocibuild-serving"
    companions: ClassVar[Mapping[str, Resource]] = {"Service": SERVICE}

    def __init__(
        self,
        serving_class: str | None = None,
        namespace: str | None = None,
        runs: int = 1,
        labels: Mapping[str, str] | None = None,
        service_type: ServiceType = "ClusterIP",
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        *,
        replicas: int | None = None,
        port: int = 80,
        container_port: int | None = None,
        readiness_path: str | None = None,
        progress_deadline_seconds: int | None = None,
        min_ready_seconds: int | None = None,
        annotations: Mapping[str, str] | None = None,
        name: str | None = None,
        deployer_type: str = "serving",
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
        count = _replica_count(runs, replicas)
        if service_type not in _SERVICE_TYPES:
            raise DeployError(
                f"service_type={service_type!r}: use one of {', '.join(_SERVICE_TYPES)}"
            )
        if container_port is None:
            container_port = _SELDON_PORT if serving_class else 8080
        for option, value in (("port", port), ("container_port", container_port)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
                raise DeployError(f"{option}={value!r}: a port is a whole number, 1 to 65535")
        if readiness_path is not None and not readiness_path.startswith("/"):
            raise DeployError(f"readiness_path={readiness_path!r}: an HTTP path starts with /")
        super().__init__(
            namespace,
            labels=labels,
            annotations=annotations,
            name=name,
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
        self.serving_class = serving_class
        self.runs = self.replicas = count
        self.service_type = service_type
        self.port = port
        self.container_port = container_port
        self.readiness_path = readiness_path
        self.progress_deadline_seconds = progress_deadline_seconds
        self.min_ready_seconds = min_ready_seconds

    def id_labels(self, name: str) -> dict[str, str]:
        """The labels that select this server's pods: the Deployment's and the Service's
        selector (the objects and pods carry them with the rest of ``labels``)."""
        return {**MANAGED_BY, INSTANCE_LABEL: name}

    def url(self, namespace: str, name: str) -> str | None:
        """The Service's address inside the cluster."""
        return f"http://{name}.{namespace}.svc.cluster.local:{self.port}"

    def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Service, then the Deployment, both named ``name``."""
        labels = {**self.labels, **self.id_labels(name)}
        selector = self.id_labels(name)
        metadata = object_metadata(name, namespace, labels, self.annotations)
        service = {
            "apiVersion": SERVICE.api_version,
            "kind": SERVICE.kind,
            "metadata": metadata,
            "spec": {
                "type": self.service_type,
                "selector": selector,
                "ports": [
                    {
                        "name": _PORT_NAME,
                        "port": self.port,
                        "targetPort": _PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
        }
        spec: dict[str, Any] = {
            "replicas": self.replicas,
            "selector": {"matchLabels": selector},
            "template": pod_template(self._server_pod_spec(pod_spec), labels, self.annotations),
        }
        if self.progress_deadline_seconds is not None:
            spec["progressDeadlineSeconds"] = self.progress_deadline_seconds
        if self.min_ready_seconds is not None:
            spec["minReadySeconds"] = self.min_ready_seconds
        deployment = {
            "apiVersion": DEPLOYMENT.api_version,
            "kind": DEPLOYMENT.kind,
            "metadata": dict(metadata),
            "spec": spec,
        }
        return [service, deployment]

    def _server_pod_spec(self, pod_spec: PodSpec) -> dict[str, Any]:
        spec = runtime_pod_spec(pod_spec, "Always")  # the only policy a Deployment takes
        containers = spec.get("containers") or []
        if not containers:
            raise DeployError("the pod spec has no container to serve")
        server = containers[0]
        if self.serving_class:
            server["command"] = [
                "seldon-core-microservice",
                self.serving_class,
                "--service-type",
                "MODEL",
            ]
            server.pop("args", None)
        ports = server.setdefault("ports", [])
        if not any(p.get("name") == _PORT_NAME for p in ports):
            ports.append(
                {"name": _PORT_NAME, "containerPort": self.container_port, "protocol": "TCP"}
            )
        if self.readiness_path is not None:
            server["readinessProbe"] = {
                "httpGet": {"path": self.readiness_path, "port": _PORT_NAME},
                "periodSeconds": 5,
            }
        return spec


def _replica_count(runs: int, replicas: int | None) -> int:
    if replicas is not None and runs not in (1, replicas):
        raise DeployError(f"runs={runs!r} and replicas={replicas!r}: give one replica count")
    count = runs if replicas is None else replicas
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        name = "runs" if replicas is None else "replicas"
        raise DeployError(f"{name}={count!r}: the number of replicas is a whole number, 1 or more")
    return count


class ServingRun(WorkloadRun):
    """A server ``deploy`` created: ``name`` (of its Deployment and Service), ``namespace``,
    ``url``, and what it is doing."""

    deployer: Serving

    @property
    def deployment(self) -> dict[str, Any]:
        """The Deployment as last read."""
        return self.obj

    @property
    def selector(self) -> str:
        """The label selector of the server's pods (the Service's selector)."""
        return ",".join(f"{k}={v}" for k, v in self.deployer.id_labels(self.name).items())

    @property
    def many_pods(self) -> bool:
        return self.deployer.replicas > 1

    @property
    def cluster_url(self) -> str:
        """The Service's address inside the cluster."""
        return f"http://{self.name}.{self.namespace}.svc.cluster.local:{self.deployer.port}"

    @property
    def external_url(self) -> str | None:
        """A LoadBalancer Service's address outside the cluster, once the cloud has assigned
        one (asks the API server); None before, and for the other service types."""
        if self.deployer.service_type != "LoadBalancer":
            return None
        service = SERVICE.read(self.access, self.namespace, self.name) or {}
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
        for point in ingress:
            host = point.get("ip") or point.get("hostname")
            if host:
                return f"http://{host}:{self.deployer.port}"
        return None

    @property
    def url(self) -> str:
        """Where the server answers: a LoadBalancer's external address once assigned, else the
        Service's address inside the cluster."""
        return self.external_url or self.cluster_url

    def status_of(
        self, obj: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
    ) -> DeployStatus:
        return deployment_status(obj, pods)

    def failure_reason(self) -> str:
        return "ProgressDeadlineExceeded"


Serving.run_class = ServingRun
