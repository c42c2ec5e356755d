"""A client of the Docker Engine HTTP API, as dockerd and podman's ``system service`` speak it.

The engine is dialled at once (:meth:`Engine.from_environment` pings it), so a missing engine
is one line before any work starts. Requests go to ``/v{api_version}/...``, the version being
the lower of what the engine's ``/_ping`` announces and :data:`MAX_API_VERSION`. Long answers
(build, push, load, pull) are a stream of JSON messages, read one object at a time by
:meth:`Engine.messages`.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from ..._version import __version__
from ._errors import EngineError
from ._hosts import POINT_ELSEWHERE, EngineHost, resolve_host

__all__ = ["MAX_API_VERSION", "MIN_API_VERSION", "Engine", "EngineError", "one_line"]

MAX_API_VERSION = "1.41"  # dockerd 20.10, and what podman 4 emulates
MIN_API_VERSION = "1.24"  # Docker 1.12: the oldest the docker CLI still speaks
_BUILDKIT_API = (1, 39)  # Docker 18.09 built BuildKit in
_CONNECT_TIMEOUT = 10.0
_SNIPPET = 300

Params = Mapping[str, str | int | bool | None]
Content = bytes | Iterable[bytes] | None


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0,)


class Engine:
    """One Docker-compatible engine: its address, API version, and whether it has BuildKit.

    Thread-safe: requests from several threads share one connection pool.
    """

    def __init__(self, endpoint: EngineHost) -> None:
        self.endpoint = endpoint
        self.host = endpoint.host
        tls = endpoint.tls.context() if endpoint.tls else None
        transport = httpx.HTTPTransport(uds=endpoint.socket) if endpoint.socket else None
        self._client = httpx.Client(
            base_url=endpoint.base_url,
            transport=transport,
            verify=tls if tls is not None else True,
            headers={"User-Agent": f"ocibuild/{__version__}"},
            timeout=httpx.Timeout(60.0, connect=_CONNECT_TIMEOUT),
        )
        try:
            self.api_version, self.buildkit, self.podman = self._ping()
        except BaseException:
            self._client.close()
            raise

    @classmethod
    def from_environment(
        cls, host: str | None = None, *, environ: Mapping[str, str] | None = None
    ) -> Engine:
        """The engine ``host`` names, else the one ``DOCKER_HOST`` or the docker context
        names (see :mod:`._hosts`), pinged: unreachable is an :class:`EngineError`."""
        return cls(resolve_host(host, environ))

    def _ping(self) -> tuple[str, bool, bool]:
        """Negotiate the API version; learn whether builds may ask for BuildKit."""
        try:
            response = self._client.get("/_ping", timeout=httpx.Timeout(30.0, connect=10.0))
        except httpx.HTTPError as err:
            raise self._unreachable(err) from err
        if response.status_code >= 400 or not response.headers.get("Api-Version"):
            raise EngineError(
                f"{self.host} ({self.endpoint.origin}) does not answer as a docker engine "
                f"(GET /_ping: HTTP {response.status_code}); {POINT_ELSEWHERE}",
                status=response.status_code,
            )
        offered = response.headers["Api-Version"]
        if _version(offered) < _version(MIN_API_VERSION):
            raise EngineError(
                f"the docker engine at {self.host} speaks API {offered}; ocibuild needs "
                f"{MIN_API_VERSION} or later (Docker 1.12+): upgrade the engine"
            )
        version = min(offered, MAX_API_VERSION, key=_version)
        podman = "Libpod-Api-Version" in response.headers
        builder = response.headers.get("Builder-Version", "")
        if builder:
            buildkit = builder == "2"
        else:
            # dockerd 20.10 sends no Builder-Version unless configured, yet accepts
            # version=2 builds; podman sends an empty one and has no BuildKit.
            linux = response.headers.get("Ostype", "linux") == "linux"
            buildkit = not podman and linux and _version(version) >= _BUILDKIT_API
        return version, buildkit, podman

    def _unreachable(self, err: Exception) -> EngineError:
        socket = self.endpoint.socket
        tls = _ssl_error(err)
        if tls is not None:
            return EngineError(
                f"the TLS handshake with the docker engine at {self.host} "
                f"({self.endpoint.origin}) failed: {tls.reason or tls}; the engine's certificate "
                "must be signed by ca.pem, and cert.pem/key.pem be a client pair its CA signed "
                "(DOCKER_CERT_PATH, or the context's TLS material)"
            )
        if socket is not None and not os.path.exists(socket):
            reason = "no such socket"
        elif isinstance(err, httpx.TimeoutException):
            reason = "it did not answer in time"
        else:
            reason = _reason(err)
        return EngineError(
            f"cannot reach a docker engine at {self.host} ({self.endpoint.origin}): {reason}; "
            f"start the engine, or {POINT_ELSEWHERE}"
        )

    def _url(self, path: str) -> str:
        return f"/v{self.api_version}{path}"

    def _timeout(self, timeout: float | None) -> httpx.Timeout:
        return httpx.Timeout(timeout, connect=_CONNECT_TIMEOUT)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: Content = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = 60.0,
    ) -> httpx.Response:
        """Send one request (``path`` without the version prefix) and read the whole answer;
        an answer of 400 or more is an :class:`EngineError` carrying the engine's message."""
        try:
            response = self._client.request(
                method,
                self._url(path),
                params=_query(params),
                json=json,
                content=content,
                headers=headers,
                timeout=self._timeout(timeout),
            )
        except httpx.HTTPError as err:
            raise self._failed(method, path, err, timeout) from err
        self._check(method, path, response)
        return response

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: Content = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[httpx.Response]:
        """Send one request and yield the answer unread (read it, or :meth:`messages`)."""
        try:
            with self._client.stream(
                method,
                self._url(path),
                params=_query(params),
                content=content,
                headers=headers,
                timeout=self._timeout(timeout),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(method, path, response)
                yield response
        except httpx.HTTPError as err:
            raise self._failed(method, path, err, timeout) from err

    def messages(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        """The engine's JSON messages, one object at a time as they arrive.

        The engine writes one object per line, but a read may hold several or end inside
        one. An ``error``/``errorDetail`` message is yielded like any other.
        """
        pending = b""
        try:
            for chunk in response.iter_bytes():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield from self._decode(line)
        except httpx.HTTPError as err:
            raise self._failed(response.request.method, response.request.url.path, err) from err
        yield from self._decode(pending)

    def _decode(self, line: bytes) -> Iterator[dict[str, Any]]:
        """The objects on one line (two may share one when the engine forgets the newline)."""
        text = line.decode("utf-8", "replace").strip()
        decoder = json.JSONDecoder()
        while text:
            try:
                value, end = decoder.raw_decode(text)
            except ValueError:
                raise EngineError(
                    f"the docker engine at {self.host} sent a message that is not JSON: "
                    f"{text[:_SNIPPET]!r}"
                ) from None
            if isinstance(value, dict):
                yield value
            text = text[end:].lstrip()

    def _check(self, method: str, path: str, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        detail = _message(response)
        raise EngineError(
            f"docker engine at {self.host}: {detail} "
            f"({method} {path}: HTTP {response.status_code})",
            status=response.status_code,
            detail=detail,
        )

    def _failed(
        self, method: str, path: str, err: httpx.HTTPError, timeout: float | None = None
    ) -> EngineError:
        if isinstance(err, httpx.ConnectError):
            return self._unreachable(err)
        if isinstance(err, httpx.TimeoutException):
            return EngineError(
                f"the docker engine at {self.host} did not answer {method} {path} within "
                f"{timeout} s; it may be overloaded"
            )
        return EngineError(
            f"the connection to the docker engine at {self.host} failed during {method} "
            f"{path}: {_reason(err)}"
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Engine({self.host!r}, api_version={self.api_version!r})"


def _query(params: Params | None) -> dict[str, str] | None:
    """Query parameters as the engine reads them: booleans as 1/0, ``None`` left out."""
    if params is None:
        return None
    query = {}
    for key, value in params.items():
        if value is None:
            continue
        query[key] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return query


def _message(response: httpx.Response) -> str:
    """The engine's ``{"message": ...}``, else the start of the body, on one line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return one_line(body["message"])
    return one_line(response.text)[:_SNIPPET] or response.reason_phrase or "no message"


def one_line(text: str) -> str:
    """An engine's message (podman's run over several lines) as one line."""
    return " ".join(text.split())


def _ssl_error(err: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _reason(err: BaseException) -> str:
    """The innermost OS-level reason (``Connection refused``) rather than httpx's wrapping."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(err).strip() or type(err).__name__
