"""The ``pytorchjob`` and ``tfjob`` deployers against the Training Operator v1 of the test bed.

The API server holds the real PyTorchJob and TFJob CRDs, the operator's webhook validates
them, and the operator (or the test bed's stand-in where it cannot run) makes one pod per
replica, which kwok's Stages play (``ocibuild.test/scenario`` picks how).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ocibuild import DeployError
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline._errors import JobFailedError, PodPendingError
from ocibuild.pipeline.deployers import DryRun, KubeflowJob, KubeflowJobRun, PyTorchJob, TFJob
from tests.kube.test_job import context_namespace
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import SCENARIO_LABEL, KubeCluster, Scenario, wait_for

pytestmark = pytest.mark.xdist_group("kube")

IMAGE = "registry.test.invalid/team/train:1@sha256:" + "cd" * 32
JOB_NAME = "training.kubeflow.org/job-name"
REPLICA_TYPE = "training.kubeflow.org/replica-type"
KINDS = {
    "pytorchjob": (PyTorchJob, "pytorchjobs.kubeflow.org", "pytorch", "pytorchReplicaSpecs"),
    "tfjob": (TFJob, "tfjobs.kubeflow.org", "tensorflow", "tfReplicaSpecs"),
}
# Two replica types, three pods, for each kind.
TWO_TYPES = {"pytorchjob": {"worker_count": 2}, "tfjob": {"chief_count": 1, "worker_count": 2}}


def pod_spec(**container: Any) -> PodSpec:
    spec: dict[str, Any] = {
        "containers": [
            {"name": "main", "image": IMAGE, "command": ["python", "train.py"], **container}
        ]
    }
    return spec  # type: ignore[return-value]


class Bed:
    """One kind's deployers in one namespace of the test cluster."""

    def __init__(self, cluster: KubeCluster, namespace: str, kind: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.kind = kind
        self.factory, self.plural, self.container, self.replica_key = KINDS[kind]
        self.out = io.StringIO()

    def deployer(self, scenario: str = Scenario.SUCCESS, **options: Any) -> KubeflowJob:
        labels = {SCENARIO_LABEL: scenario, **options.pop("labels", {})}
        options.setdefault("namespace", self.namespace)
        options.setdefault("config_file", str(self.cluster.kubeconfig))
        for key, value in TWO_TYPES[self.kind].items():
            options.setdefault(key, value)
        deployer: KubeflowJob = self.factory(labels=labels, log_stream=self.out, **options)
        return deployer

    def get(self, kinds: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kinds, "-n", self.namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.cluster.kubectl(*args))["items"]
        return items

    def pods(self, name: str) -> list[dict[str, Any]]:
        return self.get("pods", f"{JOB_NAME}={name}")

    def left(self) -> list[str]:
        return [f"{o['kind']}/{o['metadata']['name']}" for o in self.get(f"{self.plural},pods")]

    def serve(self, tmp_path: Path, lines: list[str]) -> None:
        self.cluster.serve_log_lines(self.namespace, lines, tmp_path)


@pytest.fixture(params=sorted(KINDS))
def bed(request: pytest.FixtureRequest, kubeflow: Any, kube_cluster: KubeCluster) -> Any:
    namespace = kube_cluster.new_namespace(request.param)
    yield Bed(kube_cluster, namespace, request.param)
    kube_cluster.delete_namespace(namespace)


def created(run: object) -> KubeflowJobRun:
    assert isinstance(run, KubeflowJobRun), run
    return run


def test_success_streams_every_replicas_log_prefixed(bed: Bed, tmp_path: Path) -> None:
    lines = ["step 1", "step 2"]
    bed.serve(tmp_path, lines)
    run = created(bed.deployer(Scenario.SLOW, timeout=90).deploy(pod_spec()))
    assert run.status().phase == "succeeded"
    pods = {p["metadata"]["name"]: p for p in bed.pods(run.name)}
    assert len(pods) == 3
    by_pod: dict[str, list[str]] = {}
    for line in bed.out.getvalue().splitlines():
        pod, _, text = line.partition("] ")
        by_pod.setdefault(pod.lstrip("["), []).append(text)
    assert by_pod == {name: lines for name in pods}
    for made in pods.values():
        (container,) = made["spec"]["containers"]
        assert container["name"] == bed.container
        assert made["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    # cleanup=False (Fairing's default): the job is kept until delete().
    run.delete()
    assert bed.left() == []


def test_mutators_reach_every_replica(bed: Bed) -> None:
    def mount_data(pod_spec: PodSpec, namespace: str) -> None:
        spec: Any = pod_spec
        spec.setdefault("volumes", []).append({"name": "data", "emptyDir": {}})
        spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]

    options: dict[str, Any] = {"ps_count": 1} if bed.kind == "tfjob" else {}
    deployer = bed.deployer(
        Scenario.SLOW,
        pod_spec_mutators=[mount_data],
        wait=False,
        restart_policy="ExitCode",
        clean_pod_policy="All",
        backoff_limit=1,
        ttl_seconds_after_finished=600,
        **options,
    )
    run = created(deployer.deploy(pod_spec()))
    expected = 4 if bed.kind == "tfjob" else 3
    pods = wait_for(lambda: p if len(p := bed.pods(run.name)) == expected else None, 30, "pods")
    for pod in pods:
        rtype = pod["metadata"]["labels"][REPLICA_TYPE]
        assert {"name": "data", "emptyDir": {}} in pod["spec"]["volumes"]
        assert pod["spec"]["restartPolicy"] == "Never"  # what ExitCode runs pods with
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] == bed.container]
        assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
        assert rtype in ("master", "worker", "chief", "ps")
    (job,) = bed.get(bed.plural)
    wanted = {"cleanPodPolicy": "All", "backoffLimit": 1, "ttlSecondsAfterFinished": 600}
    assert wanted.items() <= job["spec"]["runPolicy"].items()
    assert run.wait(timeout=60).phase == "succeeded"
    run.delete()
    assert bed.left() == []


def test_a_failing_replica_is_named_with_its_exit_code_and_log(bed: Bed, tmp_path: Path) -> None:
    bed.serve(tmp_path, ["loading", "exit 3"])
    deployer = bed.deployer(Scenario.EXIT_3, restart_policy="Never", timeout=60)
    with pytest.raises(JobFailedError) as err:
        deployer.deploy(pod_spec())
    failure = err.value
    assert failure.exit_code == 3
    assert failure.pod is not None
    assert failure.log_tail == ["loading", "exit 3"]
    first = str(failure).splitlines()[0]
    assert f"pod {failure.pod} container {bed.container} exited with code 3" in first
    assert f"kubectl delete {bed.plural}" in first
    (job,) = bed.get(bed.plural)
    assert job["metadata"]["name"] in failure.pod


def test_a_crash_loop_fails_at_once(bed: Bed, tmp_path: Path) -> None:
    bed.serve(tmp_path, ["boom"])
    deployer = bed.deployer(
        Scenario.CRASH_LOOP, restart_policy="OnFailure", timeout=60, cleanup="always"
    )
    with pytest.raises(JobFailedError) as err:
        deployer.deploy(pod_spec())
    assert err.value.reason == "CrashLoopBackOff"
    assert err.value.exit_code == 1
    assert bed.left() == []


def test_image_pull_backoff_then_pending_timeout(bed: Bed) -> None:
    deployer = bed.deployer(Scenario.IMAGE_PULL_BACKOFF, pending_timeout=2, cleanup="always")
    with pytest.raises(PodPendingError) as err:
        deployer.deploy(pod_spec())
    assert err.value.reason == "ImagePullBackOff"
    assert bed.left() == []


def test_dry_run_passes_the_real_crd_and_delete_leaves_nothing(bed: Bed) -> None:
    gpus = {"resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "1"}}}
    deployer = bed.deployer(dry_run=True, active_deadline_seconds=600)
    dry = deployer.deploy(pod_spec(**gpus))
    assert isinstance(dry, DryRun)
    (manifest,) = dry.manifests
    out = bed.cluster.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(manifest).encode()
    )
    applied = json.loads(out)
    assert applied["spec"]["runPolicy"]["activeDeadlineSeconds"] == 600
    types = {"pytorchjob": {"Master", "Worker"}, "tfjob": {"Chief", "Worker"}}[bed.kind]
    assert set(applied["spec"][bed.replica_key]) == types
    for rspec in applied["spec"][bed.replica_key].values():
        (container,) = rspec["template"]["spec"]["containers"]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": 1, "cpu": "1"}
    assert bed.left() == []
    run = created(bed.deployer(Scenario.SLOW, wait=False).deploy(pod_spec()))
    wait_for(lambda: len(bed.pods(run.name)) == 3 or None, 30, "3 pods")
    run.delete()
    assert bed.left() == []


def test_cli_dry_run_json_no_wait(bed: Bed, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(context_namespace(bed.cluster.kubeconfig.read_text(), bed.namespace))
    env = child_env(KUBECONFIG=str(kubeconfig), OCIBUILD_CACHE_DIR=str(tmp_path / "cache"))
    options = ["--deployer", bed.kind, "--deployer-option", "worker_count=2"]
    dry = ocibuild_cli("deploy", IMAGE, *options, "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    (manifest,) = json.loads(dry.stdout)["manifests"]
    assert manifest["spec"][bed.replica_key]["Worker"]["replicas"] == 2
    started = ocibuild_cli("deploy", IMAGE, *options, "--no-wait", "--json", env=env)
    assert started.returncode == 0, started.stderr
    shown = json.loads(started.stdout)
    assert [j["metadata"]["name"] for j in bed.get(bed.plural)] == [shown["name"]]


def test_parameter_servers_get_no_gpus() -> None:
    gpus = {"resources": {"limits": {"nvidia.com/gpu": 2, "amd.com/gpu": 1, "cpu": "2"}}}
    dry = TFJob(worker_count=2, ps_count=1, dry_run=True).manifests(pod_spec(**gpus), "ns", "x")
    replicas = dry[0]["spec"]["tfReplicaSpecs"]
    limits = {
        t: r["template"]["spec"]["containers"][0]["resources"]["limits"]
        for t, r in replicas.items()
    }
    assert limits == {"PS": {"cpu": "2"}, "Worker": gpus["resources"]["limits"]}


@pytest.mark.parametrize(
    ("factory", "options", "error"),
    [
        (PyTorchJob, {"master_count": 2}, "master_count=2: a PyTorchJob has at most one master"),
        (PyTorchJob, {"master_count": 0, "worker_count": 0}, "master_count=0, worker_count=0: a"),
        (TFJob, {"worker_count": -1}, "worker_count=-1: a replica count is a whole number"),
        (TFJob, {"chief_count": 2}, "chief_count=2: a TFJob has at most one chief"),
        (TFJob, {"restart_policy": "Sometimes"}, "restart_policy='Sometimes': use one of"),
        (TFJob, {"clean_pod_policy": "Some"}, "clean_pod_policy='Some': use None, Running or"),
        (PyTorchJob, {"backoff_limit": -1}, "backoff_limit=-1: a whole number, 0 or more"),
        (PyTorchJob, {"runs": 2}, "runs=2: a PyTorchJob runs once"),
    ],
)
def test_bad_options_are_one_line(factory: Any, options: dict[str, Any], error: str) -> None:
    with pytest.raises(DeployError) as err:
        factory(**options)
    assert str(err.value).startswith(error)
    assert "\n" not in str(err.value)
