"""Docker Distribution (`docker-registry serve`) on a free loopback port, one per test session."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._http1 import LoggedRequest
from ._tls import TLSFiles
from ._tokenserver import TokenRequest, TokenServer
from ._tools import require, run

__all__ = [
    "BasicCredentials",
    "LoggedRequest",
    "Registry",
    "make_htpasswd",
    "new_credentials",
    "start_registry",
]

_START_TIMEOUT = 15.0
_PORT_ATTEMPTS = 5
# A line of the combined log format the registry's access log uses (query string included).
_ACCESS_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) HTTP/[^"]*" (\d{3}) ')


@dataclass(frozen=True)
class BasicCredentials:
    """A user name and password for htpasswd Basic auth."""

    username: str
    password: str


class Registry:
    """A running registry; `requests()` reads its access log."""

    def __init__(
        self,
        *,
        port: int,
        scheme: str,
        data_dir: Path,
        log_path: Path,
        stderr_path: Path,
        process: subprocess.Popen[bytes],
        credentials: BasicCredentials | None = None,
        tls: TLSFiles | None = None,
        token_server: TokenServer | None = None,
    ) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.url = f"{scheme}://{self.host}"
        self.data_dir = data_dir
        self.log_path = log_path
        self.stderr_path = stderr_path
        self.process = process
        self.token_server = token_server
        if token_server is not None:
            self.username: str | None = token_server.username
            self.password: str | None = token_server.password
        else:
            self.username = credentials.username if credentials else None
            self.password = credentials.password if credentials else None
        self.ca_file = tls.ca_file if tls else None
        self.cert_dir = tls.cert_dir if tls else None
        self._mark = 0

    def __repr__(self) -> str:
        return f"<Registry {self.url}>"

    @property
    def creds(self) -> str | None:
        """`user:password` as skopeo's `--creds` wants it, or None without auth."""
        return f"{self.username}:{self.password}" if self.username else None

    @property
    def token_requests(self) -> list[TokenRequest]:
        """The token server's record (token auth registries only)."""
        if self.token_server is None:
            raise AttributeError(f"{self!r} does not use token auth")
        return self.token_server.token_requests

    def mark(self) -> None:
        """Start a new window: `requests()` will only show what comes after this call."""
        self._mark = self.log_path.stat().st_size

    def requests(self, *, at_least: int = 0, timeout: float = 5.0) -> list[LoggedRequest]:
        """Requests logged since start or the last `mark()`, waiting for `at_least` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._read_requests()
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def _read_requests(self) -> list[LoggedRequest]:
        with self.log_path.open("rb") as log:
            log.seek(self._mark)
            text = log.read().decode(errors="replace")
        found = []
        for line in text.splitlines():
            match = _ACCESS_LINE.match(line)
            if match:
                method, path, status = match.groups()
                found.append(LoggedRequest(method, path, int(status)))
        return found

    def stop(self) -> None:
        """Stop the registry process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def start_registry(
    workdir: Path,
    *,
    credentials: BasicCredentials | None = None,
    tls: TLSFiles | None = None,
    token_server: TokenServer | None = None,
    delete_enabled: bool = True,
) -> Iterator[Registry]:
    """Run a registry with its storage and logs under `workdir`; stop it on exit.

    `delete_enabled=False` runs it as Docker Distribution ships: manifest DELETE refused (405).
    """
    binary = require("docker-registry")
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    auth = _auth_section(workdir, credentials, token_server)
    for attempt in range(_PORT_ATTEMPTS):
        port = _free_port()
        config_path = workdir / "config.yml"
        # JSON is YAML, and needs no escaping rules of its own.
        config = _config(data_dir, port, tls, auth, delete_enabled)
        config_path.write_text(json.dumps(config, indent=2))
        log_path, stderr_path = workdir / "access.log", workdir / "registry.log"
        with log_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen([binary, "serve", str(config_path)], stdout=out, stderr=err)
        registry = Registry(
            port=port,
            scheme="https" if tls else "http",
            data_dir=data_dir,
            log_path=log_path,
            stderr_path=stderr_path,
            process=process,
            credentials=credentials,
            tls=tls,
            token_server=token_server,
        )
        try:
            _wait_until_serving(registry)
            break
        except _PortTaken:
            if attempt == _PORT_ATTEMPTS - 1:
                raise
        except BaseException:
            registry.stop()
            raise
    try:
        yield registry
    finally:
        registry.stop()


def make_htpasswd(path: Path, credentials: BasicCredentials) -> None:
    """Write an htpasswd file (bcrypt) for `credentials` with apache2-utils' htpasswd."""
    out = run(["htpasswd", "-Bbn", credentials.username, credentials.password]).stdout
    path.write_bytes(out.strip() + b"\n")


def new_credentials() -> BasicCredentials:
    """A fresh user name and random password."""
    return BasicCredentials("tester", secrets.token_urlsafe(12))


class _PortTaken(RuntimeError):
    pass


def _config(
    data_dir: Path,
    port: int,
    tls: TLSFiles | None,
    auth: dict[str, Any] | None,
    delete_enabled: bool = True,
) -> dict[str, Any]:
    http: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)}
    if tls is not None:
        http["tls"] = {"certificate": str(tls.cert_file), "key": str(tls.key_file)}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(data_dir)},
            "delete": {"enabled": delete_enabled},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if auth is not None:
        config["auth"] = auth
    return config


def _auth_section(
    workdir: Path, credentials: BasicCredentials | None, token_server: TokenServer | None
) -> dict[str, Any] | None:
    if credentials is not None:
        htpasswd = workdir / "htpasswd"
        make_htpasswd(htpasswd, credentials)
        return {"htpasswd": {"realm": "ocibuild-test", "path": str(htpasswd)}}
    if token_server is not None:
        return {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.cert_path),
            }
        }
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(registry: Registry) -> None:
    # Wait for the registry's own "listening on" line, not just an open port: another
    # worker's process could hold the same port for a moment.
    needle = f"listening on {registry.host}".encode()
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        stderr = registry.stderr_path.read_bytes()
        if registry.process.poll() is not None:
            text = stderr.decode(errors="replace").strip()
            if "address already in use" in text:
                raise _PortTaken(text)
            raise RuntimeError(
                f"docker-registry exited with {registry.process.returncode} before serving "
                f"{registry.url}: {text}"
            )
        if needle in stderr and _port_open(registry.port):
            return
        time.sleep(0.02)
    registry.stop()
    text = registry.stderr_path.read_text(errors="replace").strip()
    raise RuntimeError(
        f"docker-registry did not serve {registry.url} within {_START_TIMEOUT:.0f} s: {text}"
    )


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
