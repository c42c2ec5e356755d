"""A registry that sends clients to a second origin: upload sessions and blob redirects point
at another loopback port, which records every ``Authorization`` header it is sent.

The registry (``Origins.registry``) authenticates with Basic or a Bearer token from its own
``/token`` realm, answers the blob and upload endpoints by pointing elsewhere, and keeps the
manifests put to it. The other origin (``Origins.elsewhere``) plays the storage behind it:
it takes uploads, serves blobs, and can challenge for credentials of its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

__all__ = ["Origin", "Origins", "two_origins"]

TOKEN = "registry-token-0123456789"
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_UPLOADS = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/$")


@dataclass
class Origin:
    """One server: its URL and what it was sent (``(method, path, Authorization or None)``)."""

    host: str = ""
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str, authorization: str | None) -> None:
        with self.lock:
            self.seen.append((method, path, authorization))

    def authorizations(self) -> list[str]:
        """Every Authorization header this origin received."""
        with self.lock:
            return [a for _, _, a in self.seen if a is not None]


@dataclass
class Origins:
    """The two servers and the shared state behind them."""

    registry: Origin
    elsewhere: Origin
    username: str
    password: str
    scheme: Literal["basic", "bearer"]
    # The other origin asks for Basic credentials of its own (this user:password) when set.
    elsewhere_credentials: tuple[str, str] | None = None
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)

    @property
    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def secrets(self) -> tuple[str, ...]:
        """What must never reach the other origin."""
        return (self.basic, f"Bearer {TOKEN}", self.password, TOKEN)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.handle(self)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: Origins, role: Literal["registry", "elsewhere"]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.role = role

    def handle(self, h: _Handler) -> None:
        state = self.state
        me = state.registry if self.role == "registry" else state.elsewhere
        me.record(h.command, h.path, h.headers.get("Authorization"))
        body = h.body()
        if self.role == "registry":
            _registry(state, h, body)
        else:
            _elsewhere(state, h, body)


def _registry(state: Origins, h: _Handler, body: bytes) -> None:
    url = urlsplit(h.path)
    other = f"http://{state.elsewhere.host}"
    if url.path == "/token":
        if h.headers.get("Authorization") != state.basic:
            h.answer(401, headers={"WWW-Authenticate": 'Basic realm="token"'})
            return
        h.answer(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode())
        return
    wanted = state.basic if state.scheme == "basic" else f"Bearer {TOKEN}"
    if h.headers.get("Authorization") != wanted:
        if state.scheme == "basic":
            challenge = 'Basic realm="hostile"'
        else:
            realm = f"http://{state.registry.host}/token"
            challenge = f'Bearer realm="{realm}",service="hostile"'
        h.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        return
    if url.path == "/v2/":
        h.answer(200, b"{}")
        return
    if _UPLOADS.match(url.path) and h.command == "POST":
        upload = f"u{len(state.uploads)}"
        state.uploads[upload] = bytearray()
        h.answer(202, headers={"Location": f"{other}/upload/{upload}", "Range": "0-0"})
        return
    blob = _BLOB.match(url.path)
    if blob:
        if h.command == "HEAD" and blob["digest"] not in state.blobs:
            h.answer(404)
            return
        h.answer(307, headers={"Location": f"{other}/blob/{blob['digest']}"})
        return
    manifest = _MANIFEST.match(url.path)
    if manifest and h.command == "PUT":
        media_type = h.headers.get("Content-Type") or ""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        state.manifests[manifest["ref"]] = (media_type, body)
        state.manifests[digest] = (media_type, body)
        h.answer(201, headers={"Docker-Content-Digest": digest})
        return
    if manifest and manifest["ref"] in state.manifests:
        media_type, data = state.manifests[manifest["ref"]]
        h.answer(200, data, {"Content-Type": media_type})
        return
    h.answer(404, b'{"errors":[{"code":"NOT_FOUND"}]}')


def _elsewhere(state: Origins, h: _Handler, body: bytes) -> None:
    url = urlsplit(h.path)
    if state.elsewhere_credentials is not None:
        user, password = state.elsewhere_credentials
        wanted = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if h.headers.get("Authorization") != wanted:
            h.answer(401, headers={"WWW-Authenticate": 'Basic realm="storage"'})
            return
    if url.path.startswith("/upload/"):
        upload = url.path.rsplit("/", 1)[1]
        data = state.uploads.setdefault(upload, bytearray())
        data += body
        if h.command == "PUT":
            digest = parse_qs(url.query)["digest"][0]
            state.blobs[digest] = bytes(data)
            h.answer(201, headers={"Docker-Content-Digest": digest})
            return
        headers = {"Location": f"http://{state.elsewhere.host}{url.path}"}
        headers["Range"] = f"0-{max(0, len(data) - 1)}"
        h.answer(202, headers=headers)
        return
    if url.path.startswith("/blob/"):
        digest = url.path.rsplit("/", 1)[1]
        if digest not in state.blobs:
            h.answer(404)
            return
        h.answer(200, state.blobs[digest], {"Content-Type": "application/octet-stream"})
        return
    h.answer(404)


@contextmanager
def two_origins(
    scheme: Literal["basic", "bearer"],
    *,
    username: str = "alice",
    password: str = "s3cret-password",
    elsewhere_credentials: tuple[str, str] | None = None,
) -> Iterator[Origins]:
    """Start the registry and the other origin on loopback; stop both at the end."""
    state = Origins(
        Origin(), Origin(), username, password, scheme, elsewhere_credentials=elsewhere_credentials
    )
    servers = [_Server(state, "registry"), _Server(state, "elsewhere")]
    state.registry.host = f"127.0.0.1:{servers[0].server_address[1]}"
    state.elsewhere.host = f"127.0.0.1:{servers[1].server_address[1]}"
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield state
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
