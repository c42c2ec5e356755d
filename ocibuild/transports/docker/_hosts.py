"""Which engine to dial, decided as the docker CLI decides it.

In order: the host given, ``DOCKER_HOST``, the current docker context (``DOCKER_CONTEXT``, else
``currentContext`` in ``$DOCKER_CONFIG/config.json``), then ``unix:///var/run/docker.sock``.
A ``tcp://`` host speaks TLS when ``DOCKER_TLS_VERIFY`` (verifying the engine against
``$DOCKER_CERT_PATH/ca.pem``) or ``DOCKER_TLS`` is set, or when its context stores TLS
material; the client certificate ``cert.pem``/``key.pem`` is presented when present. Nothing
here dials: it only reads the environment and files, so every path can be checked alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._errors import EngineError

__all__ = ["DEFAULT_HOST", "EngineHost", "TLSConfig", "resolve_host"]

DEFAULT_HOST = "unix:///var/run/docker.sock"
POINT_ELSEWHERE = (
    "point DOCKER_HOST at a running engine (unix:///PATH/docker.sock, or tcp://HOST:PORT "
    "with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
)


@dataclass(frozen=True)
class TLSConfig:
    """TLS towards a ``tcp://`` engine: the CA that signed it and the client's own pair."""

    ca: Path | None
    cert: Path | None
    key: Path | None
    verify: bool = True

    def context(self) -> ssl.SSLContext:
        """An SSL context that checks the engine (unless ``verify`` is off) and presents the
        client certificate (when there is one)."""
        try:
            if self.verify:
                context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if self.cert is not None and self.key is not None:
                context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as err:
            where = self.ca.parent if self.ca else self.cert.parent if self.cert else "?"
            raise EngineError(f"cannot use the TLS files in {where}: {err}") from err
        return context


@dataclass(frozen=True)
class EngineHost:
    """An engine's address: ``host`` as dialled, where it came from, and its TLS if any."""

    host: str
    origin: str  # for messages: "DOCKER_HOST", "docker context 'ci'", "the default socket"
    tls: TLSConfig | None = None

    @property
    def socket(self) -> str | None:
        """The Unix socket path, for a ``unix://`` host."""
        return self.host[len("unix://") :] if self.host.startswith("unix://") else None

    @property
    def base_url(self) -> str:
        """The URL prefix requests go to (a Unix socket's requests name a dummy host)."""
        if self.socket is not None:
            return "http://docker"
        netloc = urlsplit(self.host).netloc
        return f"{'https' if self.tls else 'http'}://{netloc}"


def resolve_host(host: str | None = None, environ: Mapping[str, str] | None = None) -> EngineHost:
    """The engine to dial, from ``host`` or the environment ``environ`` (``os.environ``)."""
    env = os.environ if environ is None else environ
    if host:
        return _parse(host, "the host given", lambda: _env_tls(env))
    if env.get("DOCKER_HOST"):
        return _parse(env["DOCKER_HOST"], "DOCKER_HOST", lambda: _env_tls(env))
    context, origin = _context_name(env)
    if context and context != "default":
        return _context_host(context, origin, env)
    return _parse(DEFAULT_HOST, "the default socket", lambda: None)


def _config_dir(env: Mapping[str, str]) -> Path:
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker"


def _parse(host: str, origin: str, tls_of: Callable[[], TLSConfig | None]) -> EngineHost:
    """Check ``host``'s form; TLS (``tls_of()``) applies to ``tcp://`` hosts only."""
    scheme, sep, rest = host.partition("://")
    where = f"{host!r} ({origin})"
    if scheme == "unix" and sep and rest:
        return EngineHost(host, origin)
    if scheme == "tcp" and sep and rest:
        try:
            parts = urlsplit(host)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or not parts.hostname or parts.path not in ("", "/"):
            raise EngineError(f"invalid engine address {where}: write tcp://HOST:PORT")
        tls = tls_of()
        default_port = 2376 if tls else 2375
        netloc = parts.netloc if port else f"{parts.netloc}:{default_port}"
        return EngineHost(f"tcp://{netloc}", origin, tls)
    if scheme == "ssh":
        raise EngineError(
            f"engine address {where}: ssh:// is not supported; forward the engine's socket "
            "(ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST) and set "
            "DOCKER_HOST=unix:///tmp/docker.sock"
        )
    raise EngineError(
        f"invalid engine address {where}: write unix:///PATH/docker.sock or tcp://HOST:PORT"
    )


def _env_tls(env: Mapping[str, str]) -> TLSConfig | None:
    """TLS as ``DOCKER_TLS_VERIFY`` / ``DOCKER_TLS`` ask (any non-empty value, as the CLI)."""
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    if not verify and not env.get("DOCKER_TLS"):
        return None
    certs = Path(env["DOCKER_CERT_PATH"]) if env.get("DOCKER_CERT_PATH") else _config_dir(env)
    fix = "set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
    return _tls_files(certs, verify, fix)


def _tls_files(directory: Path, verify: bool, fix: str) -> TLSConfig:
    ca, cert, key = (directory / name for name in ("ca.pem", "cert.pem", "key.pem"))
    if verify and not ca.is_file():
        raise EngineError(f"the engine's TLS is to be verified, but {ca} does not exist; {fix}")
    if cert.is_file() != key.is_file():
        missing = key if cert.is_file() else cert
        raise EngineError(
            f"{missing} is missing: a client certificate needs both cert.pem and key.pem"
        )
    return TLSConfig(
        ca if ca.is_file() else None,
        cert if cert.is_file() else None,
        key if key.is_file() else None,
        verify,
    )


def _context_name(env: Mapping[str, str]) -> tuple[str | None, str]:
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"], "DOCKER_CONTEXT"
    config = _config_dir(env) / "config.json"
    try:
        data: Any = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as err:
        raise EngineError(f"cannot read {config}: {err}; fix or remove the file") from err
    name = data.get("currentContext") if isinstance(data, dict) else None
    if name is not None and not isinstance(name, str):
        raise EngineError(f"{config}: currentContext is not a string")
    return name or None, f"currentContext in {config}"


def _context_host(name: str, origin: str, env: Mapping[str, str]) -> EngineHost:
    """The docker endpoint of context ``name``, stored under a directory named by its sha256."""
    key = hashlib.sha256(name.encode()).hexdigest()
    contexts = _config_dir(env) / "contexts"
    meta = contexts / "meta" / key / "meta.json"
    where = f"docker context {name!r} (from {origin})"
    try:
        data: Any = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineError(
            f"{where} does not exist: {meta} is missing; create it (docker context create) or "
            "pick another with DOCKER_CONTEXT"
        ) from None
    except (OSError, ValueError) as err:
        raise EngineError(f"cannot read {where} from {meta}: {err}") from err
    endpoint = data.get("Endpoints", {}).get("docker") if isinstance(data, dict) else None
    host = endpoint.get("Host") if isinstance(endpoint, dict) else None
    if not isinstance(host, str) or not host:
        raise EngineError(f"{where} names no docker endpoint (Endpoints.docker.Host in {meta})")
    assert isinstance(endpoint, dict)
    tls_dir = contexts / "tls" / key / "docker"
    tls = None
    if tls_dir.is_dir():
        verify = not endpoint.get("SkipTLSVerify", False)
        fix = f"give the context its CA (docker context update {name} --docker ca=...)"
        tls = _tls_files(tls_dir, verify, fix)
    return _parse(host, f"docker context {name!r}", lambda: tls)
