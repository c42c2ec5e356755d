"""The ``trainjob`` deployer through the real Trainer v2 and JobSet controllers.

The test bed's API server holds the real TrainJob CRD, the Trainer's and JobSet's webhooks
default and validate every object, and the controllers turn a TrainJob into a JobSet, a Job
and one pod per node, which kwok's Stages play (``ocibuild.test/scenario`` picks how).
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocibuild
from ocibuild import DeployError
from ocibuild.image._image import Image
from ocibuild.image._write import write
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline._errors import DeployTimeoutError, JobFailedError, PodPendingError
from ocibuild.pipeline.deployers import DryRun, TrainJob, TrainJobRun
from tests.kube.test_job import context_namespace
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import (
    SCENARIO_LABEL,
    BaseImage,
    KubeCluster,
    Registry,
    Scenario,
    find_kube_bin,
    start_kube_cluster,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("kube")

IMAGE = "registry.test.invalid/team/train:1@sha256:" + "ab" * 32
LINES = ["rank ready", "epoch 1 loss 0.5", "done"]
JOBSET = "jobset.sigs.k8s.io/jobset-name"
OLD_TRAINER = "v2.1.0"
TRAINJOB_CRD = "trainer.kubeflow.org_trainjobs.yaml"


def pod_spec(**extra: Any) -> PodSpec:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "image": IMAGE,
                "command": ["python", "train.py"],
                "workingDir": "/app",
            }
        ],
        **extra,
    }
    return spec  # type: ignore[return-value]


class Bed:
    """TrainJob deployers in one namespace of the test cluster, and what the cluster holds."""

    def __init__(self, cluster: KubeCluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.out = io.StringIO()

    def deployer(self, scenario: str = Scenario.SUCCESS, **options: Any) -> TrainJob:
        labels = {SCENARIO_LABEL: scenario, **options.pop("labels", {})}
        options.setdefault("namespace", self.namespace)
        options.setdefault("config_file", str(self.cluster.kubeconfig))
        return TrainJob(labels=labels, log_stream=self.out, **options)

    def get(self, kinds: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kinds, "-n", self.namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.cluster.kubectl(*args))["items"]
        return items

    def pods(self, name: str) -> list[dict[str, Any]]:
        return self.get("pods", f"{JOBSET}={name}")

    def left(self) -> list[str]:
        """Everything a TrainJob makes that is still in the namespace."""
        kinds = "trainjobs.trainer.kubeflow.org,jobsets.jobset.x-k8s.io,jobs,pods"
        return [f"{o['kind']}/{o['metadata']['name']}" for o in self.get(kinds)]

    def serve(self, tmp_path: Path, lines: list[str]) -> None:
        self.cluster.serve_log_lines(self.namespace, lines, tmp_path)


@pytest.fixture
def bed(kubeflow: Any, kube_cluster: KubeCluster, kube_namespace: str) -> Bed:
    return Bed(kube_cluster, kube_namespace)


def created(run: object) -> TrainJobRun:
    assert isinstance(run, TrainJobRun), run
    return run


def node_lines(out: str, pods: list[str]) -> dict[str, list[str]]:
    """The streamed lines of each pod, by its ``[pod]`` prefix."""
    by_pod: dict[str, list[str]] = {p: [] for p in pods}
    for line in out.splitlines():
        pod, _, text = line.partition("] ")
        by_pod.setdefault(pod.lstrip("["), []).append(text)
    return by_pod


# -- the headline: a function, built, run on two nodes ------------------------------------


@pytest.fixture
def python_base(tmp_path_factory: pytest.TempPathFactory, base_layout: BaseImage) -> str:
    """The busybox base saying this interpreter's Python version, as python images do."""
    layout = tmp_path_factory.mktemp("python-base") / "layout"
    image = Image.load(base_layout.ref).with_config(
        env={"PYTHON_VERSION": platform.python_version()}
    )
    return write(image, f"oci:{layout}:py").reference.split("@")[0]


def test_a_function_trains_on_two_nodes_through_the_real_controllers(
    bed: Bed, tmp_path: Path, python_base: str, registry: Registry
) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def train():\n    print('epoch 1 loss 0.5')\n", namespace)
    bed.serve(tmp_path, LINES)
    result = ocibuild.run(
        namespace["train"],
        base_image=python_base,
        registry=f"{registry.host}/team",
        deployer="trainjob",
        num_nodes=2,
        namespace=bed.namespace,
        config_file=str(bed.cluster.kubeconfig),
        labels={SCENARIO_LABEL: Scenario.SLOW},
        log_stream=bed.out,
        cache_dir=tmp_path / "cache",
    )
    run = created(result.handle)
    assert result.image.startswith(f"{registry.host}/team/") and "@sha256:" in result.image
    assert run.status().phase == "succeeded"
    # Both nodes' pods logged through the API server, each line prefixed with its pod.
    by_pod = node_lines(bed.out.getvalue(), [])
    assert len(by_pod) == 2, bed.out.getvalue()
    assert all(pod.startswith(f"{run.name}-node-0-") for pod in by_pod), by_pod
    assert all(lines == LINES for lines in by_pod.values()), by_pod
    # The image built from the function is what each node ran (spec.trainer.image).
    trainer = run.manifests[-1]["spec"]["trainer"]
    assert trainer["image"] == result.image
    assert trainer["command"][:3] == ["python", "-m", "ocibuild._runtime.function"]
    # Cleanup: the TrainJob, its JobSet, Job and pods are gone.
    assert bed.left() == []


# -- create, wait, logs, delete -----------------------------------------------------------


def test_pods_get_the_mutators_changes_through_the_runtime_patch(bed: Bed, tmp_path: Path) -> None:
    def mount_data(pod_spec: PodSpec, namespace: str) -> None:
        spec: Any = pod_spec
        spec.setdefault("volumes", []).append({"name": "data", "emptyDir": {}})
        container = spec["containers"][0]
        container.setdefault("volumeMounts", []).append({"name": "data", "mountPath": "/data"})
        container.setdefault("env", []).append({"name": "EPOCHS", "value": "3"})
        spec["tolerations"] = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]

    deployer = bed.deployer(
        Scenario.SLOW, num_nodes=2, pod_spec_mutators=[mount_data], wait=False, cleanup=False
    )
    run = created(deployer.deploy(pod_spec()))
    pods = wait_for(lambda: p if len(p := bed.pods(run.name)) == 2 else None, 30, "2 pods")
    for pod in pods:
        assert pod["metadata"]["labels"][SCENARIO_LABEL] == Scenario.SLOW
        assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ocibuild"
        assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
        spec = pod["spec"]
        assert {"name": "data", "emptyDir": {}} in spec["volumes"]
        assert {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        (node,) = [c for c in spec["containers"] if c["name"] == "node"]
        assert node["image"] == IMAGE
        assert node["command"] == ["python", "train.py"]
        assert {"name": "data", "mountPath": "/data"} in node["volumeMounts"]
        env = {e["name"]: e.get("value") for e in node["env"]}
        assert env["EPOCHS"] == "3" and env["OCIBUILD_RUNTIME"] == "1"
    status = run.wait(timeout=60)
    assert status.phase == "succeeded", status
    run.delete()
    assert bed.left() == []


def test_running_means_every_node_pod_runs(bed: Bed, tmp_path: Path) -> None:
    bed.serve(tmp_path, LINES)
    run = created(bed.deployer(Scenario.SLOW, num_nodes=2, wait=False).deploy(pod_spec()))
    seen: list[str] = []

    def running() -> bool | None:
        status = run.status()
        seen.append(status.phase)
        return status.phase == "running" or None

    wait_for(running, 30, "the TrainJob running")
    assert run.status().message.startswith("2 of 2 node(s) running")
    lines = list(run.logs(follow=True))
    assert sorted(lines) == sorted(
        f"[{p['metadata']['name']}] {t}" for p in bed.pods(run.name) for t in LINES
    )
    assert run.wait(timeout=30).phase == "succeeded"
    run.delete()
    assert bed.left() == []
    run.delete()  # deleting twice is not an error


def test_delete_while_running_leaves_nothing(bed: Bed) -> None:
    run = created(bed.deployer(Scenario.SLOW, num_nodes=2, wait=False).deploy(pod_spec()))
    wait_for(lambda: len(bed.pods(run.name)) == 2 or None, 30, "2 pods")
    run.delete()
    assert bed.left() == []
    assert run.status().phase == "unknown"


def test_a_crashing_node_fails_the_wait_naming_pod_exit_code_and_log(
    bed: Bed, tmp_path: Path
) -> None:
    bed.serve(tmp_path, ["loading", "Traceback: boom"])
    deployer = bed.deployer(Scenario.CRASH_LOOP, num_nodes=2, timeout=60)
    started = time.monotonic()
    with pytest.raises(JobFailedError) as err:
        deployer.deploy(pod_spec())
    # Surfaced from the pods, not after the Job's six restarts.
    assert time.monotonic() - started < 30
    failure = err.value
    assert failure.reason == "CrashLoopBackOff"
    assert failure.pod is not None and "-node-0-" in failure.pod
    assert failure.exit_code == 1
    assert failure.log_tail == ["loading", "Traceback: boom"]
    first = str(failure).splitlines()[0]
    assert "kubectl delete trainjobs.trainer.kubeflow.org" in first
    assert len(bed.get("trainjobs.trainer.kubeflow.org")) == 1  # kept for inspection


def test_a_failed_trainjob_reports_the_failing_node(bed: Bed, tmp_path: Path) -> None:
    bed.serve(tmp_path, ["exiting with 3"])
    deployer = bed.deployer(Scenario.EXIT_3, num_nodes=1, timeout=60, cleanup="always")
    with pytest.raises(JobFailedError) as err:
        deployer.deploy(pod_spec())
    failure = err.value
    assert failure.exit_code == 3
    assert failure.pod is not None and "-node-0-" in failure.pod
    assert failure.log_tail == ["exiting with 3"]
    assert "the TrainJob was deleted (cleanup='always')" in str(failure)
    assert bed.left() == []


def test_image_pull_backoff_is_reported_then_pending_timeout(
    bed: Bed, caplog: pytest.LogCaptureFixture
) -> None:
    deployer = bed.deployer(Scenario.IMAGE_PULL_BACKOFF, pending_timeout=2, cleanup="always")
    with (
        caplog.at_level(logging.WARNING, "ocibuild.deployers"),
        pytest.raises(PodPendingError) as err,
    ):
        deployer.deploy(pod_spec())
    assert err.value.reason == "ImagePullBackOff"
    assert any("ImagePullBackOff" in r.getMessage() for r in caplog.records)
    assert bed.left() == []


def test_unschedulable_is_pending_trouble(bed: Bed) -> None:
    def nowhere(pod_spec: PodSpec, namespace: str) -> None:
        pod_spec["nodeSelector"] = {"ocibuild.test/no-such-node": "x"}

    deployer = bed.deployer(pod_spec_mutators=[nowhere], pending_timeout=2, cleanup="always")
    with pytest.raises(PodPendingError) as err:
        deployer.deploy(pod_spec())
    assert err.value.reason == "Unschedulable"
    assert bed.left() == []


def test_timeout_names_the_state(bed: Bed) -> None:
    deployer = bed.deployer(Scenario.SLOW, timeout=1, cleanup="always", stream_log=False)
    with pytest.raises(DeployTimeoutError, match=r"TrainJob .* is still .* after 1 s"):
        deployer.deploy(pod_spec())
    assert bed.left() == []


# -- manifests, options, refusals ---------------------------------------------------------


def test_dry_run_manifests_pass_the_real_crd_and_webhooks(bed: Bed) -> None:
    def extras(pod_spec: PodSpec, namespace: str) -> None:
        spec: Any = pod_spec
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
        spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        spec["nodeSelector"] = {"pool": "gpu"}
        spec["serviceAccountName"] = "trainer"

    deployer = bed.deployer(
        num_nodes=3,
        num_proc_per_node=2,
        resources_per_node={"limits": {"nvidia.com/gpu": 1}},
        active_deadline_seconds=600,
        annotations={"team": "ml"},
        pod_spec_mutators=[extras],
        image_pull_secret="regcred",
        dry_run=True,
    )
    dry = deployer.deploy(pod_spec())
    assert isinstance(dry, DryRun) and dry.kind == "TrainJob"
    (trainjob,) = dry.manifests
    assert trainjob["spec"]["trainer"]["numNodes"] == 3
    assert trainjob["spec"]["trainer"]["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": 1}}
    # The server (CRD schema, strict fields, the Trainer's webhook) accepts it as it stands.
    out = bed.cluster.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(trainjob).encode()
    )
    applied = json.loads(out)
    patch = applied["spec"]["runtimePatches"][0]
    assert patch["manager"] == "ocibuild.dev/deployer"
    pod = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]
    pod_spec_patch = pod["spec"]["template"]["spec"]
    assert pod_spec_patch["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod_spec_patch["nodeSelector"] == {"pool": "gpu"}
    assert bed.left() == []


def test_a_missing_runtime_is_the_webhooks_one_line(bed: Bed) -> None:
    with pytest.raises(DeployError) as err:
        bed.deployer(runtime="no-such-runtime").deploy(pod_spec())
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"creating TrainJob {bed.namespace}/")
    assert "no-such-runtime" in message


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"num_nodes": 0}, "num_nodes=0: the number of nodes is 1 or more"),
        ({"runtime_kind": "JobSet"}, "runtime_kind='JobSet': use ClusterTrainingRuntime or"),
        ({"num_proc_per_node": 0}, "num_proc_per_node=0: a whole number"),
        ({"resources_per_node": {"gpu": 1}}, "resources_per_node={'gpu': 1}: a ResourceReq"),
        ({"active_deadline_seconds": 0}, "active_deadline_seconds=0: a whole number"),
    ],
)
def test_bad_options_are_one_line(options: dict[str, Any], error: str) -> None:
    with pytest.raises(DeployError) as err:
        TrainJob(**options)
    assert str(err.value).startswith(error)


def test_what_a_trainjob_cannot_carry_is_refused() -> None:
    two = pod_spec()
    two["containers"].append({"name": "sidecar", "image": IMAGE})
    with pytest.raises(DeployError, match="one container per node"):
        TrainJob(dry_run=True).manifests(two, "ns", "x")
    ports = pod_spec(hostNetwork=True)
    ports["containers"][0]["ports"] = [{"containerPort": 80}]  # type: ignore[typeddict-unknown-key]
    with pytest.raises(DeployError, match=r"sets hostNetwork, containers\[0\]\.ports, which"):
        TrainJob(dry_run=True).manifests(ports, "ns", "x")


# -- an older Trainer ----------------------------------------------------------------------


def old_trainjob_crd() -> Path:
    """Trainer v2.1.0's TrainJob CRD, from the Go module proxy (into the module cache)."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/kubeflow/trainer/v2@{OLD_TRAINER}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
    )
    crd = Path(json.loads(proc.stdout)["Dir"]) / "manifests/base/crds" / TRAINJOB_CRD
    assert "podTemplateOverrides" in crd.read_text()  # the field v2.2 replaced
    return crd


@pytest.fixture(scope="module")
def old_trainer_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A second kwok cluster holding Trainer v2.1.0's TrainJob CRD (no runtimePatches)."""
    crd = old_trainjob_crd()
    with start_kube_cluster(find_kube_bin(), tmp_path_factory.mktemp("kwok-old")) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(crd))

        # `kubectl wait` (and a jsonpath filter) fail outright on a CRD with no conditions yet.
        def established() -> bool | None:
            crd = json.loads(
                cluster.kubectl("get", "crd/trainjobs.trainer.kubeflow.org", "-o", "json")
            )
            conditions = crd.get("status", {}).get("conditions") or []
            return (
                any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
                or None
            )

        wait_for(established, 120, "the Trainer v2.1 TrainJob CRD to be Established")
        yield cluster


def test_a_trainer_older_than_2_2_is_refused_naming_the_version(
    old_trainer_cluster: KubeCluster,
) -> None:
    namespace = old_trainer_cluster.new_namespace()
    deployer = TrainJob(namespace=namespace, config_file=str(old_trainer_cluster.kubeconfig))
    with pytest.raises(DeployError) as err:
        deployer.deploy(pod_spec())
    message = str(err.value)
    assert "\n" not in message
    assert "upgrade the Trainer to v2.2 or later" in message
    listed = old_trainer_cluster.kubectl("get", "trainjobs", "-n", namespace, "-o", "name")
    assert listed.split() == []


# -- the command line ----------------------------------------------------------------------


def test_cli_deploy_dry_run_json_and_no_wait(bed: Bed, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(context_namespace(bed.cluster.kubeconfig.read_text(), bed.namespace))
    env = child_env(KUBECONFIG=str(kubeconfig), OCIBUILD_CACHE_DIR=str(tmp_path / "cache"))
    options = [
        "--deployer", "trainjob",
        "--deployer-option", "num_nodes=2",
        "--deployer-option", "labels=" + json.dumps({SCENARIO_LABEL: Scenario.SLOW}),
    ]  # fmt: skip
    dry = ocibuild_cli("deploy", IMAGE, *options, "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    shown = json.loads(dry.stdout)
    (manifest,) = shown["manifests"]
    assert manifest["kind"] == "TrainJob" and manifest["spec"]["trainer"]["numNodes"] == 2
    assert bed.left() == []
    started = ocibuild_cli("deploy", IMAGE, *options, "--no-wait", "--json", env=env)
    assert started.returncode == 0, started.stderr
    name = json.loads(started.stdout)["name"]
    (trainjob,) = bed.get("trainjobs.trainer.kubeflow.org")
    assert trainjob["metadata"]["name"] == name
    assert json.loads(started.stdout)["kind"] == "TrainJob"
    wait_for(lambda: len(bed.pods(name)) == 2 or None, 30, "2 pods")
