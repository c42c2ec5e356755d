"""The ``kfserving`` deployer against the real InferenceService CRD (KServe v0.20's full
schema), with the test bed's KServe stand-in playing KServe's controller in Standard mode (a
Deployment and Service ``<name>-predictor``) and the real Deployment controller under it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ocibuild import DeployError
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline._errors import PodPendingError, WorkloadFailedError
from ocibuild.pipeline.deployers import DryRun, KFServing, KFServingRun
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import SCENARIO_LABEL, BaseInRegistry, KubeCluster, Scenario, wait_for

pytestmark = pytest.mark.xdist_group("kube")

IMAGE = "registry.test.invalid/team/predict:1@sha256:" + "ef" * 32
LINES = ["loading model", "model server ready"]


def pod_spec() -> PodSpec:
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": IMAGE, "command": ["python", "serve.py"]}]
    }
    return spec  # type: ignore[return-value]


@pytest.fixture
def logs(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> list[str]:
    kube_cluster.serve_log_lines(kube_namespace, LINES, tmp_path)
    return LINES


class Services:
    def __init__(self, cluster: KubeCluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.out = io.StringIO()

    def kfserving(self, scenario: str | None = None, **options: Any) -> KFServing:
        labels = dict(options.pop("labels", {}))
        if scenario is not None:
            labels[SCENARIO_LABEL] = scenario
        options.setdefault("namespace", self.namespace)
        options.setdefault("config_file", str(self.cluster.kubeconfig))
        options.setdefault("timeout", 60)
        return KFServing(labels=labels, log_stream=self.out, **options)

    def get(self, kind: str) -> list[dict[str, Any]]:
        text = self.cluster.kubectl("get", kind, "-n", self.namespace, "-o", "json")
        items: list[dict[str, Any]] = json.loads(text)["items"]
        return items

    def left(self) -> dict[str, list[str]]:
        kinds = ("inferenceservices", "deployments", "replicasets", "pods", "services")
        return {k: names for k in kinds if (names := [o["metadata"]["name"] for o in self.get(k)])}


@pytest.fixture
def services(kubeflow: object, kube_cluster: KubeCluster, kube_namespace: str) -> Services:
    return Services(kube_cluster, kube_namespace)


def created(run: object) -> KFServingRun:
    assert isinstance(run, KFServingRun), run
    return run


def test_ready_with_its_url_streams_the_log_then_deletes(
    services: Services, logs: list[str]
) -> None:
    mutated: list[str | None] = []

    def mark(spec: PodSpec, namespace: str | None) -> None:
        mutated.append(namespace)
        spec["serviceAccountName"] = "default"

    kfserving = services.kfserving(
        labels={"team": "ml"}, min_replicas=1, max_replicas=3, pod_spec_mutators=[mark]
    )
    run = created(kfserving.deploy(pod_spec()))
    ns = services.namespace
    assert run.url == f"http://{run.name}-{ns}.example.com"
    assert run.cluster_url == f"http://{run.name}-predictor.{ns}.svc.cluster.local"
    assert run.status().state == "Running"
    assert services.out.getvalue().splitlines() == logs
    (isvc,) = services.get("inferenceservices")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)
    assert predictor["serviceAccountName"] == "default" and mutated == [ns]
    (container,) = predictor["containers"]
    assert (container["name"], container["image"]) == ("kserve-container", IMAGE)
    assert container["command"] == ["python", "serve.py"]
    (pod,) = services.get("pods")
    assert pod["metadata"]["labels"]["serving.kserve.io/inferenceservice"] == run.name
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert list(run.logs()) == logs
    run.delete()
    assert services.left() == {}


def test_a_crash_looping_predictor_fails_the_wait_with_its_exit_code(services: Services) -> None:
    # A server without a readiness probe is Ready until it first crashes (here after 1 s), so
    # KServe may call it Ready for a moment, as it would on a real cluster: wait until it has
    # crashed and KServe has seen it.
    run = created(services.kfserving(Scenario.CRASH_LOOP, wait=False).deploy(pod_spec()))

    def crashing() -> bool | None:
        statuses = [
            c for p in services.get("pods") for c in p["status"].get("containerStatuses", [])
        ]
        (isvc,) = services.get("inferenceservices")
        conditions = isvc.get("status", {}).get("conditions", [])
        ready = [c["status"] for c in conditions if c["type"] == "Ready"]
        crashed = any(c.get("restartCount", 0) >= 1 for c in statuses)
        return True if crashed and ready and ready[0] != "True" else None

    wait_for(crashing, 30, "a crash-looping predictor")
    # Whichever the wait sees first ends it: the pod in CrashLoopBackOff (raised), or KServe's
    # ModelLoadFailed (a failed status, whose failure() names the same container).
    try:
        status = run.wait(timeout=30)
    except WorkloadFailedError as raised:
        failure = raised
        assert failure.reason == "CrashLoopBackOff"
    else:
        assert status.phase == "failed", status
        failure = run.failure()
        assert failure.reason == "ModelLoadFailed"
    assert failure.exit_code == 1
    assert "container kserve-container exited with code 1" in str(failure).splitlines()[0]


def test_image_pull_backoff_fails_the_wait_after_pending_timeout(services: Services) -> None:
    with pytest.raises(PodPendingError) as err:
        services.kfserving(Scenario.IMAGE_PULL_BACKOFF, pending_timeout=2).deploy(pod_spec())
    assert err.value.reason == "ImagePullBackOff"


def test_a_model_no_runtime_serves_fails_with_the_reason(services: Services) -> None:
    kfserving = services.kfserving(model_format="sklearn", storage_uri="gs://bucket/model")
    with pytest.raises(WorkloadFailedError) as err:
        kfserving.deploy(pod_spec())
    assert err.value.reason == "NoSupportingRuntime"
    (isvc,) = services.get("inferenceservices")
    model = isvc["spec"]["predictor"]["model"]
    assert model == {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://bucket/model"}
    assert "containers" not in isvc["spec"]["predictor"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"framework": "sklearn"}, r"needs storage_uri"),
        ({"canary_traffic_percent": 10}, r"a canary changes an InferenceService that exists"),
        ({"deployment_mode": "Raw"}, r"deployment_mode='Raw': use one of Standard, Knative"),
        ({"min_replicas": 3, "max_replicas": 2}, r"min_replicas=3 is more than max_replicas=2"),
        ({"max_replicas": 0}, r"at least one replica"),
        ({"framework": "xgboost", "model_format": "sklearn"}, r"give one of them"),
    ],
)
def test_bad_options_are_one_clear_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        KFServing(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"deployment_mode": "RawDeployment", "storage_uri": "s3://bucket/model"},
        {"model_format": "sklearn", "storage_uri": "gs://bucket/model", "min_replicas": 0},
    ],
)
def test_a_dry_run_passes_the_real_crd(services: Services, options: dict[str, Any]) -> None:
    plan = services.kfserving(dry_run=True, **options).deploy(pod_spec())
    assert isinstance(plan, DryRun) and plan.url is None
    (isvc,) = plan.manifests
    mode = options.get("deployment_mode", "Standard")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    if "model_format" not in options:
        env = isvc["spec"]["predictor"]["containers"][0]["env"]
        assert {"name": "STORAGE_URI", "value": "s3://bucket/model"} in env
    answer = services.cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(isvc).encode()
    )
    assert answer.split() == [f"inferenceservice.serving.kserve.io/{plan.name}"]
    assert services.left() == {}


def test_the_cli_prints_the_url_and_json_has_it(
    base_in_registry: BaseInRegistry, services: Services, tmp_path: Path
) -> None:
    env = child_env(KUBECONFIG=str(services.cluster.kubeconfig))
    args = ("deploy", base_in_registry.oci, "-d", "kfserving", "-n", services.namespace)
    proc = ocibuild_cli(*args, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _image, url = proc.stdout.splitlines()
    (isvc,) = services.get("inferenceservices")
    assert (
        url
        == isvc["status"]["url"]
        == f"http://{isvc['metadata']['name']}-{services.namespace}.example.com"
    )
    proc = ocibuild_cli(*args, "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["kind"], out["state"]) == ("InferenceService", "Running")
    assert out["url"] == f"http://{out['name']}-{services.namespace}.example.com"
