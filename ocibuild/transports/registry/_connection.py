"""The connection to one registry host: a pooled ``httpx.Client``, its scheme, TLS, and auth.

:meth:`Connection.exchange` is the only place requests are sent: one attempt, with the auth
flow. Retries wrap it (``_retry.py``); the protocol steps build on it (``_client.py``).
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence

import httpx

from ..._errors import RegistryError
from ...oci import Reference
from ._auth import AuthState, RegistryAuth, origin_of
from ._options import RegistryOptions, tls_context
from ._retry import RetryPolicy

__all__ = ["Connection"]

log = logging.getLogger("ocibuild.registry")

_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class _WrongScheme(Exception):
    """The probe spoke the wrong protocol (HTTP to a TLS port or TLS to a plain one)."""


class Connection:
    """One registry host: pooled connections (thread-safe), scheme decided once, auth state."""

    def __init__(self, registry: str, options: RegistryOptions, retry: RetryPolicy) -> None:
        self.registry = registry
        self.options = options
        self.retry = retry
        probe = Reference(registry, "probe")
        self.host = probe.api_host
        self._loopback = probe.is_loopback
        self._insecure = options.is_insecure(registry) or options.is_insecure(self.host)
        self.auth = AuthState(registry, options)
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        # One pooled client per TLS stance: plain HTTP needs no TLS context (loading the CA
        # bundle is a visible part of a short command's start-up), HTTPS verifies.
        self._clients: dict[bool, httpx.Client] = {}
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
        verifying = base.startswith("https:") and not self._insecure
        with self._lock:
            if verifying not in self._clients:
                self._clients[verifying] = self._new_http(verifying)
            return self._clients[verifying]

    def _new_http(self, verifying: bool) -> httpx.Client:
        verify: ssl.SSLContext | bool = tls_context(self.options.ca_file) if verifying else False
        room = max(4, 2 * self.options.concurrency)
        return httpx.Client(
            verify=verify,
            timeout=_TIMEOUT,
            limits=httpx.Limits(max_connections=room, max_keepalive_connections=room),
            headers={"User-Agent": self.options.user_agent},
            # Proxies from the environment apply to remote registries, never to this machine.
            trust_env=not self._loopback,
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
        for i, scheme in enumerate(order):
            base = f"{scheme}://{self.host}"
            last = i == len(order) - 1
            try:
                response = self.retry.run(
                    f"reaching registry {self.registry}", functools.partial(self._ping, base, last)
                )
            except _WrongScheme:
                continue
            if response.status_code == 401:
                self.auth.learn(response.headers.get("www-authenticate", ""))
            return base
        raise AssertionError("unreachable: the last scheme never raises _WrongScheme")

    def _ping(self, base: str, last: bool, attempt: int) -> httpx.Response:
        try:
            response = self._client(base).get(f"{base}/v2/")
        except httpx.ConnectError as err:
            tls = _tls_error(err)
            if tls is not None and not last and not isinstance(tls, ssl.SSLCertVerificationError):
                raise _WrongScheme from err
            self._raise_tls(err)
            raise
        response.read()
        # Go's TLS servers answer plain HTTP with 400; no registry answers /v2/ with 400.
        if response.status_code == 400 and base.startswith("http:") and not last:
            raise _WrongScheme
        return response

    def _raise_tls(self, err: httpx.ConnectError) -> None:
        tls = _tls_error(err)
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
        repository: str | None,
        scopes: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        content: bytes | Sequence[bytes] | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """One authenticated attempt at a request; ``url`` may be a ``/v2/...`` path."""
        if url.startswith("/"):
            url = self.base_url() + url
        http = self.http()
        body: _Body | None = None
        if content is not None and not isinstance(content, bytes):
            body = _Body(content)
        elif content is not None and len(content) > _SMALL_BODY:
            body = _Body((content,))
        if body is not None:
            headers = {**(headers or {}), "Content-Length": str(body.size)}
        request = http.build_request(
            method,
            url,
            headers=headers,
            content=body if body is not None else content,
            params=params,
        )
        auth = RegistryAuth(self.auth, repository, scopes)
        try:
            response = http.send(
                request, auth=auth, stream=stream, follow_redirects=follow_redirects
            )
        except httpx.ConnectError as err:
            self._raise_tls(err)
            raise
        finally:
            if body is not None:
                body.release()
        log.debug("%s %s -> %s", method, request.url.copy_with(query=None), response.status_code)
        return response


_SMALL_BODY = 64 << 10


class _Body:
    """A request body that can be sent again (auth retries) and dropped once sent.

    httpcore's connection pool keeps each request in a reference cycle that only the cyclic
    garbage collector frees; holding 8 MiB upload chunks there would grow memory by hundreds
    of MiB between collections, so the bytes are let go as soon as the exchange is over.
    """

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = pieces
        self.size = sum(len(p) for p in pieces)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pieces

    def release(self) -> None:
        self._pieces = ()


def _tls_error(err: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
