"""The ``serving`` deployer against the test bed's real API server, Deployment and ReplicaSet
controllers, garbage collector and scheduler.

Pods without a scenario label follow kwok's fast stages (scheduled, Running, Ready), so a
Deployment really becomes available; ``ocibuild.test/scenario`` labels make its pods stay in
ImagePullBackOff. No cloud controller runs here: a test writes a LoadBalancer's address into
the Service's status as one would.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from ocibuild import DeployError
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline._errors import DeployTimeoutError, PodPendingError, WorkloadFailedError
from ocibuild.pipeline.deployers import DryRun, Serving, ServingRun
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import SCENARIO_LABEL, BaseInRegistry, KubeCluster, Scenario

pytestmark = pytest.mark.xdist_group("kube")

IMAGE = "registry.test.invalid/team/predict:1@sha256:" + "cd" * 32
LINES = ["loading model", "serving on :8080"]
INSTANCE = "app.kubernetes.io/instance"


def pod_spec(**extra: Any) -> PodSpec:
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": IMAGE, "command": ["python", "serve.py"]}],
        **extra,
    }
    return spec  # type: ignore[return-value]


@pytest.fixture
def logs(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> list[str]:
    """Every pod of the namespace logs LINES."""
    kube_cluster.serve_log_lines(kube_namespace, LINES, tmp_path)
    return LINES


class Servers:
    """Serving deployers on the test cluster, in one namespace, writing logs to ``out``."""

    def __init__(self, cluster: KubeCluster, namespace: str, api: client.ApiClient) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.api = api
        self.out = io.StringIO()

    def serving(self, scenario: str | None = None, **options: Any) -> Serving:
        labels = dict(options.pop("labels", {}))
        if scenario is not None:
            labels[SCENARIO_LABEL] = scenario
        options.setdefault("namespace", self.namespace)
        options.setdefault("config_file", str(self.cluster.kubeconfig))
        options.setdefault("timeout", 60)
        return Serving(labels=labels, log_stream=self.out, **options)

    def get(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind`` in the namespace (kubectl's JSON)."""
        text = self.cluster.kubectl("get", kind, "-n", self.namespace, "-o", "json")
        items: list[dict[str, Any]] = json.loads(text)["items"]
        return items

    def left(self) -> dict[str, list[str]]:
        """What the namespace still holds of a server's kinds."""
        kinds = ("deployments", "replicasets", "pods", "services")
        return {k: names for k in kinds if (names := [o["metadata"]["name"] for o in self.get(k)])}


@pytest.fixture
def servers(
    kube_cluster: KubeCluster, kube_namespace: str, kube_client: client.ApiClient
) -> Servers:
    return Servers(kube_cluster, kube_namespace, kube_client)


def created(run: object) -> ServingRun:
    assert isinstance(run, ServingRun), run
    return run


def test_ready_when_available_stays_up_with_its_url_then_deletes(
    servers: Servers, logs: list[str]
) -> None:
    mutated: list[str | None] = []

    def mark(spec: PodSpec, namespace: str | None) -> None:
        mutated.append(namespace)
        spec["containers"][0].setdefault("env", []).append({"name": "MARK", "value": "x"})

    serving = servers.serving(
        replicas=2, port=8000, labels={"team": "ml"}, pod_spec_mutators=[mark], stream_log=False
    )
    run = created(serving.deploy(pod_spec()))
    assert run.url == f"http://{run.name}.{servers.namespace}.svc.cluster.local:8000"
    assert run.external_url is None
    assert run.status().state == "Running"
    (deployment,) = servers.get("deployments")
    status = deployment["status"]
    assert (status["availableReplicas"], status["updatedReplicas"]) == (2, 2)
    (service,) = servers.get("services")
    ids = {"app.kubernetes.io/managed-by": "ocibuild", INSTANCE: run.name}
    assert deployment["spec"]["selector"] == {"matchLabels": ids}
    assert service["spec"]["selector"] == ids
    template = deployment["spec"]["template"]
    for metadata in (deployment["metadata"], service["metadata"], template["metadata"]):
        assert metadata["labels"]["team"] == "ml"
        assert ids.items() <= metadata["labels"].items()
    assert service["spec"]["type"] == "ClusterIP"
    port = {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    assert port.items() <= service["spec"]["ports"][0].items()
    (owner,) = service["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Deployment", run.name, run.uid)
    container = template["spec"]["containers"][0]
    assert container["command"] == ["python", "serve.py"]  # the image's own server
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert {"name": "MARK", "value": "x"} in container["env"]
    assert template["spec"]["restartPolicy"] == "Always" and mutated == [servers.namespace]
    pods = servers.get("pods")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
    lines = list(run.logs())
    assert sorted(lines) == sorted(f"[{p['metadata']['name']}] {t}" for p in pods for t in logs)
    run.delete()
    assert servers.left() == {}
    assert run.status().state == "Unknown"


def test_the_log_streams_until_ready(servers: Servers, logs: list[str]) -> None:
    run = created(servers.serving().deploy(pod_spec()))
    assert servers.out.getvalue().splitlines() == logs
    run.delete()


def test_a_load_balancer_url_is_the_external_one_once_assigned(
    servers: Servers, kube_client: client.ApiClient
) -> None:
    run = created(servers.serving(service_type="LoadBalancer", wait=False).deploy(pod_spec()))
    inside = f"http://{run.name}.{servers.namespace}.svc.cluster.local:80"
    assert (run.external_url, run.url, run.cluster_url) == (None, inside, inside)
    # What a cloud controller writes once its load balancer is up.
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}
    client.CoreV1Api(kube_client).patch_namespaced_service_status(
        run.name, servers.namespace, status
    )
    assert run.external_url == run.url == "http://203.0.113.7:80"
    assert run.wait(timeout=60).state == "Running"
    # The watches wait() stopped left no shut connection in the pool for delete() to reuse
    # (its request would wait out the whole read timeout, 90 s).
    started = time.monotonic()
    run.delete()
    assert time.monotonic() - started < 20
    assert servers.left() == {}


def test_image_pull_backoff_fails_the_wait_after_pending_timeout(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ocibuild.deployers")
    started = time.monotonic()
    with pytest.raises(PodPendingError) as err:
        servers.serving(Scenario.IMAGE_PULL_BACKOFF, pending_timeout=2).deploy(pod_spec())
    assert time.monotonic() - started < 30
    assert err.value.reason == "ImagePullBackOff"
    assert f"pod {err.value.pod} is Pending: ImagePullBackOff" in str(err.value)
    assert "kubectl delete deployment" in str(err.value)
    reported = [r.getMessage() for r in caplog.records if "is Pending" in r.getMessage()]
    assert len(reported) == 1
    assert servers.get("deployments") != []  # kept for inspection


def test_a_crash_looping_server_fails_the_wait_with_its_exit_code(
    servers: Servers, logs: list[str]
) -> None:
    # min_ready_seconds: the pod is Ready for the second before it first crashes.
    serving = servers.serving(Scenario.CRASH_LOOP, min_ready_seconds=5, stream_log=False)
    with pytest.raises(WorkloadFailedError) as err:
        serving.deploy(pod_spec())
    assert (err.value.reason, err.value.exit_code) == ("CrashLoopBackOff", 1)
    first = str(err.value).splitlines()[0]
    assert f"pod {err.value.pod} container main exited with code 1" in first
    assert err.value.log_tail == logs
    (deployment,) = servers.get("deployments")
    assert deployment["spec"]["minReadySeconds"] == 5


def test_a_rollout_past_its_progress_deadline_fails(servers: Servers) -> None:
    serving = servers.serving(
        Scenario.IMAGE_PULL_BACKOFF, progress_deadline_seconds=1, pending_timeout=120
    )
    with pytest.raises(WorkloadFailedError) as err:
        serving.deploy(pod_spec())
    assert err.value.reason == "ProgressDeadlineExceeded"
    assert "ProgressDeadlineExceeded" in str(err.value).splitlines()[0]


def test_a_timeout_leaves_the_server_to_the_caller(servers: Servers) -> None:
    serving = servers.serving(Scenario.IMAGE_PULL_BACKOFF, timeout=1, pending_timeout=120)
    with pytest.raises(DeployTimeoutError, match=r"is still Pending after 1 s"):
        serving.deploy(pod_spec())
    run = created(servers.serving(Scenario.IMAGE_PULL_BACKOFF, wait=False).deploy(pod_spec()))
    assert run.wait(timeout=0.5).state == "Pending"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"replicas": 0}, r"replicas=0: the number of replicas is a whole number, 1 or more"),
        ({"runs": -1}, r"runs=-1: "),
        ({"runs": 2, "replicas": 3}, r"give one replica count"),
        ({"service_type": "Ingress"}, r"service_type='Ingress': use one of ClusterIP, NodePort"),
        ({"port": 0}, r"port=0: a port is a whole number, 1 to 65535"),
        ({"readiness_path": "healthz"}, r"an HTTP path starts with /"),
    ],
)
def test_bad_options_are_one_clear_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        Serving(**options)


def test_a_dry_run_creates_nothing_and_the_api_server_accepts_it(servers: Servers) -> None:
    serving = servers.serving(
        serving_class="Predictor", dry_run=True, service_type="NodePort", readiness_path="/healthz"
    )
    plan = serving.deploy(pod_spec())
    assert isinstance(plan, DryRun)
    assert [m["kind"] for m in plan.manifests] == ["Service", "Deployment"]
    assert plan.url == f"http://{plan.name}.{servers.namespace}.svc.cluster.local:80"
    container = plan.manifests[1]["spec"]["template"]["spec"]["containers"][0]
    # Fairing's Seldon wrapper, when a serving class is named.
    assert container["command"] == [
        "seldon-core-microservice",
        "Predictor",
        "--service-type",
        "MODEL",
    ]
    assert container["ports"][0]["containerPort"] == 9000
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    document = {"apiVersion": "v1", "kind": "List", "items": plan.manifests}
    answer = servers.cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(document).encode()
    )
    assert answer.split() == [f"service/{plan.name}", f"deployment.apps/{plan.name}"]
    assert servers.left() == {}


def test_the_cli_deploys_a_server_and_prints_its_url_last(
    base_in_registry: BaseInRegistry, servers: Servers, tmp_path: Path
) -> None:
    env = child_env(KUBECONFIG=str(servers.cluster.kubeconfig))
    args = ("deploy", base_in_registry.oci, "-d", "serving", "-n", servers.namespace)
    proc = ocibuild_cli(*args, "--deployer-option", "port=8000", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    image, url = proc.stdout.splitlines()
    assert image == f"{base_in_registry.oci}@{base_in_registry.oci_digest}"
    (deployment,) = servers.get("deployments")
    name = deployment["metadata"]["name"]
    assert url == f"http://{name}.{servers.namespace}.svc.cluster.local:8000"
    assert deployment["status"]["availableReplicas"] == 1  # it waited until ready

    proc = ocibuild_cli(*args, "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["kind"], out["namespace"], out["state"]) == (
        "Deployment",
        servers.namespace,
        "Running",
    )
    assert out["url"] == f"http://{out['name']}.{servers.namespace}.svc.cluster.local:80"

    proc = ocibuild_cli(*args, "--no-wait", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _image, summary, url = proc.stdout.splitlines()
    assert summary.startswith(f"Deployment {servers.namespace}/")
    assert summary.endswith((": Pending", ": Running"))
    assert url.startswith("http://") and url.endswith(".svc.cluster.local:80")
    assert len(servers.get("deployments")) == len(servers.get("services")) == 3


def test_the_cli_dry_run_of_a_server(
    base_in_registry: BaseInRegistry, servers: Servers, tmp_path: Path
) -> None:
    env = child_env(KUBECONFIG=str(servers.cluster.kubeconfig))
    args = ("deploy", base_in_registry.oci, "-d", "serving", "-n", servers.namespace, "--dry-run")
    proc = ocibuild_cli(*args, "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["state"] == "Pending" and out["url"].endswith(".svc.cluster.local:80")
    proc = ocibuild_cli(*args, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    applied = servers.cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=proc.stdout.encode()
    )
    assert "service/" in applied and "deployment.apps/" in applied
    assert servers.left() == {}
