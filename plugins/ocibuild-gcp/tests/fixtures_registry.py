"""Fixture: a real registry on loopback (Debian's ``docker-registry``, Docker Distribution),
for the end-to-end tests that push the image a Vertex AI job runs.

``registry`` is one process for the whole session, storing in a temporary directory, on a
free loopback port (ocibuild speaks plain HTTP to loopback registries without a flag). The
tests are skipped where ``docker-registry`` is not installed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

__all__ = ["LocalRegistry", "registry"]

_START_SECONDS = 15.0
_PORT_ATTEMPTS = 5
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class LocalRegistry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``."""

    host: str
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def manifest(self, repository: str, reference: str) -> httpx.Response:
        """``GET /v2/REPO/manifests/REF`` (a tag or a digest), asking for any image type."""
        return httpx.get(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": MANIFEST_TYPES},
        )

    def blob(self, repository: str, digest: str) -> bytes:
        """The blob ``digest`` of ``repository``, checked against its digest."""
        answer = httpx.get(f"{self.url}/v2/{repository}/blobs/{digest}", follow_redirects=True)
        answer.raise_for_status()
        algorithm, _, hexdigest = digest.partition(":")
        assert hashlib.new(algorithm, answer.content).hexdigest() == hexdigest, digest
        return answer.content


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry for the session, with its storage and logs in a temporary directory."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail(
            "docker-registry (Debian's Docker Distribution) is not installed: "
            "run scripts/test.sh, which installs it"
        )
    workdir = tmp_path_factory.mktemp("registry")
    for attempt in range(_PORT_ATTEMPTS):
        port = _free_port()
        config = workdir / "config.yml"
        config.write_text(json.dumps(_config(workdir / "data", port)))  # JSON is YAML
        stderr_path = workdir / "registry.log"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            if _serving(process, stderr_path, f"127.0.0.1:{port}"):
                break
        except BaseException:
            _stop(process)
            raise
        _stop(process)
        if attempt == _PORT_ATTEMPTS - 1:
            raise RuntimeError(f"docker-registry found no free port: {stderr_path.read_text()}")
    try:
        yield LocalRegistry(f"127.0.0.1:{port}", workdir / "data")
    finally:
        _stop(process)


def _config(data_dir: Path, port: int) -> dict[str, object]:
    return {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(data_dir)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }


def _serving(process: subprocess.Popen[bytes], stderr_path: Path, host: str) -> bool:
    """True once the registry says it listens on ``host``; False when the port was taken.
    Its own line, not an open port: another test process's server may hold the port."""
    needle = f"listening on {host}".encode()
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        text = stderr_path.read_bytes()
        if process.poll() is not None:
            if b"address already in use" in text:
                return False
            said = text.decode(errors="replace").strip()
            raise RuntimeError(f"docker-registry exited with {process.returncode}: {said}")
        if needle in text:
            return True
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not serve on {host} in {_START_SECONDS:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
