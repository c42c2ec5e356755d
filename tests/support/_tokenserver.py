"""A registry token issuer (distribution's token auth) on loopback that records every request.

It answers `GET /token?service=&scope=...` (Basic auth optional) and the OAuth2 form
`POST /token` (grant_type=password or refresh_token), and signs RS256 JWTs whose `x5c` header
carries its self-signed certificate, the same certificate the registry trusts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import json
import math
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ._tls import self_signed_rsa

__all__ = ["TokenRequest", "TokenServer", "TokenSettings"]

# distribution 2.8 accepts a token up to 60 s after its `exp` (and before its `nbf`).
REGISTRY_LEEWAY = 60


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered."""

    method: str  # "GET" or "POST"
    grant: str  # "anonymous", "basic", "password" or "refresh_token"
    who: str | None  # the account that asked (as claimed, even if refused); None if anonymous
    scopes: tuple[str, ...]  # as asked, e.g. ("repository:a:pull", "repository:b:pull,push")
    granted: tuple[str, ...]  # the scopes the token carries, same spelling
    status: int
    service: str | None = None
    client_id: str | None = None
    offline: bool = False  # a refresh token was asked for


@dataclass
class TokenSettings:
    """How the token server behaves; tests change it through `TokenServer.configure`."""

    expires_in: int = 300  # what the answer advertises
    accept_for: int | None = None  # seconds the registry accepts a token; None: expires_in
    allow_anonymous: bool = True  # False: anonymous requests get 401
    anonymous_actions: frozenset[str] = frozenset({"pull"})  # empty: tokens that grant nothing
    oauth_post: bool = True  # False: POST answers 404, as on registries without OAuth2


@dataclass(frozen=True)
class _Account:
    password: str
    actions: frozenset[str]  # "*" grants whatever is asked


@dataclass
class _Outcome:
    status: int
    body: dict[str, Any]
    who: str | None = None
    grant: str = "anonymous"
    granted: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


class TokenServer:
    """A threaded token issuer on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        *,
        service: str = "ocibuild-test-registry",
        issuer: str = "ocibuild-test-issuer",
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.username = "tester"
        self.password = secrets.token_urlsafe(12)
        self.reader_username = "reader"
        self.reader_password = secrets.token_urlsafe(12)
        self.settings = TokenSettings()
        self._accounts = {
            self.username: _Account(self.password, frozenset({"*"})),
            self.reader_username: _Account(self.reader_password, frozenset({"pull"})),
        }
        self._key, cert = self_signed_rsa("ocibuild test token issuer")
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path = workdir / "token-issuer.crt"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []
        self._refresh_tokens: dict[str, str] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-server", daemon=True
        )

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every token request so far (since the last `clear`), oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    @contextlib.contextmanager
    def configure(self, **changes: Any) -> Iterator[TokenSettings]:
        """Change `settings` fields for the block and clear the record; restore both after."""
        saved = self.settings
        self.settings = dataclasses.replace(saved, **changes)
        self.clear()
        try:
            yield self.settings
        finally:
            self.settings = saved
            self.clear()

    # -- answering ----------------------------------------------------------------------------

    def answer(self, method: str, target: str, auth_header: str | None, body: bytes) -> _Outcome:
        """Answer one request and record it."""
        url = urlsplit(target)
        if method == "GET":
            params = parse_qs(url.query, keep_blank_values=True)
        else:
            params = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
        scopes = tuple(s for value in params.get("scope", []) for s in value.split())
        if url.path != "/token":
            outcome = _Outcome(404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
        elif method == "GET":
            outcome = self._answer_get(params, scopes, auth_header)
        elif not self.settings.oauth_post:
            outcome = _Outcome(404, {"error": "not_found"})
        else:
            outcome = self._answer_post(params, scopes)
        record = TokenRequest(
            method=method,
            grant=outcome.grant,
            who=outcome.who,
            scopes=scopes,
            granted=outcome.granted,
            status=outcome.status,
            service=_first(params, "service"),
            client_id=_first(params, "client_id"),
            offline=_first(params, "offline_token") == "true"
            or _first(params, "access_type") == "offline",
        )
        with self._lock:
            self._requests.append(record)
        return outcome

    def _answer_get(
        self, params: dict[str, list[str]], scopes: tuple[str, ...], auth_header: str | None
    ) -> _Outcome:
        if auth_header is None:
            if not self.settings.allow_anonymous:
                return _refused(None, "anonymous", "anonymous access is disabled")
            return self._issue(None, "anonymous", scopes, with_refresh=False)
        username, password = _parse_basic(auth_header)
        if not self._password_ok(username, password):
            return _refused(username, "basic", "invalid username or password")
        offline = _first(params, "offline_token") == "true"
        return self._issue(username, "basic", scopes, with_refresh=offline)

    def _answer_post(self, form: dict[str, list[str]], scopes: tuple[str, ...]) -> _Outcome:
        grant_type = _first(form, "grant_type")
        if grant_type == "password":
            username = _first(form, "username")
            if not self._password_ok(username, _first(form, "password")):
                return _refused(username, "password", "invalid username or password")
            offline = _first(form, "access_type") == "offline"
            return self._issue(username, "password", scopes, with_refresh=offline, oauth=True)
        if grant_type == "refresh_token":
            with self._lock:
                username = self._refresh_tokens.get(_first(form, "refresh_token") or "")
            if username is None:
                return _Outcome(400, {"error": "invalid_grant"}, grant="refresh_token")
            return self._issue(username, "refresh_token", scopes, with_refresh=True, oauth=True)
        return _Outcome(400, {"error": "unsupported_grant_type"}, grant=grant_type or "")

    def _password_ok(self, username: str | None, password: str | None) -> bool:
        account = self._accounts.get(username or "")
        return account is not None and secrets.compare_digest(
            account.password.encode(), (password or "").encode()
        )

    def _issue(
        self,
        who: str | None,
        grant: str,
        scopes: tuple[str, ...],
        *,
        with_refresh: bool,
        oauth: bool = False,
    ) -> _Outcome:
        access = [entry for entry in map(self._grant, scopes, [who] * len(scopes)) if entry]
        granted = tuple(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)
        token = self._sign(who, access)
        issued_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: dict[str, Any] = {"expires_in": self.settings.expires_in, "issued_at": issued_at}
        if oauth:
            body |= {"access_token": token, "scope": " ".join(granted)}
        else:
            body |= {"token": token, "access_token": token}
        if with_refresh and who is not None:
            refresh = self._refresh_token_for(who)
            body["refresh_token"] = refresh
        return _Outcome(200, body, who=who, grant=grant, granted=granted)

    def _grant(self, scope: str, who: str | None) -> dict[str, Any] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            return None
        if who is None:
            allowed = self.settings.anonymous_actions if kind == "repository" else frozenset()
        else:
            allowed = self._accounts[who].actions
        asked = [a for a in actions.split(",") if a]
        given = asked if "*" in allowed else [a for a in asked if a in allowed]
        return {"type": kind, "name": name, "actions": given} if given else None

    def _refresh_token_for(self, who: str) -> str:
        with self._lock:
            for token, owner in self._refresh_tokens.items():
                if owner == who:
                    return token
            token = secrets.token_urlsafe(24)
            self._refresh_tokens[token] = who
            return token

    def _sign(self, who: str | None, access: list[dict[str, Any]]) -> str:
        now = time.time()
        accept_for = self.settings.accept_for
        lifetime = self.settings.expires_in if accept_for is None else accept_for - REGISTRY_LEEWAY
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": who or "",
            "aud": self.service,
            # Whole seconds, rounded so that a token is accepted for at least `accept_for`
            # seconds however late in its second it was signed.
            "exp": math.ceil(now) + lifetime,
            "nbf": math.floor(now),
            "iat": math.floor(now),
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}".encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64url(signature)}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "ocibuild-test-token-server"

    def do_GET(self) -> None:
        self._respond(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._respond(self.rfile.read(length))

    def _respond(self, body: bytes) -> None:
        owner: TokenServer = self.server.owner  # type: ignore[attr-defined]
        outcome = owner.answer(self.command, self.path, self.headers.get("Authorization"), body)
        payload = json.dumps(outcome.body).encode()
        self.send_response(outcome.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; requests are recorded in `TokenServer.token_requests`."""


def _refused(who: str | None, grant: str, message: str) -> _Outcome:
    return _Outcome(
        401,
        {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
        who=who,
        grant=grant,
        headers={"WWW-Authenticate": 'Basic realm="ocibuild-test-token-server"'},
    )


def _parse_basic(header: str) -> tuple[str | None, str | None]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    username, _, password = decoded.partition(":")
    return username, password


def _first(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_json(obj: object) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":")).encode())
