"""The ``cluster`` builder against the test bed's real API server, Job controller and registry.

The executor is the one part played (tests/support/_executor.py): it reads the pod spec the
builder made, fetches the context from the real ConfigMap, builds that context into the test
registry with ocibuild's append path, and reports the digest in the pod's termination
message. The Job manifest, the secret, the upload, the wait, the log stream, the digest
read-back and the cleanup are ocibuild's own, against the real API server.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from ocibuild.pipeline._protocols import ExecutorContext
from ocibuild.pipeline.builders import (
    ClusterBuilder,
    ClusterBuildError,
    ConfigMapContextStore,
    ContextTooLargeError,
)
from ocibuild.pipeline.builders._configmap_store import CONFIGMAP_LIMIT
from ocibuild.pipeline.builders._executors import ExecutorBuild, executor_pod_spec
from ocibuild.pipeline.preprocessors import PythonPreprocessor
from tests.kube.test_job import context_namespace
from tests.pipeline._support import child_env, ocibuild_cli
from tests.pipeline.test_seed import SEED
from tests.support import BaseInRegistry, KubeCluster, Registry, ToolError, skopeo_inspect
from tests.support._executor import TestExecutor

pytestmark = pytest.mark.xdist_group("kube")

KANIKO_LOG = [
    "INFO[0000] Retrieving image manifest from the base",
    "INFO[0001] COPY files/ /",
    "INFO[0002] Pushing image",
]
ERROR_LINE = (
    "error building image: error building stage: failed to execute command: "
    "waiting for process to exit: exit status 3"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "labels.csv").write_text("a,b\n1,2\n")
    (root / "train.py").write_text("print('training')\n")
    (root / "train.py").chmod(0o755)
    monkeypatch.chdir(root)
    return root


class Bed:
    """One namespace of the test cluster, and what is left in it."""

    def __init__(self, cluster: KubeCluster, namespace: str, api: client.ApiClient) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.api = api

    def builder(self, registry: Registry, base: str, **options: Any) -> ClusterBuilder:
        options.setdefault(
            "preprocessor", PythonPreprocessor(executable="train.py", input_files=["data/"])
        )
        return ClusterBuilder(
            registry=f"{registry.host}/team",
            image_name="cluster-job",
            base_image=base,
            namespace=self.namespace,
            config_file=str(self.cluster.kubeconfig),
            **options,
        )

    def left(self) -> dict[str, list[str]]:
        # The client's models type every field optional: read as what the server sent.
        core: Any = client.CoreV1Api(self.api)
        batch: Any = client.BatchV1Api(self.api)
        ns = self.namespace
        config_maps = [
            c.metadata.name
            for c in core.list_namespaced_config_map(ns).items
            if c.metadata.name != "kube-root-ca.crt"
        ]
        secrets = [
            s.metadata.name
            for s in core.list_namespaced_secret(ns).items
            if s.type == "kubernetes.io/dockerconfigjson"
        ]
        return {
            "jobs": [j.metadata.name for j in batch.list_namespaced_job(ns).items],
            "pods": [p.metadata.name for p in core.list_namespaced_pod(ns).items],
            "configmaps": config_maps,
            "secrets": secrets,
        }


NOTHING: dict[str, list[str]] = {"jobs": [], "pods": [], "configmaps": [], "secrets": []}


@pytest.fixture
def bed(kube_cluster: KubeCluster, kube_namespace: str, kube_client: client.ApiClient) -> Bed:
    return Bed(kube_cluster, kube_namespace, kube_client)


@pytest.fixture
def kaniko_log(bed: Bed, tmp_path: Path) -> list[str]:
    bed.cluster.serve_log_lines(bed.namespace, KANIKO_LOG, tmp_path)
    return KANIKO_LOG


@pytest.fixture
def executor(bed: Bed) -> Iterator[TestExecutor]:
    with TestExecutor(bed.api, bed.namespace) as played:
        yield played
    assert played.errors == []


def test_a_build_runs_as_a_kaniko_job_and_returns_the_reported_digest(
    bed: Bed,
    project: Path,
    registry: Registry,
    base_in_registry: BaseInRegistry,
    executor: TestExecutor,
    kaniko_log: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    builder = bed.builder(registry, base_in_registry.oci)
    with caplog.at_level(logging.INFO, logger="ocibuild.builders"):
        started = time.monotonic()
        result = builder.build()
        took = time.monotonic() - started
    (run,) = executor.runs
    # The reference is pinned by the digest the executor reported, and the registry has it.
    assert run.digest is not None
    assert result.image == f"{run.args['destination']}@{run.digest}"
    assert str(result.digest) == run.digest and result.pushed
    inspected = skopeo_inspect("docker://" + result.image.split("@")[0], tls_verify=False)
    assert inspected["Digest"] == run.digest
    # The context the executor fetched from the ConfigMap is the preprocessor's, Dockerfile
    # included; its tag is the digest of that (reproducible) gzip tar.
    assert builder.docker_context is not None
    assert run.files["Dockerfile"].decode() == builder.docker_context.text
    assert run.files["files/app/train.py"] == (project / "train.py").read_bytes()
    assert run.modes["files/app/train.py"] == 0o755
    assert run.files["files/app/data/labels.csv"] == b"a,b\n1,2\n"
    assert run.context_tar[:2] == b"\x1f\x8b"
    tag = run.args["destination"].rsplit(":", 1)[1]
    assert tag == hashlib.sha256(run.context_tar).hexdigest()[:16]
    # The Job as the API server accepted it (targets.md section 6).
    job = run.job
    assert job["metadata"]["name"].startswith("ocibuild-build-")
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    build_id = job["metadata"]["labels"]["ocibuild/build-id"]
    assert job["spec"]["template"]["metadata"]["labels"]["ocibuild/build-id"] == build_id
    assert run.spec["restartPolicy"] == "Never"
    (container,) = run.spec["containers"]
    assert container["image"] == "ghcr.io/osscontainertools/kaniko:v1.27.6"
    assert run.args["context"] == "tar:///workspace-context/context.tar.gz"
    assert run.args["digest-file"] == "/dev/termination-log"
    assert "insecure" in run.args  # a loopback registry speaks plain HTTP
    # An anonymous registry: no secret, nothing mounted for it.
    assert run.docker_config is None
    # The executor's log came through the API server as build progress.
    progress = [r.getMessage() for r in caplog.records if r.name == "ocibuild.builders"]
    assert all(line in progress for line in kaniko_log), progress
    assert bed.left() == NOTHING
    print(f"cluster build (configmap, kaniko): {took:.2f} s")


def test_a_failed_build_shows_the_executor_error_line_and_leaves_nothing(
    bed: Bed,
    project: Path,
    registry: Registry,
    base_in_registry: BaseInRegistry,
    tmp_path: Path,
) -> None:
    bed.cluster.serve_log_lines(bed.namespace, [*KANIKO_LOG[:2], ERROR_LINE], tmp_path)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(context_namespace(bed.cluster.kubeconfig.read_text(), bed.namespace))
    destination = f"{registry.host}/team/cluster-fails:1"
    with TestExecutor(bed.api, bed.namespace, fail_with="\n".join([KANIKO_LOG[1], ERROR_LINE])):
        proc = ocibuild_cli(
            "build",
            str(project / "train.py"),
            "--builder",
            "cluster",
            "--base",
            base_in_registry.oci,
            "--to",
            destination,
            env=child_env(
                HOME=str(tmp_path / "home"),
                KUBECONFIG=str(kubeconfig),
                OCIBUILD_CACHE_DIR=str(tmp_path / "cache"),
            ),
            cwd=project,
        )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.endswith(f"kaniko could not build {destination}: {ERROR_LINE}"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    # No tag was pushed, and nothing is left in the cluster or the store (the ConfigMap).
    with pytest.raises(ToolError, match=r"manifest unknown"):
        skopeo_inspect("docker://" + destination, tls_verify=False)
    assert bed.left() == NOTHING


def test_the_error_line_comes_from_the_termination_message_without_a_log(
    bed: Bed, project: Path, registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    failing = TestExecutor(bed.api, bed.namespace, fail_with=f"INFO[0000] step\n{ERROR_LINE}\n")
    with failing, pytest.raises(ClusterBuildError) as caught:
        bed.builder(registry, base_in_registry.oci).build()
    assert caught.value.line == ERROR_LINE
    assert bed.left() == NOTHING


def test_the_push_secret_holds_the_destination_only_and_is_deleted(
    bed: Bed,
    project: Path,
    basic_registry: Registry,
    base_in_registry: BaseInRegistry,
    kaniko_log: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert basic_registry.username and basic_registry.password
    pair = f"{basic_registry.username}:{basic_registry.password}"
    auths = {
        basic_registry.host: {"auth": base64.b64encode(pair.encode()).decode()},
        "other.test.invalid": {"auth": base64.b64encode(b"someone:else").decode()},
    }
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", json.dumps({"auths": auths}))
    with TestExecutor(bed.api, bed.namespace) as played, caplog.at_level(logging.DEBUG):
        result = bed.builder(basic_registry, base_in_registry.oci).build()
    assert played.errors == []
    (run,) = played.runs
    assert run.docker_config == {
        "auths": {
            basic_registry.host: {
                "username": basic_registry.username,
                "password": basic_registry.password,
                "auth": base64.b64encode(pair.encode()).decode(),
            }
        }
    }
    mounts = run.spec["containers"][0]["volumeMounts"]
    assert {"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": True} in mounts
    assert result.image.endswith(f"@{run.digest}")
    assert basic_registry.password not in caplog.text
    assert bed.left() == NOTHING


def test_a_context_too_large_for_a_config_map_is_refused_with_one_line(
    bed: Bed, project: Path, registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    store = ConfigMapContextStore(bed.namespace, config_file=str(bed.cluster.kubeconfig))
    # The bound is the API server's own: exactly CONFIGMAP_LIMIT bytes are accepted ...
    url = store.put(io.BytesIO(os.urandom(CONFIGMAP_LIMIT)), "at-the-limit")
    assert bed.left()["configmaps"] == [url.rsplit("/", 1)[1]]
    store.delete(url)
    # ... and one more byte is refused by the API server itself.
    core: Any = client.CoreV1Api(bed.api)
    body = {
        "metadata": {"name": "one-byte-over"},
        "binaryData": {"k": base64.b64encode(os.urandom(CONFIGMAP_LIMIT + 1)).decode()},
    }
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_config_map(bed.namespace, body)
    assert refused.value.status == 422
    # The store refuses it first, in one line that names the stores that hold more.
    with pytest.raises(ContextTooLargeError, match=r"^[^\n]*'s3'[^\n]*'pvc'[^\n]*$"):
        store.put(io.BytesIO(os.urandom(CONFIGMAP_LIMIT + 1)), "over")
    # A build with a large file stops there: no Job, no ConfigMap.
    (project / "data" / "weights.bin").write_bytes(os.urandom(CONFIGMAP_LIMIT + 4096))
    with pytest.raises(ContextTooLargeError, match="a ConfigMap holds at most 1,048,576"):
        bed.builder(registry, base_in_registry.oci).build()
    assert bed.left() == NOTHING


@pytest.mark.parametrize("executor", ["kaniko", "buildkit"])
def test_the_api_server_accepts_both_executor_pods(bed: Bed, executor: str) -> None:
    build = ExecutorBuild(
        destination="registry.test.invalid/team/img:1",
        dockerfile="sub/Dockerfile",
        context=ConfigMapContextStore().executor_context(f"configmap://{bed.namespace}/ctx-1"),
        image="executor.test.invalid/x:1",
        secret="push-secret",
        build_args={"PY": "3.11"},
        target="final",
        cache=True,
        insecure=True,
    )
    spec = executor_pod_spec(executor, build)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"dry-{executor}"},
        "spec": {"backoffLimit": 0, "template": {"spec": spec}},
    }
    batch: Any = client.BatchV1Api(bed.api)  # takes the JSON form as it is
    batch.create_namespaced_job(bed.namespace, job, dry_run="All", field_validation="Strict")
    container = spec["containers"][-1]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    if executor == "kaniko":
        assert container["args"][:4] == [
            "--context=tar:///workspace-context/context.tar.gz",
            "--dockerfile=sub/Dockerfile",
            "--destination=registry.test.invalid/team/img:1",
            "--digest-file=/dev/termination-log",
        ]
        assert "--cache-repo=registry.test.invalid/team/img/cache" in container["args"]
        return
    script = container["command"][2]
    assert script.startswith(
        "buildctl-daemonless.sh build --frontend dockerfile.v0 --local context=/workspace "
        "--local dockerfile=/workspace/sub --opt filename=Dockerfile --output "
        "type=image,name=registry.test.invalid/team/img:1,push=true,registry.insecure=true "
        "--metadata-file /tmp/ocibuild-build.json"
    )
    assert "containerimage.digest" in script and "/dev/termination-log" in script
    assert {"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"} in container[
        "env"
    ]
    assert {"name": "DOCKER_CONFIG", "value": "/home/user/.docker"} in container["env"]
    assert container["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    assert container["securityContext"]["appArmorProfile"] == {"type": "Unconfined"}
    (unpack,) = spec["initContainers"]
    assert unpack["command"][2] == ("tar -xzf /workspace-context/context.tar.gz -C /workspace")


def test_buildkit_fetches_a_remote_context_by_its_fetch_url() -> None:
    context = ExecutorContext("s3://b/ctx.tar.gz", fetch_url="https://s3.test.invalid/b/ctx?sig=1")
    build = ExecutorBuild("r.test.invalid/i:1", "Dockerfile", context, image="bk:1")
    (unpack,) = executor_pod_spec("buildkit", build)["initContainers"]
    assert unpack["command"][2] == (
        "wget -q -O - 'https://s3.test.invalid/b/ctx?sig=1' | tar -xzf - -C /workspace"
    )
    # Kaniko reads s3:// itself.
    kaniko = executor_pod_spec("kaniko", build)["containers"][0]["args"][0]
    assert kaniko == "--context=s3://b/ctx.tar.gz"


SEED_CLUSTER = SEED.replace(
    'fairing.config.set_builder("append",',
    'fairing.config.set_builder("cluster", context_source="configmap",',
)


def test_the_seed_example_builds_in_the_cluster_then_runs_as_a_job(
    tmp_path: Path,
    bed: Bed,
    base_in_registry: BaseInRegistry,
    registry: Registry,
) -> None:
    assert SEED_CLUSTER != SEED
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "labels.csv").write_text("a,b\n1,2\n")
    (project / "train.py").write_text(
        SEED_CLUSTER.format(base=base_in_registry.oci, registry=f"{registry.host}/team")
    )
    bed.cluster.serve_log_lines(bed.namespace, ["training with 0+runtime in /app"], tmp_path)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(context_namespace(bed.cluster.kubeconfig.read_text(), bed.namespace))
    home = tmp_path / "home"
    home.mkdir()
    with TestExecutor(bed.api, bed.namespace) as played:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "train.py"],
            cwd=project,
            env=child_env(
                HOME=str(home), KUBECONFIG=str(kubeconfig), OCIBUILD_CACHE_DIR=str(tmp_path / "c")
            ),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        took = time.monotonic() - started
    assert played.errors == []
    assert proc.returncode == 0, proc.stderr
    (run,) = played.runs
    assert run.files["files/app/train.py"] == (project / "train.py").read_bytes()
    # The job deployer ran the image the executor pushed, pinned by its digest.
    assert proc.stdout.splitlines() == ["training with 0+runtime in /app"]
    events = json.loads(bed.cluster.kubectl("get", "events", "-n", bed.namespace, "-o", "json"))
    pulled = {
        e["involvedObject"]["name"]
        for e in events["items"]
        if e["involvedObject"]["kind"] == "Job" and e["reason"] == "Completed"
    }
    assert any(n.startswith("ocibuild-build-") for n in pulled), pulled
    assert any(n.startswith("seed-job-") for n in pulled), pulled
    assert bed.left() == NOTHING
    print(f"seed script, cluster build + job deploy: {took:.2f} s")


def test_fairings_facade_puts_the_config_map_where_the_job_runs_and_applies_mutators(
    bed: Bed,
    project: Path,
    registry: Registry,
    base_in_registry: BaseInRegistry,
    executor: TestExecutor,
    kaniko_log: list[str],
) -> None:
    from ocibuild.builders.cluster import ClusterBuilder as FairingClusterBuilder
    from ocibuild.builders.cluster import ConfigMapContextSource
    from ocibuild.kubernetes.utils import aws_credentials

    builder = FairingClusterBuilder(
        registry=f"{registry.host}/team",
        image_name="facade",
        base_image=base_in_registry.oci,
        context_source=ConfigMapContextSource(),  # no namespace: the Job's
        preprocessor=PythonPreprocessor(executable="train.py"),
        namespace=bed.namespace,  # not the kubeconfig's (default)
        pod_spec_mutators=[aws_credentials()],
        config_file=str(bed.cluster.kubeconfig),
    )
    result = builder.build()
    (run,) = executor.runs
    assert result.image.endswith(f"@{run.digest}")
    env = {e["name"] for e in run.spec["containers"][0]["env"]}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env
    assert builder.generate_pod_spec()["containers"][0]["image"] == result.image
    assert bed.left() == NOTHING


def test_a_reported_digest_that_is_not_one_is_refused(
    bed: Bed, project: Path, registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    broken = TestExecutor(bed.api, bed.namespace, report="sha256:1234\n")
    with broken, pytest.raises(ClusterBuildError, match=r"reported 'sha256:1234' as the pushed"):
        bed.builder(registry, base_in_registry.oci).build()
    assert broken.errors == []
    assert bed.left() == NOTHING
