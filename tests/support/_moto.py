"""moto's S3 (`moto_server`) on a free loopback port, one per test session.

`POST /moto-api/reset` wipes every bucket between tests; `POST /moto-api/reset-auth` with a
count turns on moto's IAM checks after that many requests ("inf" turns them off again), which
is how a test gets a real "credentials refused" answer.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._tools import MissingToolError

__all__ = ["MotoServer", "start_moto_server"]

_START_TIMEOUT = 20.0
_PORT_ATTEMPTS = 5
ACCESS_KEY = "AKIAOCIBUILDTEST0001"
SECRET_KEY = "ocibuild/test/secret/key/0000000000000000"
REGION = "us-east-1"


@dataclass(frozen=True)
class MotoServer:
    """A running moto_server: its URL, and the credentials the tests give it."""

    url: str
    log_path: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def reset(self) -> None:
        """Forget every bucket and object, and stop checking credentials."""
        self._post("/moto-api/reset", b"")
        self._post("/moto-api/reset-auth", b"inf")

    def check_credentials(self) -> None:
        """From the next request on, refuse credentials moto's IAM does not know."""
        self._post("/moto-api/reset-auth", b"0")

    def client(self, **options: Any) -> Any:
        """A boto3 S3 client of this server (path-style), for checking what a store did."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, **options),
        )

    def _post(self, path: str, body: bytes) -> None:
        # Not form-encoded (urllib's default), or Flask hands moto an empty body.
        headers = {"Content-Type": "text/plain"}
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


@contextlib.contextmanager
def start_moto_server(workdir: Path) -> Iterator[MotoServer]:
    """Start `moto_server -H 127.0.0.1 -p PORT`; stop it after."""
    # The one installed with this interpreter's moto first (the test extra), then PATH's.
    beside = Path(sys.executable).with_name("moto_server")
    binary = str(beside) if beside.exists() else shutil.which("moto_server")
    if binary is None:
        raise MissingToolError("moto_server is missing: pip install 'moto[server]'")
    for attempt in range(_PORT_ATTEMPTS):
        port = _free_port()
        log_path = workdir / f"moto-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = MotoServer(f"http://127.0.0.1:{port}", log_path)
        try:
            if _wait_until_serving(server, process):
                break
        except BaseException:
            _stop(process)
            raise
        _stop(process)
        if attempt == _PORT_ATTEMPTS - 1:
            raise RuntimeError(f"moto_server found no free port: {log_path.read_text()}")
    try:
        yield server
    finally:
        _stop(process)


def _wait_until_serving(server: MotoServer, process: subprocess.Popen[bytes]) -> bool:
    """True once the server answers; False if its port was taken."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = server.log_path.read_text(errors="replace")
            if "already in use" in text:
                return False
            raise RuntimeError(f"moto_server exited with {process.returncode}: {text.strip()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(server.url + "/moto-api/data.json", timeout=2),
        ):
            return True
        time.sleep(0.1)
    raise RuntimeError(f"moto_server did not serve {server.url} within {_START_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
