"""``ocibuild run --deployer job`` and ``ocibuild deploy IMAGE`` against the kwok cluster.

Each test runs the real CLI in a subprocess: it builds and pushes to the test registry, the
job deployer creates the Job through the real API server, kwok's Stages play the pod (the
``ocibuild.test/scenario`` label picks how), and kwok serves the pod's log.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import SCENARIO_LABEL, BaseInRegistry, KubeCluster, Registry, Scenario

pytestmark = pytest.mark.xdist_group("kube")
yaml: Any = importlib.import_module("yaml")  # PyYAML ships no type information

LOG_LINES = ["epoch 1 loss 0.5", "epoch 2 loss 0.25"]
SHA256 = "@sha256:"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    (path / "train.py").write_text("print('training')\n")
    return path


@pytest.fixture
def env(kube_cluster: KubeCluster, tmp_path: Path) -> dict[str, str]:
    return child_env(
        KUBECONFIG=str(kube_cluster.kubeconfig), OCIBUILD_CACHE_DIR=str(tmp_path / "cache")
    )


@pytest.fixture
def logs(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> list[str]:
    """Every pod of the test's namespace logs LOG_LINES.

    The tests that read it use the ``slow`` scenario: the job deployer loses the log of a pod
    whose Job completes before the pod watch reports it started (kwok's instant pods).
    """
    kube_cluster.serve_log_lines(kube_namespace, LOG_LINES, tmp_path)
    return LOG_LINES


def run_args(
    base: BaseInRegistry, registry: Registry, namespace: str, scenario: str, *extra: str
) -> list[str]:
    return [
        "run",
        "train.py",
        "--base",
        base.oci,
        "--registry",
        f"{registry.host}/cli-kube",
        "-n",
        namespace,
        "--deployer-option",
        "labels=" + json.dumps({SCENARIO_LABEL: scenario}),
        "--deployer-option",
        "timeout=60",
        *extra,
    ]


def job(cluster: KubeCluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        cluster.kubectl("get", "job", name, "-n", namespace, "-o", "json")
    )
    return found


def jobs_in(cluster: KubeCluster, namespace: str) -> list[str]:
    return cluster.kubectl("get", "jobs", "-n", namespace, "-o", "name").split()


def with_tty_stderr(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (as a person sees it): code, stdout, tty."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocibuild", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, stdout, b"".join(chunks).decode().replace("\r\n", "\n")


def test_run_streams_the_log_and_shows_the_state_on_a_terminal(
    project: Path,
    env: dict[str, str],
    base_in_registry: BaseInRegistry,
    registry: Registry,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    logs: list[str],
) -> None:
    args = run_args(base_in_registry, registry, kube_namespace, Scenario.SLOW)
    code, stdout, terminal = with_tty_stderr(args, env, project)
    assert code == 0, terminal
    image, *log = stdout.splitlines()
    assert image.startswith(f"{registry.host}/cli-kube/ocibuild-job:") and SHA256 in image
    assert log == logs
    progress = [line for line in terminal.splitlines() if line.startswith("ocibuild: info: Job")]
    assert progress, terminal
    assert all(line.startswith(f"ocibuild: info: Job {kube_namespace}/") for line in progress)
    assert "Succeeded" in progress[-1]
    assert jobs_in(kube_cluster, kube_namespace) == []  # a Job that succeeded is cleaned up


def test_a_failed_job_is_one_line_naming_the_exit_code(
    project: Path,
    env: dict[str, str],
    base_in_registry: BaseInRegistry,
    registry: Registry,
    kube_namespace: str,
) -> None:
    proc = ocibuild_cli(
        *run_args(base_in_registry, registry, kube_namespace, Scenario.EXIT_3), env=env, cwd=project
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("ocibuild: error:")]
    assert len(errors) == 1, proc.stderr
    assert "exited with code 3" in errors[0]
    assert all(line.startswith("ocibuild: ") for line in lines), proc.stderr  # no traceback


def test_json_is_one_object_and_the_log_goes_to_stderr(
    project: Path,
    env: dict[str, str],
    base_in_registry: BaseInRegistry,
    registry: Registry,
    kube_namespace: str,
    logs: list[str],
) -> None:
    args = run_args(base_in_registry, registry, kube_namespace, Scenario.SLOW, "--json")
    proc = ocibuild_cli(*args, env=env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["kind"] == "Job"
    assert out["namespace"] == kube_namespace
    assert out["state"] == "Succeeded"
    assert out["name"].startswith("ocibuild-job-")
    assert (
        out["image"].startswith(f"{registry.host}/cli-kube/ocibuild-job:")
        and SHA256 in out["image"]
    )
    stderr = proc.stderr.splitlines()
    assert [line for line in stderr if line in logs] == logs


def test_no_wait_returns_with_the_job_created(
    project: Path,
    env: dict[str, str],
    base_in_registry: BaseInRegistry,
    registry: Registry,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    args = run_args(base_in_registry, registry, kube_namespace, Scenario.SLOW, "--no-wait")
    proc = ocibuild_cli(*args, env=env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    image, summary = proc.stdout.splitlines()
    kind_where, _, state = summary.partition(": ")
    kind, _, where = kind_where.partition(" ")
    namespace, _, name = where.partition("/")
    assert (kind, namespace) == ("Job", kube_namespace)
    assert state in ("Pending", "Running")  # a slow pod runs for seconds
    created = job(kube_cluster, kube_namespace, name)
    assert created["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_dry_run_prints_manifests_the_server_accepts_and_creates_nothing(
    project: Path,
    env: dict[str, str],
    base_in_registry: BaseInRegistry,
    registry: Registry,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    args = run_args(
        base_in_registry,
        registry,
        kube_namespace,
        Scenario.SUCCESS,
        "--dry-run",
        "--deployer-option",
        "image_pull_secret=true",
    )
    proc = ocibuild_cli(*args, env=env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    documents = list(yaml.safe_load_all(proc.stdout))
    assert [d["kind"] for d in documents] == ["Secret", "Job"]
    assert proc.stdout.startswith("---\n") and proc.stdout.count("\n---\n") == 1
    image = documents[1]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert SHA256 in image and image in proc.stderr  # the pushed image, named on stderr
    applied = kube_cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=proc.stdout.encode()
    )
    assert "job.batch/" in applied and "(server dry run)" in applied
    assert jobs_in(kube_cluster, kube_namespace) == []
    secrets = kube_cluster.kubectl("get", "secrets", "-n", kube_namespace, "-o", "name")
    assert "-pull" not in secrets


def test_deploy_pins_a_tag_to_its_digest(
    env: dict[str, str],
    base_in_registry: BaseInRegistry,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tmp_path: Path,
) -> None:
    proc = ocibuild_cli(
        "deploy",
        base_in_registry.oci,
        "-n",
        kube_namespace,
        "--no-wait",
        "--cmd",
        "sh -c 'echo hi'",
        "--env",
        "TEAM=ml",
        "--deployer-option",
        "labels=" + json.dumps({SCENARIO_LABEL: Scenario.SUCCESS}),
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    pinned = f"{base_in_registry.oci}@{base_in_registry.oci_digest}"
    assert out["image"] == pinned
    container = job(kube_cluster, kube_namespace, out["name"])["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["name"] == "main"
    assert container["image"] == pinned
    assert container["command"] == ["sh", "-c", "echo hi"]
    env_vars = {e["name"]: e["value"] for e in container["env"]}
    assert env_vars == {"OCIBUILD_RUNTIME": "1", "FAIRING_RUNTIME": "1", "TEAM": "ml"}


def test_deploy_without_cmd_keeps_the_image_entrypoint(
    env: dict[str, str],
    base_in_registry: BaseInRegistry,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tmp_path: Path,
) -> None:
    proc = ocibuild_cli(
        "deploy", base_in_registry.docker, "-n", kube_namespace, "--dry-run", env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    (manifest,) = yaml.safe_load_all(proc.stdout)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container
    assert container["image"] == f"{base_in_registry.docker}@{base_in_registry.docker_digest}"
    assert jobs_in(kube_cluster, kube_namespace) == []
