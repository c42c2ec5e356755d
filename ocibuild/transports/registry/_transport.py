"""Where requests meet sockets: httpcore's connection pool, every wait cut to a deadline.

Each request carries an :class:`Operation` (what it is for, and when it must be over).
While a request is sent and its answer read, every socket wait (connecting, the TLS
handshake, each read and write, waiting for a pooled connection) is cut to what is left
of the operation's budget. A registry that accepts and stays silent, or drips its answer
a byte at a time, so costs at most the budget, whatever the socket timeouts say. Long
transfers call :meth:`Operation.renew` as bytes move: the budget bounds each wait, not the
length of a healthy transfer.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import httpcore
import httpx

from ..._errors import RegistryError
from ...oci._fields import MAX_DOCUMENT

__all__ = ["MAX_BODY", "OPERATION", "Operation", "Transport"]

OPERATION = "ocibuild.operation"  # the request extension that holds the Operation
MAX_BODY = MAX_DOCUMENT  # answers read whole (manifests, errors, tokens)
# The shortest budget an operation gets, so that a budget of 0 means "one attempt, no
# retries" rather than "fail before the first byte".
_MIN_BUDGET = 1.0
# Writes go out in slices, each with its own cut of the deadline; httpcore's stream would
# otherwise resend the rest of a large buffer with the same (full) timeout again and again.
_WRITE_SLICE = 256 << 10


class Operation:
    """One logical request, retries included: a name for messages and a renewable deadline."""

    def __init__(
        self, what: str, budget: float, *, stream: bool = False, max_body: int = MAX_BODY
    ) -> None:
        self.what = what
        self.budget = max(budget, _MIN_BUDGET)
        self.stream = stream  # the answer's body is read by the caller, piece by piece
        self.max_body = max_body
        self.started = time.monotonic()
        self._expires = self.started + self.budget

    def __repr__(self) -> str:
        return f"<Operation {self.what!r} {self.remaining():.1f} s left>"

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self._expires - time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the operation started."""
        return time.monotonic() - self.started

    def renew(self) -> None:
        """Bytes moved: the next wait gets the whole budget again."""
        self._expires = time.monotonic() + self.budget


_waiting = threading.local()


@contextlib.contextmanager
def _waiting_for(operation: Operation | None) -> Iterator[None]:
    """Make ``operation`` the one whose deadline this thread's socket waits obey."""
    previous = getattr(_waiting, "operation", None)
    _waiting.operation = operation
    try:
        yield
    finally:
        _waiting.operation = previous


def _cut(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` cut to the current operation's deadline; ``expired`` once it passed."""
    operation: Operation | None = getattr(_waiting, "operation", None)
    if operation is None:
        return timeout
    left = operation.remaining()
    if left <= 0:
        raise expired(f"{operation.what}: no answer within the budget")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cut(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_SLICE):
            # A memoryview slice is not a copy; httpcore's streams send any buffer.
            piece = cast(bytes, view[start : start + _WRITE_SLICE])
            self._inner.write(piece, _cut(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, cut))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.connect_tcp(host, port, cut, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - registries are reached over TCP
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, cut, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore's errors as httpx's, most specific first.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as err:
        for core, mapped in _ERRORS:
            if isinstance(err, core):
                raise mapped(str(err)) from err
        raise


class _ResponseStream(httpx.SyncByteStream):
    """An answer's body; each read waits under the operation's deadline, in whatever thread."""

    def __init__(self, inner: Any, operation: Operation | None) -> None:
        self._inner = inner
        self._operation = operation

    def __iter__(self) -> Iterator[bytes]:
        parts = iter(self._inner)
        while True:
            with _as_httpx_errors(), _waiting_for(self._operation):
                part = next(parts, None)
            if part is None:
                return
            yield part

    def close(self) -> None:
        with _as_httpx_errors():
            self._inner.close()


class Transport(httpx.BaseTransport):
    """HTTP/1.1 through httpcore's pool (direct, or through an HTTP(S) or SOCKS proxy)."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None, limits: httpx.Limits, proxy: str | None
    ) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            proxy=_proxy(proxy) if proxy is not None else None,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        operation: Operation | None = request.extensions.get(OPERATION)
        with _as_httpx_errors(), _waiting_for(operation):
            timeouts = dict(request.extensions.get("timeout", {}))
            timeouts["pool"] = _cut(timeouts.get("pool"), httpcore.PoolTimeout)
            assert isinstance(request.stream, httpx.SyncByteStream)
            core = self._pool.handle_request(
                httpcore.Request(
                    method=request.method,
                    url=httpcore.URL(
                        scheme=request.url.raw_scheme,
                        host=request.url.raw_host,
                        port=request.url.port,
                        target=request.url.raw_path,
                    ),
                    headers=request.headers.raw,
                    content=request.stream,
                    extensions={**request.extensions, "timeout": timeouts},
                )
            )
        return httpx.Response(
            status_code=core.status,
            headers=core.headers,
            stream=_ResponseStream(core.stream, operation),
            extensions=core.extensions,
        )

    def close(self) -> None:
        with _as_httpx_errors():
            self._pool.close()


def _proxy(url: str) -> httpcore.Proxy:
    """An HTTP(S) or SOCKS proxy, from a ``scheme://[user:password@]host:port`` URL."""
    parsed = httpx.Proxy(url)
    if parsed.url.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise RegistryError(
            f"the proxy {parsed.url} is a SOCKS proxy, which needs the socksio package: "
            "pip install socksio"
        )
    return httpcore.Proxy(url=str(parsed.url), auth=parsed.raw_auth)
