"""Kubeflow and KServe on the kwok test cluster: the real CRDs and the real controllers.

``scripts/kubeflow-tools.sh`` builds the JobSet controller, the Trainer v2 controller and the
Training Operator v1 from published Go modules, and copies the CRDs beside them. This module
applies the CRDs to a running ``KubeCluster``, starts the three controllers as processes with
their admission webhooks registered (so the API server defaults and validates as on a real
cluster), applies the torch-distributed ClusterTrainingRuntime and starts the KServe stand-in
of ``_operators`` (KServe's own controller needs Knative or a gateway).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import config

from ._kube import KubeCluster, wait_for
from ._kubeflow_webhooks import (
    TRAINING_OPERATOR_NAMESPACE,
    WEBHOOK_DNS_NAMES,
    training_operator_secret,
    webhook_configurations,
)
from ._operators import KServeStandIn
from ._tls import WebhookTLS, make_webhook_tls
from ._tools import MissingToolError, ToolError

__all__ = [
    "KUBEFLOW_DIR_ENV",
    "KUBEFLOW_TOOLS",
    "TRAINING_OPERATOR_NAMESPACE",
    "KubeflowStack",
    "find_kubeflow_dir",
    "install_kubeflow",
]

KUBEFLOW_DIR_ENV = "OCIBUILD_KUBEFLOW_DIR"
KUBEFLOW_TOOLS = ("jobset", "trainer-controller-manager", "training-operator")
_REPO = Path(__file__).resolve().parents[2]
# A ceiling, not an estimate: on a loaded 2-core machine the CRDs alone have taken 60 s.
_STARTUP_TIMEOUT = 180.0
# The Training Operator's cert-controller checks that this file exists before it starts any
# controller; the path is a constant in its pkg/cert, not derived from TMPDIR.
_OPERATOR_CERT_PROBE = Path("/tmp/k8s-webhook-server/serving-certs/tls.crt")


@dataclass
class KubeflowStack:
    """The running controllers; `logs(name)` shows what one of them wrote."""

    cluster: KubeCluster
    kubeflow_dir: Path
    kserve: KServeStandIn
    processes: dict[str, _Process] = field(default_factory=dict)

    def logs(self, name: str, lines: int = 40) -> str:
        """The last `lines` lines a controller process wrote (a key of `processes`)."""
        return self.processes[name].tail(lines)


def find_kubeflow_dir() -> Path:
    """The directory kubeflow-tools.sh built, or MissingToolError saying how to build it."""
    value = os.environ.get(KUBEFLOW_DIR_ENV)
    if value:
        root = Path(value)
    else:
        script = _REPO / "scripts" / "kubeflow-tools.sh"
        proc = subprocess.run(
            [script, "--built"], capture_output=True, text=True, timeout=30, check=False
        )
        if proc.returncode != 0:
            raise MissingToolError(
                f"the Kubeflow test bed is not built and {KUBEFLOW_DIR_ENV} is not set: run "
                f"`{KUBEFLOW_DIR_ENV}=$(scripts/kubeflow-tools.sh)` first (11 to 27 "
                "minutes cold), or scripts/test.sh, which does it"
            )
        root = Path(proc.stdout.strip().splitlines()[-1])
    missing = [t for t in KUBEFLOW_TOOLS if not os.access(root / "bin" / t, os.X_OK)]
    if missing or not (root / "crds").is_dir():
        raise MissingToolError(
            f"{KUBEFLOW_DIR_ENV}={root} lacks {', '.join(missing) or 'crds/'}: rebuild it with "
            "scripts/kubeflow-tools.sh"
        )
    return root


@contextlib.contextmanager
def install_kubeflow(
    cluster: KubeCluster, kubeflow_dir: Path, workdir: Path
) -> Iterator[KubeflowStack]:
    """Install the CRDs and start the controllers on `cluster`; stop them all on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)
    )
    stack = KubeflowStack(cluster, kubeflow_dir, KServeStandIn(api))
    try:
        applying = _start_crd_applies(cluster, kubeflow_dir)
        # Meanwhile (the API server takes seconds to digest the CRDs): certificates, ports,
        # the Training Operator's Secret and every webhook registration.
        tls = make_webhook_tls("training-operator-ca", WEBHOOK_DNS_NAMES)
        cert_dir = _write_serving_certs(workdir, tls)
        ports = dict(zip(KUBEFLOW_TOOLS, _free_ports(len(KUBEFLOW_TOOLS)), strict=True))
        webhooks = webhook_configurations(ports, tls)
        cluster.apply([*training_operator_secret(tls), *webhooks])
        _wait_for_crds(cluster, applying)
        launchers = {
            "jobset": _jobset_argv,
            "trainer-controller-manager": _trainer_argv,
            "training-operator": _operator_argv,
        }
        for name in KUBEFLOW_TOOLS:
            argv = launchers[name](kubeflow_dir, workdir, cert_dir, ports[name])
            stack.processes[name] = _Process.start(name, argv, workdir, cluster.kubeconfig)
        urls = [h["clientConfig"]["url"] for config in webhooks for h in config["webhooks"]]
        for name in KUBEFLOW_TOOLS:
            mine = [url for url in urls if url.startswith(f"https://127.0.0.1:{ports[name]}/")]
            _wait_for_webhooks(stack.processes[name], mine, tls.ca_cert)
        _apply_runtime(cluster, kubeflow_dir / "runtimes" / "torch_distributed.yaml", stack)
        for process in stack.processes.values():
            process.check_alive()
        stack.kserve.start()
        yield stack
    finally:
        stack.kserve.stop()
        with contextlib.suppress(ToolError):
            cluster.kubectl(
                "delete",
                "validatingwebhookconfiguration,mutatingwebhookconfiguration",
                "-l",
                "ocibuild.test/kubeflow=true",
                "--ignore-not-found",
                "--wait=false",
            )
        for process in stack.processes.values():
            process.stop()
        api.close()


class _Process:
    """One controller process, its output in a log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log = log

    @classmethod
    def start(cls, name: str, argv: Sequence[str], workdir: Path, kubeconfig: Path) -> _Process:
        log = workdir / f"{name}.log"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "TMPDIR": str(workdir / "tmp")}
        env.pop("MY_POD_NAMESPACE", None)
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        return cls(name, popen, log)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} ({self.log})\n" + "\n".join(text)

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ToolError(f"{self.name} exited with {code} while starting\n{self.tail()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def _write_serving_certs(workdir: Path, tls: WebhookTLS) -> Path:
    # controller-runtime's default certificate directory under the TMPDIR each process gets.
    cert_dir = workdir / "tmp" / "k8s-webhook-server" / "serving-certs"
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / "tls.crt").write_bytes(tls.cert)
    (cert_dir / "tls.key").write_bytes(tls.key)
    (cert_dir / "tls.key").chmod(0o600)
    if not _OPERATOR_CERT_PROBE.exists():
        # Only its existence is checked; the webhook server reads the files under TMPDIR.
        _OPERATOR_CERT_PROBE.parent.mkdir(parents=True, exist_ok=True)
        _OPERATOR_CERT_PROBE.write_bytes(tls.cert)
    return cert_dir


def _start_crd_applies(cluster: KubeCluster, kubeflow_dir: Path) -> list[subprocess.Popen[bytes]]:
    """Apply each CRD file in its own kubectl, all at once: the API server's work on them
    (schemas, CEL rules, OpenAPI) is most of the install time and uses both cores so."""
    kubectl = [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig)]
    # Server-side: the InferenceService CRD is far beyond client-side apply's annotation limit.
    apply = [*kubectl, "apply", "--server-side", "--force-conflicts", "-o", "name", "-f"]
    return [
        subprocess.Popen([*apply, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for path in sorted((kubeflow_dir / "crds").rglob("*.yaml"))
    ]


def _wait_for_crds(cluster: KubeCluster, applying: Sequence[subprocess.Popen[bytes]]) -> None:
    names = []
    for proc in applying:
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise ToolError(f"`{proc.args!r}` failed: {err.decode().strip()}")
        names += out.decode().split()
    # Not `kubectl wait`: it fails outright on a CRD whose status has no conditions yet.
    listing = (
        "{range .items[*]}{.metadata.name}:"
        "{range .status.conditions[*]}{.type}={.status},{end}\n{end}"
    )

    def established() -> bool | None:
        lines = cluster.kubectl("get", *names, "-o", f"jsonpath={listing}").splitlines()
        return True if sum("Established=True" in line for line in lines) == len(names) else None

    wait_for(established, _STARTUP_TIMEOUT, f"{len(names)} CRDs Established")
    # Established comes before discovery lists the resource, and a controller whose REST
    # mapper misses a kind exits (the Training Operator) or never watches it.
    kinds = ",".join(name.split("/", 1)[1] for name in names)

    def served() -> bool | None:
        try:
            cluster.kubectl("get", kinds, "--all-namespaces", "-o", "name")
        except ToolError:
            return None
        return True

    wait_for(served, _STARTUP_TIMEOUT, f"the CRDs' kinds in discovery ({kinds})")


def _jobset_argv(kubeflow_dir: Path, workdir: Path, cert_dir: Path, port: int) -> list[str]:
    settings = {
        "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "internalCertManagement": {"enable": False},
        "leaderElection": {"leaderElect": False},
        "webhook": {"port": port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "metrics": {"bindAddress": "0"},
        "health": {"healthProbeBindAddress": "0"},
    }
    path = workdir / "jobset-config.json"
    path.write_text(json.dumps(settings))
    return [str(kubeflow_dir / "bin" / "jobset"), "--config", str(path)]


def _trainer_argv(kubeflow_dir: Path, workdir: Path, cert_dir: Path, port: int) -> list[str]:
    # Its webhook server reads cert_dir as controller-runtime's default, from TMPDIR.
    settings = {
        "apiVersion": "config.trainer.kubeflow.org/v1alpha1",
        "kind": "Configuration",
        "certManagement": {"enable": False},
        "leaderElection": {"leaderElect": False},
        "webhook": {"port": port, "host": "127.0.0.1"},
        "metrics": {"bindAddress": "0"},
        "health": {"healthProbeBindAddress": "0"},
    }
    path = workdir / "trainer-config.json"
    path.write_text(json.dumps(settings))
    return [str(kubeflow_dir / "bin" / "trainer-controller-manager"), "--config", str(path)]


def _operator_argv(kubeflow_dir: Path, workdir: Path, cert_dir: Path, port: int) -> list[str]:
    return [
        str(kubeflow_dir / "bin" / "training-operator"),
        "--enable-scheme=pytorchjob",
        "--enable-scheme=tfjob",
        f"--webhook-server-port={port}",
        "--metrics-bind-address=0",
        "--health-probe-bind-address=0",
        "--leader-elect=false",
    ]


def _wait_for_webhooks(process: _Process, urls: Sequence[str], ca_cert: bytes) -> None:
    """Wait until `process` answers on every webhook URL, over TLS the API server trusts.

    A controller listens as soon as its first webhook is registered and registers the others
    after, so each path is asked for: any answer but 404 means its handler is there.
    """
    context = ssl.create_default_context(cadata=ca_cert.decode())
    pending = list(urls)

    def serving() -> bool | None:
        process.check_alive()
        while pending:
            url = urllib.parse.urlsplit(pending[0])
            conn = http.client.HTTPSConnection(url.netloc, timeout=2, context=context)
            try:
                conn.request("GET", url.path)
                if conn.getresponse().status == 404:
                    return None
            except OSError:
                return None
            finally:
                conn.close()
            pending.pop(0)
        return True

    try:
        wait_for(serving, _STARTUP_TIMEOUT, f"{process.name}'s webhooks {pending}")
    except TimeoutError as err:
        raise ToolError(f"{err}\n{process.tail()}") from err


def _apply_runtime(cluster: KubeCluster, path: Path, stack: KubeflowStack) -> None:
    # The Trainer's validating webhook admits it, and may answer before its caches sync.
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while True:
        try:
            cluster.kubectl("apply", "--server-side", "-f", str(path))
            return
        except ToolError as err:
            if time.monotonic() > deadline:
                logs = "\n".join(p.tail() for p in stack.processes.values())
                raise ToolError(f"{err}\n{logs}") from err
            time.sleep(0.2)


def _free_ports(count: int) -> list[int]:
    # All bound at once, so that the kernel cannot hand the same port out twice.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
