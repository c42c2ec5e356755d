"""A real Kubernetes control plane with kwok's fake nodes, one per test session.

kube-apiserver, etcd, the controller manager (the real Job controller) and the scheduler run as
processes, built from published Go modules by ``scripts/kube-tools.sh``; kwok plays the kubelet
of two nodes, moving pods through the Stages in ``_kube_stages``. Nothing is downloaded here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ._kube_stages import SCENARIO_STAGES
from ._tools import MissingToolError, ToolError, run

__all__ = [
    "KUBE_BIN_ENV",
    "KUBE_TOOLS",
    "KubeCluster",
    "find_kube_bin",
    "start_kube_cluster",
    "wait_for",
]

KUBE_BIN_ENV = "OCIBUILD_KUBE_BIN"
KUBE_TOOLS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "kwokctl",
)
_REPO = Path(__file__).resolve().parents[2]
_NODES = 2
_T = TypeVar("_T")
_LOG_STAMP = "2026-01-01T00:00:00.000000000Z"


class KubeCluster:
    """A running kwok cluster: its kubeconfig, kubectl, and fresh namespaces."""

    def __init__(self, name: str, bin_dir: Path, workdir: Path) -> None:
        self.name = name
        self.bin_dir = bin_dir
        self.workdir = workdir
        self.kubeconfig = workdir / "clusters" / name / "kubeconfig.yaml"

    def __repr__(self) -> str:
        return f"<KubeCluster {self.name} {self.kubeconfig}>"

    def kubectl(self, *args: str, input: bytes | None = None, timeout: float = 60.0) -> str:
        """Run kubectl against this cluster; return its stdout, raise ToolError on failure."""
        argv: list[str | os.PathLike[str]] = [
            self.bin_dir / "kubectl",
            "--kubeconfig",
            self.kubeconfig,
            *args,
        ]
        return run(argv, input=input, timeout=timeout).stdout.decode()

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> None:
        """Create or update `objects` (dicts as kubectl reads them)."""
        document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.kubectl("apply", "-f", "-", input=json.dumps(document).encode())

    def new_namespace(self, prefix: str = "test") -> str:
        """Create a namespace with a fresh name and return the name."""
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.kubectl("create", "namespace", name)
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace and what is in it, without waiting for the deletion to end."""
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
        self.kubectl(
            "delete", "clusterlogs", "-l", f"ocibuild.test/namespace={name}", "--ignore-not-found"
        )

    def serve_log_lines(self, namespace: str, lines: Sequence[str], directory: Path) -> Path:
        """Make every pod of `namespace` log `lines` (written in CRI format to a file in
        `directory`, whose path is returned)."""
        logs_file = directory / f"{namespace}.log"
        logs_file.write_text("".join(f"{_LOG_STAMP} stdout F {line}\n" for line in lines))
        self.serve_logs(namespace, logs_file)
        return logs_file

    def serve_logs(self, namespace: str, logs_file: Path) -> None:
        """Make every pod of `namespace` report the CRI-format `logs_file` as its log."""
        logs = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {
                "name": f"logs-{namespace}",
                "labels": {"ocibuild.test/namespace": namespace},
            },
            "spec": {
                "selector": {"matchNamespaces": [namespace]},
                "logs": [{"logsFile": str(logs_file), "follow": False}],
            },
        }
        self.apply([logs])


def find_kube_bin() -> Path:
    """The directory of the test bed's binaries, or MissingToolError saying how to build them."""
    value = os.environ.get(KUBE_BIN_ENV)
    if value:
        bin_dir = Path(value)
    else:
        # Not built yet is an error, not a 15-minute surprise inside pytest: only ask the
        # script where a finished build is.
        script = _REPO / "scripts" / "kube-tools.sh"
        proc = subprocess.run(
            [script, "--built"], capture_output=True, text=True, timeout=30, check=False
        )
        if proc.returncode != 0:
            raise MissingToolError(
                f"the Kubernetes test bed is not built and {KUBE_BIN_ENV} is not set: run "
                f"`{KUBE_BIN_ENV}=$(scripts/kube-tools.sh)` first (about 18 minutes cold), "
                "or scripts/test.sh, which does it"
            )
        bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    missing = [tool for tool in KUBE_TOOLS if not os.access(bin_dir / tool, os.X_OK)]
    if missing:
        raise MissingToolError(
            f"{KUBE_BIN_ENV}={bin_dir} lacks {', '.join(missing)}: rebuild it with "
            "scripts/kube-tools.sh"
        )
    return bin_dir


@contextlib.contextmanager
def start_kube_cluster(bin_dir: Path, workdir: Path) -> Iterator[KubeCluster]:
    """Start a kwok cluster with two Ready nodes and the scenario Stages; delete it after."""
    name = f"ocibuild-{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "KWOK_WORKDIR": str(workdir),
        "KWOK_KUBECTL_BINARY": str(bin_dir / "kubectl"),
    }
    kwokctl = bin_dir / "kwokctl"
    create: list[str | os.PathLike[str]] = [kwokctl, "--name", name, "create", "cluster"]
    create += _create_flags(bin_dir)
    _refuse_downloads(run([*create, "--dry-run"], env=env).stdout.decode())
    cluster = KubeCluster(name, bin_dir, workdir)
    try:
        with _creation_lock():
            try:
                run(create, env=env, timeout=180)
            except ToolError as err:
                logs = _component_logs(workdir / "clusters" / name)
                raise ToolError(f"{err}\n{logs}") from err
        fast = bin_dir.parent / "share" / "kwok" / "kustomize" / "stage" / "fast"
        cluster.kubectl("apply", "-k", str(fast))
        cluster.apply(SCENARIO_STAGES)
        scale = ["--name", name, "scale", "node", "--replicas", str(_NODES)]
        run([kwokctl, *scale], env=env)
        wait_for(lambda: _ready_nodes(cluster) >= _NODES or None, 60, f"{_NODES} Ready nodes")
        yield cluster
    finally:
        run([kwokctl, "--name", name, "delete", "cluster"], env=env, timeout=120)


def wait_for(check: Callable[[], _T | None], timeout: float, what: str) -> _T:
    """Poll `check` until it returns something other than None; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def _creation_lock() -> Iterator[None]:
    # kwokctl picks its ports by probing from 32767 down, so two clusters created at once (two
    # xdist workers, two sessions) take the same ports. Held until this one listens on them.
    with open(Path(tempfile.gettempdir()) / "ocibuild-kwokctl-create.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _create_flags(bin_dir: Path) -> list[str]:
    binaries = {
        "--kube-apiserver-binary": "kube-apiserver",
        "--kube-controller-manager-binary": "kube-controller-manager",
        "--kube-scheduler-binary": "kube-scheduler",
        "--kwok-controller-binary": "kwok",
        "--etcd-binary": "etcd",
    }
    flags = ["--runtime", "binary"]
    for flag, tool in binaries.items():
        flags += [flag, str(bin_dir / tool)]
    # An empty --kubeconfig keeps kwokctl from merging the cluster into the user's own.
    # ClusterExec: `kubectl exec` runs on this host in a directory the test names (the pvc
    # context store's uploads).
    crds = "Stage,Logs,ClusterLogs,ClusterExec"
    return [*flags, "--enable-crds", crds, "--kubeconfig=", "--wait", "2m"]


def _refuse_downloads(plan: str) -> None:
    downloads = [line for line in plan.splitlines() if line.startswith("# Download http")]
    if downloads:
        raise MissingToolError(
            "kwokctl would download parts of the cluster, and the test bed must be built from "
            f"scripts/kube-tools.sh alone: {downloads[0]}"
        )


def _ready_nodes(cluster: KubeCluster) -> int:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
    return sum(
        1
        for node in nodes
        for condition in node.get("status", {}).get("conditions", [])
        if condition["type"] == "Ready" and condition["status"] == "True"
    )


def _component_logs(cluster_dir: Path, lines: int = 20) -> str:
    parts = []
    for log in sorted((cluster_dir / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(parts) or f"(no component logs in {cluster_dir})"
