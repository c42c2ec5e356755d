"""Private container engines for the tests: a dockerd and a podman ``system service``, each on a
socket of its own in a temp dir, with storage of its own (vfs), reaching no network.

Neither reads the machine's configuration: dockerd gets a ``--config-file`` of its own and
podman ``CONTAINERS_CONF`` / ``CONTAINERS_REGISTRIES_CONF`` / ``CONTAINERS_STORAGE_CONF``.
A missing binary is :class:`MissingToolError` naming the Debian package (never a skip).
Stopping an engine waits for it and its children (dockerd's containerd) to exit, then
removes its directory: nothing is left running or mounted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._tools import MissingToolError, ToolError

__all__ = ["RunningEngine", "docker_cli", "start_dockerd", "start_podman"]

_PACKAGES = {"dockerd": "docker.io", "docker": "docker.io", "podman": "podman"}
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
# dockerd writes its trust key here whatever its --data-root (20.10 has no flag to move it).
_TRUST_KEY = Path("/etc/docker/key.json")


def _require(tool: str, *candidates: str) -> str:
    """The path of ``tool`` (the first existing ``candidates`` first), or a loud failure."""
    for path in (*candidates, shutil.which(tool)):
        if path and os.access(path, os.X_OK):
            return path
    raise MissingToolError(
        f"{tool} is not installed; the engine tests need it: run "
        f"`apt-get install -y {_PACKAGES.get(tool, tool)}`"
    )


def docker_cli() -> str:
    """The docker CLI of Debian's docker.io (the engine's own version), else any on PATH."""
    return _require("docker", "/usr/bin/docker")


@dataclass
class RunningEngine:
    """A running engine: ``host`` (a DOCKER_HOST value), ``env`` (for its CLI), and helpers."""

    kind: str  # "dockerd" or "podman"
    host: str
    env: dict[str, str]
    workdir: Path
    cli: list[str]  # the command line that reaches this engine's images: docker -H / podman --root
    process: subprocess.Popen[bytes]
    log_path: Path
    children: list[int] = field(default_factory=list)
    tcp: str | None = None  # tcp://127.0.0.1:PORT when the engine listens there too (TLS)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.host}>"

    @property
    def socket(self) -> str:
        return self.host[len("unix://") :]

    def command(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The engine's CLI with ``args``; raises :class:`ToolError` with stderr on failure."""
        proc = subprocess.run(
            [*self.cli, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ToolError(
                f"`{' '.join([*self.cli, *args])}` exited with {proc.returncode}: "
                f"{proc.stderr.strip()}"
            )
        return proc

    def run(self, image: str, *args: str, timeout: float = 300) -> str:
        """``run --rm --network none IMAGE ARGS``: the container's stdout."""
        argv = ("run", "--rm", "--network", "none", image, *args)
        return self.command(*argv, timeout=timeout).stdout

    def image_id(self, name: str) -> str | None:
        """The ID (``sha256:...``) of image ``name``, or ``None`` when the engine has none."""
        proc = self.command("image", "inspect", "--format", "{{.Id}}", name, check=False)
        if proc.returncode != 0:
            return None
        value = proc.stdout.strip()
        return value if value.startswith("sha256:") else f"sha256:{value}"

    def save(self, name: str, path: Path) -> Path:
        """``save`` image ``name`` as a docker-archive at ``path``."""
        extra = ["--format", "docker-archive"] if self.kind == "podman" else []
        self.command("save", *extra, "-o", str(path), name)
        return path

    def remove(self, *names: str) -> None:
        """Remove images by name or ID (missing ones are fine)."""
        self.command("rmi", "-f", *names, check=False)

    def stop(self) -> None:
        """Stop the engine and wait for it and its children to exit."""
        _terminate(self.process.pid, self.process)
        for pid in self.children:
            _terminate(pid, None)


def _terminate(pid: int, process: subprocess.Popen[bytes] | None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (dockerd's own containerd)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _short_dir(prefix: str) -> Path:
    # Unix socket paths are limited to 107 bytes, and containerd nests its own under
    # --exec-root: keep the root short, not under pytest's deep temp dirs.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _wait_for_socket(engine: RunningEngine, what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if engine.process.poll() is not None:
            log = engine.log_path.read_text(errors="replace").strip()[-2000:]
            raise RuntimeError(f"{what} exited with {engine.process.returncode}: {log}")
        if _answers(engine.socket):
            return
        time.sleep(0.05)
    engine.stop()
    log = engine.log_path.read_text(errors="replace").strip()[-2000:]
    raise RuntimeError(f"{what} did not answer on {engine.socket} in {_START_TIMEOUT:.0f} s: {log}")


def _answers(path: str) -> bool:
    """Whether an engine answers ``GET /_ping`` on the socket at ``path``."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False


@contextlib.contextmanager
def start_dockerd(
    insecure_registries: Sequence[str] = (), *, tls_dir: Path | None = None
) -> Iterator[RunningEngine]:
    """A dockerd with its data, exec root and socket in a temp dir; stopped on exit.

    127.0.0.0/8 registries are insecure by default; ``insecure_registries`` adds others. With
    ``tls_dir`` (its ca.pem, cert.pem, key.pem) it also listens on ``.tcp`` (a free loopback
    port), verifying that clients present a certificate of that CA.
    """
    binary = _require("dockerd", "/usr/sbin/dockerd")
    cli = docker_cli()
    workdir = _short_dir("ocib-dockerd-")
    key_existed = _TRUST_KEY.exists()
    config = workdir / "daemon.json"
    config.write_text(json.dumps({"insecure-registries": list(insecure_registries)}))
    sock = workdir / "docker.sock"
    (workdir / "cli").mkdir()
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(workdir / "cli")}
    argv = [binary, "--config-file", str(config), "--data-root", str(workdir / "data")]
    argv += ["--exec-root", str(workdir / "exec"), "--pidfile", str(workdir / "pid")]
    argv += ["-H", f"unix://{sock}", "--storage-driver", "vfs", "--iptables=false"]
    argv += ["--ip6tables=false", "--bridge=none", "--ip-masq=false", "--userland-proxy=false"]
    tcp = None
    if tls_dir is not None:
        tcp = f"tcp://127.0.0.1:{_free_port()}"
        argv += ["-H", tcp, "--tlsverify", "--tlscacert", str(tls_dir / "ca.pem")]
        argv += ["--tlscert", str(tls_dir / "cert.pem"), "--tlskey", str(tls_dir / "key.pem")]
    log_path = workdir / "dockerd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    engine = RunningEngine(
        "dockerd", f"unix://{sock}", env, workdir, [cli, "-H", f"unix://{sock}"], process, log_path
    )
    engine.tcp = tcp
    try:
        _wait_for_socket(engine, "dockerd")
        engine.children = _children(process.pid)
        yield engine
    finally:
        engine.stop()
        _unmount_under(workdir)
        if not key_existed:
            with contextlib.suppress(OSError):
                _TRUST_KEY.unlink()
        shutil.rmtree(workdir, ignore_errors=True)


_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
image_copy_tmp_dir = "{tmp}"
[network]
network_config_dir = "{net}"
"""


@contextlib.contextmanager
def start_podman(insecure_registries: Sequence[str] = ()) -> Iterator[RunningEngine]:
    """``podman system service`` with its storage and socket in a temp dir; stopped on exit.

    Every registry in ``insecure_registries`` (``HOST:PORT``) is spoken to over plain HTTP.
    """
    binary = _require("podman", "/usr/bin/podman")
    workdir = _short_dir("ocib-podman-")
    (workdir / "net").mkdir()
    (workdir / "tmp").mkdir()
    conf = workdir / "containers.conf"
    conf.write_text(_CONTAINERS_CONF.format(net=workdir / "net", tmp=workdir / "tmp"))
    registries = workdir / "registries.conf"
    registries.write_text(
        "unqualified-search-registries = []\n"
        + "".join(f'[[registry]]\nlocation = "{r}"\ninsecure = true\n' for r in insecure_registries)
    )
    storage = workdir / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{workdir / "root"}"\n'
        f'runroot = "{workdir / "run"}"\n'
    )
    sock = workdir / "podman.sock"
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(conf),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "CONTAINERS_STORAGE_CONF": str(storage),
        "TMPDIR": str(workdir / "tmp"),
        "DOCKER_HOST": f"unix://{sock}",
    }
    cli = [binary, "--root", str(workdir / "root"), "--runroot", str(workdir / "run")]
    cli += ["--storage-driver", "vfs", "--tmpdir", str(workdir / "libpod")]
    log_path = workdir / "podman.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cli, "system", "service", "--time=0", f"unix://{sock}"],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    engine = RunningEngine("podman", f"unix://{sock}", env, workdir, cli, process, log_path)
    try:
        _wait_for_socket(engine, "podman system service")
        yield engine
    finally:
        engine.stop()
        _unmount_under(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def _unmount_under(directory: Path) -> None:
    """Unmount what an engine left mounted below ``directory`` (shm, netns, overlays)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(f"{directory}/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
