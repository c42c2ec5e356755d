"""Retrying single requests: jittered backoff inside the operation's budget, as a transport.

:class:`RetryTransport` wraps the real transport, so every request the client sends (token
requests of the auth flow included) is retried the same way: connection errors and 408,
429, 500, 502, 503 and 504 answers, after ``Retry-After`` or a jittered exponential backoff,
while the operation's budget lasts. Answers are read whole inside the loop (except those of
streamed operations, the blob downloads), so a connection that breaks or stalls mid-body
is retried like one that failed before the answer. When the budget is spent the error
names the operation and the last failure.

Only requests whose replay can do no harm are retried: see :func:`replayable`.

A registry that has never answered is not waited for: a host name that does not resolve, or a
first connection that is refused, fails at once with one line (retries are for registries
that answered before and are restarting, or that answer 5xx/429). A first connection that
times out is still retried: a slow network may yet answer.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import httpx

from ..._errors import RegistryError, RetryBudgetExceededError
from ._transport import OPERATION, Operation

__all__ = [
    "REPLAYABLE",
    "RETRYABLE_STATUS",
    "RetryPolicy",
    "RetryTransport",
    "describe",
    "unreachable",
    "replayable",
    "retry_after",
    "tls_error",
]

log = logging.getLogger("ocibuild.registry")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REPLAYABLE = "ocibuild.replayable"  # a request extension: the sender vouches for a replay
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    """How long operations may take while they fail (``budget``), and the backoff between tries."""

    budget: float
    first_delay: float = 0.1
    max_delay: float = 5.0

    def operation(
        self, what: str, *, stream: bool = False, max_body: int | None = None
    ) -> Operation:
        """A new operation under this policy's budget."""
        if max_body is None:
            return Operation(what, self.budget, stream=stream)
        return Operation(what, self.budget, stream=stream, max_body=max_body)

    def pause(
        self,
        operation: Operation,
        attempts: int,
        last: str,
        *,
        asked: float | None = None,
        status: int | None = None,
        url: str | None = None,
    ) -> None:
        """Wait before the next try, or raise :class:`RetryBudgetExceededError` if none fits."""
        delay = asked if asked is not None else self._backoff(attempts)
        left = operation.remaining()
        if left <= 0 or delay > left:
            hint = f" (the registry asked to wait {asked:g} s)" if asked is not None else ""
            plural = "s" if attempts != 1 else ""
            raise RetryBudgetExceededError(
                f"{operation.what} failed after {attempts} attempt{plural} in "
                f"{operation.elapsed():.1f} s; last error: {last}{hint}; the retry budget of "
                f"{self.budget:g} s is spent, check that the registry is reachable and healthy",
                status=status,
                url=url,
            )
        log.info("%s: %s; retrying in %.2f s", operation.what, last, delay)
        time.sleep(delay)

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.max_delay, self.first_delay * 2 ** (attempts - 1))
        return random.uniform(ceiling / 2, ceiling)


class RetryTransport(httpx.BaseTransport):
    """Sends each request through ``inner`` until it ends without a transient failure."""

    def __init__(self, inner: httpx.BaseTransport, policy: RetryPolicy) -> None:
        self.inner = inner
        self.policy = policy
        self._answered: set[tuple[str, str, int | None]] = set()  # origins that answered
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        operation = request.extensions.get(OPERATION)
        if operation is None:
            operation = self.policy.operation(f"{request.method} {clean(request.url)}")
            request.extensions = {**request.extensions, OPERATION: operation}
        again = replayable(request)
        origin = (request.url.scheme, request.url.host, request.url.port)
        attempts = 0
        while True:
            asked: float | None = None
            status: int | None = None
            try:
                response = self.inner.handle_request(request)
                with self._lock:
                    self._answered.add(origin)
                if response.status_code not in RETRYABLE_STATUS or not again:
                    if not operation.stream:
                        _read_whole(response, operation)
                    return response
                status, asked = response.status_code, retry_after(response)
                last = f"HTTP {status}"
                _discard(response)
            except httpx.TransportError as err:
                if not again or not transient(err):
                    raise
                with self._lock:
                    answered = origin in self._answered
                reason = None if answered else unreachable(err)
                if reason is not None:
                    raise RegistryError(
                        f"cannot reach {request.url.netloc.decode('ascii')}: {reason}",
                        url=clean(request.url),
                    ) from None
                last = describe(err)
            attempts += 1
            self.policy.pause(
                operation, attempts, last, asked=asked, status=status, url=clean(request.url)
            )

    def close(self) -> None:
        self.inner.close()


def replayable(request: httpx.Request) -> bool:
    """Whether sending ``request`` again can do no harm.

    GET, HEAD, PUT and DELETE are idempotent (RFC 9110): a PUT that commits a blob and is
    sent again finds its session closed, which the upload's commit step reads as such.
    Three other requests are safe by the protocol:

    - ``POST .../blobs/uploads/`` opens an upload session, or mounts a blob: a replay leaves
      at most an empty session behind, which the registry expires; a mount is idempotent.
    - ``PATCH`` with ``Content-Range`` sends a chunk at a stated offset: a registry refuses a
      chunk that does not start where the upload stands, so a replay never stores bytes twice
      (a registry that kept part of the first try answers 416 or drops the session, which the
      per-blob step handles by starting the blob over).
    - an OAuth2 refresh-token grant (marked ``REPLAYABLE`` by the auth flow) only issues a token.

    Anything else is sent once.
    """
    if request.method in _IDEMPOTENT or request.extensions.get(REPLAYABLE):
        return True
    if request.method == "POST":
        return request.url.path.endswith("/blobs/uploads/")
    return request.method == "PATCH" and "content-range" in request.headers


def transient(err: httpx.TransportError) -> bool:
    """Whether a transport failure may pass: not a TLS failure, a bad proxy or a bad URL."""
    if isinstance(err, (httpx.UnsupportedProtocol, httpx.ProxyError, httpx.LocalProtocolError)):
        return False
    return not (isinstance(err, httpx.ConnectError) and tls_error(err) is not None)


def _read_whole(response: httpx.Response, operation: Operation) -> None:
    """Read an answer into memory (bounded by ``operation.max_body``) and keep it there."""
    parts: list[bytes] = []
    size = 0
    raw = response.stream
    assert isinstance(raw, httpx.SyncByteStream)
    try:
        for part in raw:
            size += len(part)
            if size > operation.max_body:
                raise RegistryError(
                    f"{operation.what}: the answer is larger than {operation.max_body >> 20} MiB; "
                    "refusing to read it",
                    status=response.status_code,
                )
            parts.append(part)
    finally:
        raw.close()
    response.stream = httpx.ByteStream(b"".join(parts))


def _discard(response: httpx.Response) -> None:
    """Drop an answer that will be retried (reading a short error body keeps the connection)."""
    with contextlib.suppress(httpx.HTTPError):
        if int(response.headers.get("content-length") or 0) <= 64 << 10:
            response.read()
    response.close()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by ``Retry-After`` (delta seconds or an HTTP date), if present."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe(err: Exception) -> str:
    """``Type: message`` of a transport failure, for one-line errors."""
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if isinstance(err, httpx.TransportError) else text


def unreachable(err: BaseException) -> str | None:
    """What makes a first contact hopeless, in words, if that is why ``err`` happened: the
    host name does not resolve, or nothing accepts connections at the address."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, socket.gaierror):
            return (
                "the host name does not resolve; check its spelling, and this machine's "
                "network and DNS"
            )
        if isinstance(current, ConnectionRefusedError):
            return (
                "the connection is refused (nothing listens there); check the host and port, "
                "and that the registry is running"
            )
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def tls_error(err: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind ``err``, if one is."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def clean(url: httpx.URL) -> str:
    """A URL without its query (upload URLs carry opaque state that helps no one)."""
    return str(url.copy_with(query=None))
