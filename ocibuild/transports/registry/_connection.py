"""The connection to one registry host: a pooled ``httpx.Client``, its scheme, TLS, and auth.

:meth:`Connection.exchange` is the only place requests are sent: one request with the auth
flow, through :class:`~._retry.RetryTransport` (which retries it) over
:class:`~._transport.Transport` (which bounds every wait by the operation's budget).
"""

from __future__ import annotations

import logging
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from ..._errors import RegistryError
from ...oci import Reference
from ._auth import AuthState, RegistryAuth, origin_of
from ._errors import raise_for_status
from ._options import RegistryOptions, tls_context
from ._retry import RetryPolicy, RetryTransport, describe, tls_error
from ._trace import TracingTransport
from ._transport import OPERATION, Operation, Transport

__all__ = ["Body", "Connection"]

log = logging.getLogger("ocibuild.registry")

# Each wait is also cut to what is left of the operation's budget (see _transport.py).
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_SMALL_BODY = 64 << 10


class _WrongScheme(Exception):
    """The probe spoke the wrong protocol (HTTP to a TLS port or TLS to a plain one)."""


class Body:
    """A request body that can be sent again (auth and retries) and dropped once sent.

    httpcore's connection pool keeps each request in a reference cycle that only the cyclic
    garbage collector frees; holding 8 MiB upload chunks there would grow memory by hundreds
    of MiB between collections, so the bytes are let go as soon as the exchange is over.
    ``on_piece`` is called before each piece goes out (uploads renew their deadline there).
    """

    def __init__(self, pieces: Sequence[bytes], on_piece: Callable[[], None] | None = None) -> None:
        self._pieces = pieces
        self._on_piece = on_piece
        self.size = sum(len(p) for p in pieces)
        self.sent = 0  # bytes handed to the wire, replays included

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if self._on_piece is not None:
                self._on_piece()
            self.sent += len(piece)
            yield piece

    def release(self) -> None:
        self._pieces = ()


class Connection:
    """One registry host: pooled connections (thread-safe), scheme decided once, auth state."""

    def __init__(self, registry: str, options: RegistryOptions) -> None:
        self.registry = registry
        self.options = options
        self.retry = RetryPolicy(options.retry_budget)
        probe = Reference(registry, "probe")
        self.host = probe.api_host
        self._loopback = probe.is_loopback
        self._insecure = options.is_insecure(registry) or options.is_insecure(self.host)
        self.auth = AuthState(registry, options)
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        # One pooled client per scheme: plain HTTP needs no TLS context (loading the CA
        # bundle is a visible part of a short command's start-up), HTTPS verifies.
        self._clients: dict[str, httpx.Client] = {}
        self._base: str | None = None

    def close(self) -> None:
        """Close pooled connections (they are reopened if used again)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def http(self) -> httpx.Client:
        """The pooled HTTP client for the registry's scheme, created on first use."""
        return self._client(self.base_url())

    def _client(self, base: str) -> httpx.Client:
        scheme = base.split(":", 1)[0]
        with self._lock:
            if scheme not in self._clients:
                self._clients[scheme] = self._new_http(scheme)
            return self._clients[scheme]

    def _new_http(self, scheme: str) -> httpx.Client:
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = _unverified() if self._insecure else tls_context(self.options.ca_file)
        room = max(4, 2 * self.options.concurrency)
        limits = httpx.Limits(max_connections=room, max_keepalive_connections=room)
        # Proxies from the environment apply to remote registries, never to this machine.
        proxy = None if self._loopback else _env_proxy(scheme, self.host)
        transport = Transport(ssl_context=context, limits=limits, proxy=proxy)
        return httpx.Client(
            transport=RetryTransport(TracingTransport(transport), self.retry),
            timeout=_TIMEOUT,
            headers={"User-Agent": self.options.user_agent},
            trust_env=False,
        )

    def base_url(self) -> str:
        """``scheme://host`` of the registry, decided once by pinging ``/v2/``."""
        with self._probe_lock:
            if self._base is None:
                self._base = self._probe()
                self.auth.origin = origin_of(httpx.URL(self._base))
            return self._base

    def _probe(self) -> str:
        # Plain HTTP is only ever tried for loopback and insecure hosts. Loopback tries it
        # first: a TLS hello to a plain HTTP server can stall until a timeout, while a TLS
        # server (Go's, as in every common registry) answers plain HTTP with a quick 400.
        order: tuple[str, ...]
        if self._insecure:
            order = ("https", "http")
        elif self._loopback:
            order = ("http", "https")
        else:
            order = ("https",)
        operation = self.retry.operation(f"reaching registry {self.registry}")
        for i, scheme in enumerate(order):
            base = f"{scheme}://{self.host}"
            try:
                response = self._ping(base, operation, last=i == len(order) - 1)
            except _WrongScheme:
                continue
            if response.status_code == 401:
                self.auth.learn(response.headers.get("www-authenticate", ""))
            return base
        raise AssertionError("unreachable: the last scheme never raises _WrongScheme")

    def _ping(self, base: str, operation: Operation, *, last: bool) -> httpx.Response:
        try:
            response = self._client(base).get(f"{base}/v2/", extensions={OPERATION: operation})
        except httpx.ConnectError as err:
            tls = tls_error(err)
            if tls is not None and not last and not isinstance(tls, ssl.SSLCertVerificationError):
                raise _WrongScheme from err
            self._raise_tls(err)
            raise RegistryError(f"{operation.what}: {describe(err)}") from err
        except httpx.TransportError as err:
            raise RegistryError(f"{operation.what}: {describe(err)}") from err
        # Go's TLS servers answer plain HTTP with 400; no registry answers /v2/ with 400.
        if response.status_code == 400 and base.startswith("http:") and not last:
            raise _WrongScheme
        return response

    def _raise_tls(self, err: httpx.ConnectError) -> None:
        tls = tls_error(err)
        if tls is None:
            return
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
        if isinstance(tls, ssl.SSLCertVerificationError):
            raise RegistryError(
                f"the TLS certificate of {self.host} is not trusted ({reason}); pass its CA "
                f"bundle with --ca-file (or SSL_CERT_FILE), or --insecure-registry {self.host}",
                url=f"https://{self.host}/v2/",
            ) from None
        raise RegistryError(
            f"TLS with {self.host} failed ({reason}); if it serves plain HTTP, "
            f"pass --insecure-registry {self.host}",
            url=f"https://{self.host}/v2/",
        ) from None

    def exchange(
        self,
        method: str,
        url: str,
        *,
        operation: Operation,
        repository: str | None,
        scopes: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        content: bytes | Body | None = None,
        params: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """One authenticated request (retried as the transport sees fit); ``url`` may be a
        ``/v2/...`` path. The answer is read whole unless ``operation.stream``."""
        if url.startswith("/"):
            url = self.base_url() + url
        http = self.http()
        body = content if isinstance(content, Body) else None
        if isinstance(content, bytes) and len(content) > _SMALL_BODY:
            body = Body((content,))
        if body is not None:
            headers = {**(headers or {}), "Content-Length": str(body.size)}
        request = http.build_request(
            method,
            url,
            headers=headers,
            content=body if body is not None else content,
            params=params,
            extensions={OPERATION: operation},
        )
        auth = RegistryAuth(self.auth, repository, scopes)
        try:
            response = http.send(
                request, auth=auth, stream=operation.stream, follow_redirects=follow_redirects
            )
        except httpx.TransportError as err:
            if isinstance(err, httpx.ConnectError):
                self._raise_tls(err)
            raise RegistryError(f"{operation.what}: {describe(err)}") from err
        finally:
            if body is not None:
                body.release()
        log.debug("%s %s -> %s", method, request.url.copy_with(query=None), response.status_code)
        return response

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        repository: str | None,
        ok: tuple[int, ...] = (200,),
        operation: Operation | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """:meth:`exchange` as one operation named ``what``; answers outside ``ok`` raise."""
        if operation is None:
            operation = self.retry.operation(what)
        response = self.exchange(method, url, operation=operation, repository=repository, **kwargs)
        if response.status_code not in ok:
            self.check(response, what, repository)
        return response

    def check(self, response: httpx.Response, what: str, repository: str | None) -> None:
        """Raise the error a failed answer stands for (naming the credential source tried)."""
        try:
            raise_for_status(
                response, what, credential_source=self.auth.source(repository), host=self.registry
            )
        finally:
            response.close()
        raise RegistryError(
            f"{what}: {self.registry} answered an unexpected {response.status_code}",
            status=response.status_code,
            url=str(response.request.url.copy_with(query=None)),
        )


def _unverified() -> ssl.SSLContext:
    """TLS without verification, for registries the user named as insecure."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _env_proxy(scheme: str, host: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``host`` (``NO_PROXY``)."""
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(host):
        return None
    return proxies.get(scheme) or proxies.get("all")
