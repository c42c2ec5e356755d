"""A small threaded HTTP/1.1 server on loopback that routes requests to Python handlers.

Each emulator (token endpoint, metadata server, Vertex AI, GCS) is an :class:`Emulator` with
routes ``(method, path regex) -> handler``. A handler takes the :class:`Request` (with the
regex's groups) and returns a :class:`Reply`; every request is recorded, so a test can check
what reached the server. A handler may raise :class:`Drop` to cut the connection without an
answer (a network failure as the client sees it).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Drop", "Emulator", "Handler", "Reply", "Request", "error_reply", "serving"]


@dataclass
class Request:
    """One request as the server received it (the body read in full, chunked or not)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    groups: tuple[str, ...] = ()

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def bearer(self) -> str | None:
        """The token of ``Authorization: Bearer TOKEN``, if sent."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token if scheme.lower() == "bearer" and token else None


@dataclass
class Reply:
    """What a handler answers: a status, a body (JSON when ``json`` is given) and headers."""

    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Drop(Exception):
    """Raised by a handler: close the connection without answering."""


Handler = Callable[[Request], Reply]


def error_reply(status: int, reason: str, message: str) -> Reply:
    """An error as Google's JSON APIs send it: ``{"error": {"code", "message", "status"}}``."""
    return Reply(status, {"error": {"code": status, "message": message, "status": reason}})


class Emulator:
    """A routing HTTP server; use :func:`serving` to run it for the length of a block."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[Request] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorate a handler for ``method`` and a path matching ``pattern`` in full."""

        def add(handler: Handler) -> Handler:
            self._routes.append((method, re.compile(pattern), handler))
            return handler

        return add

    @property
    def port(self) -> int:
        assert self._server is not None, f"{self.name} is not running"
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    def received(self, method: str | None = None, pattern: str | None = None) -> list[Request]:
        """The requests recorded so far, optionally those of ``method`` whose path matches."""
        with self._lock:
            found = list(self.requests)
        return [
            r
            for r in found
            if (method is None or r.method == method)
            and (pattern is None or re.fullmatch(pattern, r.path))
        ]

    def dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                request.groups = match.groups()
                return handler(request)
        return error_reply(
            404, "NOT_FOUND", f"{self.name}: no route for {request.method} {request.path}"
        )

    def start(self) -> None:
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body go out in two writes; with Nagle's algorithm the
            # second waits for the client's delayed ACK of the first, 40 ms a request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the requests are recorded instead

            def _serve(self) -> None:
                url = urlsplit(self.path)
                request = Request(
                    self.command,
                    url.path,
                    parse_qs(url.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    self._body(),
                )
                try:
                    reply = emulator.dispatch(request)
                except Drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = reply.body
                headers = dict(reply.headers)
                if reply.json is not None:
                    body = json.dumps(reply.json).encode()
                    headers.setdefault("Content-Type", "application/json; charset=UTF-8")
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        # A short poll: stop() waits for serve_forever's next poll (0.5 s by default), and
        # every test stops a server or two.
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextmanager
def serving(emulator: Emulator) -> Iterator[Emulator]:
    """Run ``emulator`` on a free loopback port for the length of the block."""
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
