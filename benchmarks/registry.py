"""A throwaway Docker Distribution registry on loopback, and the few v2 calls the suite makes.

The suite starts ``docker-registry serve`` on a free 127.0.0.1 port with storage in a temp dir,
pushes the base image into it with plain HTTP (monolithic POST then PUT ?digest=), reads
manifests back to check what each tool pushed, and stops it. The access log is off: logging every
request would put the registry's own log writes into every measurement.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from .baseimage import V2S2_MANIFEST, BaseImage
from .measure import BenchError, ProcessCpu, missing_tool

__all__ = ["BASE_REPO", "MANIFEST_ACCEPT", "Registry", "V2Client", "start_registry"]

BASE_REPO = "bench/base"
BASE_REF_TAG = "latest"
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        V2S2_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
_CONFIG = """\
version: 0.1
log: {{level: warn, accesslog: {{disabled: true}}}}
storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}
http: {{addr: 127.0.0.1:{port}}}
"""


class V2Client:
    """The few Registry v2 calls the suite makes itself, over plain HTTP."""

    def __init__(self, host: str) -> None:
        self.host = host

    def _request(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{self.host}{url}")
        conn = http.client.HTTPConnection(parts.netloc, timeout=300, blocksize=1 << 20)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def upload_blob(self, repo: str, path: Path, digest: str) -> None:
        """Upload a file as a blob: POST for a session, then one PUT ?digest= with the bytes."""
        status, headers, body = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        if status != 202:
            raise BenchError(f"registry refused an upload session ({status}): {body[:200]!r}")
        location = headers["location"]
        sep = "&" if "?" in location else "?"
        with open(path, "rb") as f:
            status, _, body = self._request(
                "PUT",
                f"{location}{sep}digest={digest}",
                body=f,
                headers={
                    "Content-Length": str(os.path.getsize(path)),
                    "Content-Type": "application/octet-stream",
                },
            )
        if status != 201:
            raise BenchError(f"blob upload failed ({status}): {body[:200]!r}")

    def put_manifest(self, repo: str, tag: str, data: bytes, media_type: str) -> None:
        """PUT a manifest under a tag."""
        status, _, body = self._request(
            "PUT", f"/v2/{repo}/manifests/{tag}", body=data, headers={"Content-Type": media_type}
        )
        if status != 201:
            raise BenchError(f"manifest PUT failed ({status}): {body[:300]!r}")

    def manifest(self, repo: str, ref: str) -> tuple[str, dict[str, Any]]:
        """The manifest's digest and parsed JSON, asking for every manifest type."""
        status, _, body = self._request(
            "GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT}
        )
        if status != 200:
            raise BenchError(f"no manifest {repo}:{ref} in the registry ({status}): {body[:200]!r}")
        return "sha256:" + hashlib.sha256(body).hexdigest(), json.loads(body)

    def push_base(self, base: BaseImage) -> None:
        """Push the base image as Docker schema 2 to ``bench/base:latest``."""
        for blob in (*base.layers, base.config):
            self.upload_blob(BASE_REPO, blob.path, blob.digest)
        self.put_manifest(BASE_REPO, BASE_REF_TAG, base.v2s2_manifest, V2S2_MANIFEST)


class Registry(V2Client):
    """A running registry: its address (``127.0.0.1:PORT``), process and storage."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes], workdir: Path) -> None:
        super().__init__(f"127.0.0.1:{port}")
        self.port = port
        self.proc = proc
        self.workdir = workdir
        self.cpu = ProcessCpu(proc.pid)

    @property
    def fairing_host(self) -> str:
        """``localhost:PORT``: Fairing speaks plain HTTP only to hosts named localhost."""
        return f"localhost:{self.port}"

    def base_ref(self, host: str | None = None) -> str:
        """The pushed base image as ``host/bench/base:latest``."""
        return f"{host or self.host}/{BASE_REPO}:{BASE_REF_TAG}"

    def stop(self) -> None:
        """Stop the process and delete its storage."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_registry(parent: Path | None = None, timeout: float = 15.0) -> Registry:
    """Start a registry on a free loopback port with fresh storage; wait until /v2/ answers."""
    exe = shutil.which("docker-registry")
    if exe is None:
        raise missing_tool("docker-registry", "apt-get install -y docker-registry")
    workdir = Path(tempfile.mkdtemp(prefix="bench-registry-", dir=parent))
    port = _free_port()
    config = workdir / "config.yml"
    config.write_text(_CONFIG.format(data=workdir / "data", port=port))
    log = open(workdir / "registry.log", "wb")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        [exe, "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
    log.close()
    registry = Registry(port, proc, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = (workdir / "registry.log").read_text(errors="replace")[-800:]
            shutil.rmtree(workdir, ignore_errors=True)
            raise BenchError(f"docker-registry exited at start-up: {text}")
        try:
            if registry._request("GET", "/v2/")[0] == 200:
                return registry
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)
    registry.stop()
    raise BenchError(f"docker-registry did not answer on {registry.host} within {timeout}s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
