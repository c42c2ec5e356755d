"""An HTTP/1.1 proxy in front of a plain-HTTP registry that fails chosen requests on purpose.

Each client connection gets its own upstream connection (keep-alive on both sides); bodies
are relayed as they arrive, chunked or sized, so streaming uploads stay streaming.

Faults: answer a status (a 503 storm with ``times=None``), drop the connection, stall (take
the request and never answer), drip the registry's answer a byte at a time, or cut the
exchange mid-body (the registry gets part of the request body, or the client part of the
answer). A :class:`Hold` keeps chosen requests back until another request has been seen.
"""

from __future__ import annotations

import contextlib
import http
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from io import BufferedReader
from typing import Literal
from urllib.parse import urlsplit

from ._http1 import Head, LoggedRequest, body_pieces, read_head

__all__ = ["Fault", "FaultProxy", "Hold"]

Action = Literal["drop", "status", "stall", "drip", "cut"]

_IDLE_TIMEOUT = 300.0
_BUFFER = 256 * 1024
_TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS ClientHello record
# The error code a registry would send with each status.
_CODES = {
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NAME_UNKNOWN",
    416: "RANGE_INVALID",
    429: "TOOMANYREQUESTS",
    503: "UNAVAILABLE",
}


@dataclass
class Fault:
    """A fault to inject into matching requests, `times` times (None: every time)."""

    method: str | None
    path_contains: str | None
    action: Action
    status: int
    retry_after: float | None
    times: int | None
    after_bytes: int | None
    code: str | None
    interval: float = 0.2
    drip_head: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request and still has uses left."""
        return (
            (self.times is None or self.times > 0)
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path_contains is None or self.path_contains in path)
        )


@dataclass
class Hold:
    """Requests matching ``method``/``path_contains`` wait until a request whose path contains
    ``until`` has been seen (before or while they wait), or ``timeout`` seconds pass."""

    method: str | None
    path_contains: str
    until: str
    timeout: float
    held: int = 0
    released_by: list[str] = field(default_factory=list)  # "trigger" or "timeout", per request
    _seen: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path_contains in path
        )

    def note(self, path: str) -> None:
        """A request for `path` was seen."""
        if self.until in path:
            self._seen.set()

    def wait(self) -> None:
        self.held += 1
        self.released_by.append("trigger" if self._seen.wait(self.timeout) else "timeout")


class FaultProxy:
    """A loopback proxy to `upstream_url` with programmable faults; see `add_fault`."""

    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or not upstream.hostname:
            raise ValueError(f"the fault proxy forwards to plain http:// only, not {upstream_url}")
        self.upstream_url = upstream_url
        self._upstream = (upstream.hostname, upstream.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._holds: list[Hold] = []
        self._log: list[LoggedRequest] = []
        self._sockets: set[socket.socket] = set()
        self._upstream_gone = False
        self._stopped = False
        self.connections = 0  # client connections accepted so far
        self._accepter = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._accepter.start()

    def __repr__(self) -> str:
        return f"<FaultProxy {self.url} -> {self.upstream_url}>"

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_fault(
        self,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        action: Action = "status",
        status: int = 503,
        retry_after: float | None = None,
        times: int | None = 1,
        after_bytes: int | None = None,
        code: str | None = None,
        interval: float = 0.2,
        drip_head: bool = False,
    ) -> Fault:
        """Fail the next `times` requests matching method and path substring.

        "drop" closes the connection without answering, after reading `after_bytes` of the body
        if given (else right after the head). "status" reads the body and answers `status` with
        a registry-style JSON error (`code`, default from the status) and `Retry-After` if set.
        "stall" reads the request and never answers (until the client hangs up). "drip" relays
        the registry's answer body (and head too with `drip_head`) one byte every `interval`
        seconds. "cut" relays `after_bytes`
        (default: half) of the request body to the registry and hangs up on both sides; for a
        request without a body it relays half of the registry's answer body instead (or hangs
        up before an answer that has no body, once the registry has acted on the request).
        """
        if action not in ("drop", "status", "stall", "drip", "cut"):
            raise ValueError(f"unknown fault action {action!r}")
        fault = Fault(
            method, path_contains, action, status, retry_after, times, after_bytes, code,
            interval, drip_head,
        )  # fmt: skip
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault not yet used up."""
        with self._lock:
            self._faults.clear()

    def hold(
        self, *, path_contains: str, until: str, method: str | None = None, timeout: float = 60.0
    ) -> Hold:
        """Keep matching requests back until a request whose path contains `until` is seen."""
        hold = Hold(method, path_contains, until, timeout)
        with self._lock:
            self._holds.append(hold)
        return hold

    @property
    def requests(self) -> list[LoggedRequest]:
        """(method, path, status returned) of every request, status None when dropped."""
        with self._lock:
            return list(self._log)

    def close_upstream(self) -> None:
        """The registry vanishes: cut every connection; new ones are closed unanswered."""
        self._upstream_gone = True
        self._cut_all()

    def stop(self) -> None:
        """Stop listening (connections are refused from now on) and cut every connection."""
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._cut_all()
        self._accepter.join(5)

    # -- serving ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        reader = client.makefile("rb")
        upstream: _Upstream | None = None
        try:
            while not self._stopped:
                if reader.peek(1)[:1] == _TLS_HANDSHAKE:
                    # A client probing for HTTPS first (skopeo with tls-verify=false): answer
                    # in plain HTTP, as Go's server does, so it falls back at once.
                    client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                    return
                head = read_head(reader)
                if head is None:
                    return
                method, path = _request_target(head)
                self._hold(method, path)
                if self._upstream_gone:
                    self._record(method, path, None)
                    return
                if (head.get("Expect") or "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    head = head.without("Expect")
                fault = self._take_fault(method, path)
                if fault is not None and fault.action == "drop":
                    if fault.after_bytes is not None:
                        _drain(reader, head, limit=fault.after_bytes)
                    self._record(method, path, None)
                    return
                if fault is not None and fault.action == "stall":
                    self._record(method, path, None)
                    while reader.read1(_BUFFER):  # until the client gives up
                        pass
                    return
                if fault is not None and fault.action == "status":
                    _drain(reader, head)
                    self._record(method, path, fault.status)
                    response = _error_response(fault, close=head.wants_close)
                    if method == "HEAD":
                        # A HEAD answer has headers only; a body would corrupt the next reply.
                        response = response[: response.index(b"\r\n\r\n") + 4]
                    client.sendall(response)
                    if head.wants_close:
                        return
                    continue
                if upstream is None:
                    upstream = self._connect_upstream()
                    if upstream is None:
                        _drain(reader, head)
                        self._record(method, path, 502)
                        client.sendall(_bad_gateway(self.upstream_url))
                        return
                if not self._forward(method, path, head, reader, client, upstream, fault):
                    return
        except (OSError, ValueError):
            return  # a peer went away or sent garbage: drop the connection, as a server would
        finally:
            reader.close()
            self._untrack(client)
            if upstream is not None:
                upstream.close()
                self._untrack(upstream.sock)

    def _forward(
        self,
        method: str,
        path: str,
        head: Head,
        reader: BufferedReader,
        client: socket.socket,
        upstream: _Upstream,
        fault: Fault | None,
    ) -> bool:
        """Relay one exchange (spoilt by a drip or cut `fault`); say whether both connections
        can carry another."""
        upstream.sock.sendall(head.encode())
        has_body = head.chunked or bool(head.content_length)
        if fault is not None and fault.action == "cut" and has_body:
            limit = fault.after_bytes
            if limit is None:
                limit = (head.content_length or 2) // 2
            for wire, _ in body_pieces(reader, head, limit=limit):
                upstream.sock.sendall(wire)
            self._record(method, path, None)
            return False  # the registry is left with part of the body
        for wire, _ in body_pieces(reader, head):
            upstream.sock.sendall(wire)
        response = read_head(upstream.reader)
        while response is not None and _is_interim(response):
            client.sendall(response.encode())
            response = read_head(upstream.reader)
        if response is None:
            raise ConnectionError("the upstream closed the connection without answering")
        status = int(response.start.split()[1])
        bodiless = method == "HEAD" or status in (204, 304) or response.content_length == 0
        if fault is not None and fault.action == "cut" and bodiless:
            self._record(method, path, None)
            return False  # an answer without a body: hang up before it
        self._record(method, path, status)
        if fault is not None and fault.action == "drip" and fault.drip_head:
            _drip(client, response.encode(), fault.interval)
        else:
            client.sendall(response.encode())
        if method == "HEAD" or status in (204, 304):
            return not head.wants_close and not response.wants_close
        body = body_pieces(upstream.reader, response, until_close=True)
        if fault is not None and fault.action in ("cut", "drip"):
            data = b"".join(wire for wire, _ in body)
            if fault.action == "cut":
                client.sendall(data[: len(data) // 2])
                return False
            _drip(client, data, fault.interval)
        else:
            for wire, _ in body:
                client.sendall(wire)
        framed = response.chunked or response.content_length is not None
        return framed and not head.wants_close and not response.wants_close

    def _connect_upstream(self) -> _Upstream | None:
        try:
            sock = socket.create_connection(self._upstream, timeout=10)
        except OSError:
            return None
        self._track(sock)
        return _Upstream(sock, sock.makefile("rb"))

    def _hold(self, method: str, path: str) -> None:
        with self._lock:
            holds = list(self._holds)
        for hold in holds:
            hold.note(path)
        for hold in holds:
            if hold.matches(method, path):
                hold.wait()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, status: int | None) -> None:
        with self._lock:
            self._log.append(LoggedRequest(method, path, status))

    def _track(self, sock: socket.socket) -> None:
        sock.settimeout(_IDLE_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _cut_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class _Upstream:
    sock: socket.socket
    reader: BufferedReader

    def close(self) -> None:
        self.reader.close()


def _request_target(head: Head) -> tuple[str, str]:
    parts = head.start.split()
    if len(parts) != 3:
        raise ValueError(f"not an HTTP request line: {head.start!r}")
    return parts[0], parts[1]


def _is_interim(response: Head) -> bool:
    status = int(response.start.split()[1])
    return 100 <= status < 200 and status != 101


def _drip(client: socket.socket, data: bytes, interval: float) -> None:
    for i in range(len(data)):
        client.sendall(data[i : i + 1])
        time.sleep(interval)


def _drain(reader: BufferedReader, head: Head, limit: int | None = None) -> None:
    for _ in body_pieces(reader, head, limit=limit):
        pass


def _error_response(fault: Fault, *, close: bool) -> bytes:
    code = fault.code or _CODES.get(fault.status, "UNKNOWN")
    message = f"injected by the test fault proxy ({fault.status})"
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Docker-Distribution-Api-Version", "registry/2.0"),
    ]
    if fault.retry_after is not None:
        headers.append(("Retry-After", f"{fault.retry_after:g}"))
    if close:
        headers.append(("Connection", "close"))
    return Head(f"HTTP/1.1 {fault.status} {_reason(fault.status)}", tuple(headers)).encode() + body


def _bad_gateway(upstream_url: str) -> bytes:
    body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": f"{upstream_url} refused"}]})
    headers = (
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    )
    return Head("HTTP/1.1 502 Bad Gateway", headers).encode() + body.encode()


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Injected"
