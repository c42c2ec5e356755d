"""Registry authentication as an ``httpx.Auth`` flow: anonymous, Basic, and the Bearer token dance.

Per request the flow sends what is already known (Basic credentials, or a cached token that
covers the request's scopes); on a 401 it reads the challenge, fetches a token for the union
of the request's and the challenge's scopes (GET with Basic credentials, or an OAuth2
``refresh_token`` POST for identity tokens, falling back to GET on 404) and sends once more.
A cached token the registry refuses (it expired during a long push) is dropped and replaced.

Credentials and tokens go only to the origin (scheme, host and port) they belong to. A request
to any other origin (an upload ``Location`` on another host, a blob URL, a redirect) starts
with no ``Authorization`` at all; if that origin challenges, it is answered with what is stored
for that origin itself, never with the registry's credentials or tokens, nor with credentials
given on the command line (those are for the registries the command names).
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field

import httpx

from ..._errors import AuthenticationError, ManifestError, RegistryError
from ...oci._fields import load_json
from ._challenge import Challenge, covers, merge_scopes, parse_challenges
from ._credentials import Credential, find_credential
from ._options import RegistryOptions
from ._retry import REPLAYABLE
from ._transport import OPERATION

__all__ = ["AuthState", "RegistryAuth", "origin_of"]

CLIENT_ID = "ocibuild"
_DEFAULT_EXPIRES_IN = 60
_TOKEN_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

_Flow = Generator[httpx.Request, httpx.Response, None]


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    scopes: tuple[str, ...]
    refresh_at: float


class AuthState:
    """What one registry host's requests share: its challenge, credentials and cached tokens."""

    def __init__(self, registry: str, options: RegistryOptions) -> None:
        self.registry = registry
        self.options = options
        # scheme://host:port once the connection decided it; requests elsewhere use _foreign.
        self.origin: str | None = None
        self._foreign: dict[str, AuthState] = {}
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._credentials: dict[str | None, Credential] = {}
        self._tokens: dict[tuple[str, str | None], list[_Token]] = {}
        self._fetch_locks: dict[tuple[str, str | None, tuple[str, ...]], threading.Lock] = {}

    def for_url(self, url: httpx.URL) -> AuthState:
        """The state whose credentials may go to ``url``: this one for the registry's own
        origin, else a separate one for that origin (with only what is stored for it)."""
        origin = origin_of(url)
        if self.origin is None or origin == self.origin:
            return self
        with self._lock:
            foreign = self._foreign.get(origin)
            if foreign is None:
                host = url.netloc.decode("ascii")
                # Explicit --username/--password-stdin are for the registry the user named.
                options = dataclasses.replace(self.options, username=None, password=None)
                foreign = AuthState(host, options)
                foreign.origin = origin
                self._foreign[origin] = foreign
            return foreign

    @property
    def challenge(self) -> Challenge | None:
        """The last challenge the registry sent (from the ping or a 401)."""
        return self._challenge

    def remember(self, challenge: Challenge) -> None:
        """Keep the scheme, realm and service for preemptive authentication."""
        self._challenge = Challenge(challenge.scheme, challenge.realm, challenge.service)

    def learn(self, www_authenticate: str) -> None:
        """Remember the challenge of a ``WWW-Authenticate`` header (from the ``/v2/`` ping)."""
        challenge = _pick(parse_challenges(www_authenticate))
        if challenge is not None:
            self.remember(challenge)

    def credential(self, repository: str | None) -> Credential:
        """The credential for ``repository`` (looked up once, then cached)."""
        with self._lock:
            if repository not in self._credentials:
                self._credentials[repository] = find_credential(
                    self.registry, repository, self.options
                )
            return self._credentials[repository]

    def source(self, repository: str | None) -> str:
        """Which credential source requests for ``repository`` use (for error messages)."""
        with self._lock:
            found = self._credentials.get(repository)
        return found.source if found is not None else "anonymous"

    def cached_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> str | None:
        """A fresh cached token whose scopes cover ``scopes``."""
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens.get((challenge.realm, challenge.service), [])
            tokens[:] = [t for t in tokens if t.refresh_at > now]
            for token in tokens:
                if covers(token.scopes, scopes):
                    return token.value
        return None

    def fetch_lock(self, challenge: Challenge, scopes: tuple[str, ...]) -> threading.Lock:
        """The lock that lets one request at a time fetch a token for these scopes."""
        key = (challenge.realm, challenge.service, tuple(sorted(scopes)))
        with self._lock:
            return self._fetch_locks.setdefault(key, threading.Lock())

    def store_token(self, challenge: Challenge, token: _Token) -> None:
        """Cache ``token`` under its realm and service."""
        with self._lock:
            self._tokens.setdefault((challenge.realm, challenge.service), []).append(token)

    def forget(self, authorization: str) -> None:
        """Drop a cached token the registry refused."""
        value = authorization.partition(" ")[2]
        with self._lock:
            for tokens in self._tokens.values():
                tokens[:] = [t for t in tokens if t.value != value]


class RegistryAuth(httpx.Auth):
    """The flow for one request to ``repository`` needing ``scopes``."""

    requires_request_body = False
    requires_response_body = False  # blob downloads must stay streams; 401 bodies are read here

    def __init__(self, state: AuthState, repository: str | None, scopes: tuple[str, ...]) -> None:
        self.state = state
        self.repository = repository
        self.scopes = scopes

    def sync_auth_flow(self, request: httpx.Request) -> _Flow:
        """Send with what is known; on a 401, answer the challenge once and send again."""
        state = self.state.for_url(request.url)
        sent: str | None = None
        known = state.challenge
        if known is not None and (self.scopes or known.scheme == "basic"):
            sent = yield from self._authorization(state, known, refused=None, request=request)
            if sent is not None:
                request.headers["Authorization"] = sent
        response = yield request
        if response.status_code != 401:
            return
        response.read()  # a short error body; frees the connection for the token request
        challenge = _pick(parse_challenges(response.headers.get("www-authenticate", "")))
        if challenge is None:
            return
        state.remember(challenge)
        if sent is not None and challenge.scheme == "bearer":
            state.forget(sent)
        header = yield from self._authorization(state, challenge, refused=sent, request=request)
        if header is None or header == sent:
            return
        request.headers["Authorization"] = header
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:  # pragma: no cover
        raise NotImplementedError("the registry client is synchronous")
        yield request

    def _authorization(
        self,
        state: AuthState,
        challenge: Challenge,
        *,
        refused: str | None,
        request: httpx.Request,
    ) -> Generator[httpx.Request, httpx.Response, str | None]:
        """The header to send: Basic, a registry token, or a cached or fresh Bearer token."""
        credential = state.credential(self.repository)
        if challenge.scheme == "basic":
            if credential.username is None:
                return None
            return _basic(credential.username, credential.password or "")
        if credential.registry_token:
            return f"Bearer {credential.registry_token}"
        scopes = merge_scopes(self.scopes, challenge.scopes)
        cached = state.cached_token(challenge, scopes)
        if cached is not None and f"Bearer {cached}" != refused:
            return f"Bearer {cached}"
        # Concurrent uploads that all miss the cache would each fetch the same token.
        with state.fetch_lock(challenge, scopes):
            cached = state.cached_token(challenge, scopes)
            if cached is not None and f"Bearer {cached}" != refused:
                return f"Bearer {cached}"
            # Token requests belong to the request's operation: its budget bounds them too.
            extensions = {k: v for k, v in request.extensions.items() if k == OPERATION}
            token = yield from self._fetch_token(state, challenge, scopes, credential, extensions)
            state.store_token(challenge, token)
        return f"Bearer {token.value}"

    def _fetch_token(
        self,
        state: AuthState,
        challenge: Challenge,
        scopes: tuple[str, ...],
        credential: Credential,
        extensions: dict[str, object],
    ) -> Generator[httpx.Request, httpx.Response, _Token]:
        if not challenge.realm:
            raise RegistryError(f"{state.registry} sent a Bearer challenge without a realm")
        if credential.identity_token:
            grant = self._oauth_request(challenge, scopes, credential.identity_token)
            grant.extensions = {**grant.extensions, **extensions}
            response = yield grant
            if response.status_code not in (404, 405):
                return self._token_from(state, response, challenge, scopes, credential)
            # Registries without the OAuth2 endpoint (distribution's spec allows it) want GET.
        get = self._get_request(challenge, scopes, credential)
        get.extensions = {**get.extensions, **extensions}
        response = yield get
        return self._token_from(state, response, challenge, scopes, credential)

    def _get_request(
        self, challenge: Challenge, scopes: tuple[str, ...], credential: Credential
    ) -> httpx.Request:
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params += [("scope", scope) for scope in scopes]
        headers = {"User-Agent": self.state.options.user_agent}
        if credential.username is not None and credential.password is not None:
            headers["Authorization"] = _basic(credential.username, credential.password)
        return httpx.Request(
            "GET", challenge.realm, params=params, headers=headers,
            extensions={"timeout": _TOKEN_TIMEOUT.as_dict()},
        )  # fmt: skip

    def _oauth_request(
        self, challenge: Challenge, scopes: tuple[str, ...], refresh_token: str
    ) -> httpx.Request:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
        }
        if challenge.service:
            form["service"] = challenge.service
        if scopes:
            form["scope"] = " ".join(scopes)
        return httpx.Request(
            "POST", challenge.realm, data=form,
            headers={"User-Agent": self.state.options.user_agent},
            extensions={"timeout": _TOKEN_TIMEOUT.as_dict(), REPLAYABLE: True},
        )  # fmt: skip

    def _token_from(
        self,
        state: AuthState,
        response: httpx.Response,
        challenge: Challenge,
        scopes: tuple[str, ...],
        credential: Credential,
    ) -> _Token:
        response.read()
        realm = challenge.realm.split("?", 1)[0]
        status = response.status_code
        if status in (401, 403):
            refused = (
                "requires credentials (tried: anonymous)"
                if credential.is_anonymous
                else f"refused the credentials from {credential.source}"
            )
            raise AuthenticationError(
                f"the token server {realm} of {state.registry} {refused} ({status}); "
                f"check them or run 'ocibuild login {state.registry}'",
                status=status,
                codes=("UNAUTHORIZED",),
                url=realm,
            )
        if status != 200:
            raise RegistryError(
                f"the token server {realm} of {state.registry} answered {status}",
                status=status,
                url=realm,
            )
        try:
            body = load_json(response.content, "the token answer")
            value = body.get("token") or body.get("access_token")
            expires_in = int(body.get("expires_in") or _DEFAULT_EXPIRES_IN)
        except (ManifestError, ValueError, AttributeError, TypeError, OverflowError):
            value = None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"the token server {realm} answered without a token", url=realm)
        # Renew a little early so a token does not expire between check and use.
        margin = min(10.0, expires_in / 5)
        return _Token(value, scopes, time.monotonic() + max(0.0, expires_in - margin))


def origin_of(url: httpx.URL) -> str:
    """``scheme://host:port`` of ``url``, with the scheme's default port made explicit."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{url.host}:{port}"


def _pick(challenges: list[Challenge]) -> Challenge | None:
    for challenge in challenges:
        if challenge.scheme == "bearer":
            return challenge
    return challenges[0] if challenges else None


def _basic(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")
