"""Google's OAuth2 token endpoint and the metadata server, played on loopback.

:class:`TokenServer` checks what Google's ``oauth2.googleapis.com/token`` checks: a JWT-bearer
assertion must be RS256-signed by a registered key (verified with its public half), name the
account as ``iss``, Google's token endpoint as ``aud`` (what google-auth sends, whatever the
key's ``token_uri``), a scope, and an ``iat``/``exp`` at most an hour apart around now; a
refresh-token grant must match a registered client. It issues opaque tokens that other
emulators check with :meth:`TokenServer.valid`, counts them, and can be told to refuse
(``refuse``), to issue short-lived tokens (``lifetime``) or to revoke what it issued.

:class:`MetadataServer` is the GCE metadata server: it answers only requests that carry
``Metadata-Flavor: Google``, and its tokens come from a :class:`TokenServer`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.emulators._server import Emulator, Reply, Request

__all__ = ["GOOGLE_TOKEN_AUDIENCE", "Grant", "MetadataServer", "TokenServer"]

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SKEW = 60  # seconds of clock difference Google tolerates on iat


@dataclass(frozen=True)
class Grant:
    """One token the server issued: to whom (account or client id), how, for which scopes."""

    token: str
    subject: str
    grant_type: str
    scopes: tuple[str, ...]
    expires_at: float


class TokenServer(Emulator):
    """``POST /token``: the JWT-bearer and refresh-token grants."""

    def __init__(self) -> None:
        super().__init__("token endpoint")
        self.lifetime = 3600
        self.delay = 0.0  # seconds each grant takes (so concurrent callers overlap)
        self.refuse: str | None = None  # an error_description: refuse every grant with it
        self.required_scope: str | None = "https://www.googleapis.com/auth/cloud-platform"
        self.grants: list[Grant] = []
        self._accounts: dict[str, tuple[str | None, rsa.RSAPublicKey]] = {}
        self._clients: dict[str, tuple[str, str]] = {}
        self._revoked: set[str] = set()
        self._grants_lock = threading.Lock()
        self.route("POST", "/token")(self._token)

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def issued(self) -> int:
        """How many tokens were issued so far."""
        with self._grants_lock:
            return len(self.grants)

    def add_service_account(self, email: str, key_id: str | None, key: rsa.RSAPublicKey) -> None:
        self._accounts[email] = (key_id, key)

    def add_user(self, client_id: str, client_secret: str, refresh_token: str) -> None:
        self._clients[client_id] = (client_secret, refresh_token)

    def issue(self, subject: str, grant_type: str, scopes: tuple[str, ...]) -> Grant:
        """A new token (also what the metadata server hands out)."""
        grant = Grant(
            "ya29.test-" + secrets.token_urlsafe(24),
            subject,
            grant_type,
            scopes,
            time.time() + self.lifetime,
        )
        with self._grants_lock:
            self.grants.append(grant)
        return grant

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` was issued here, is not revoked and has not expired."""
        with self._grants_lock:
            if token is None or token in self._revoked:
                return False
            return any(g.token == token and g.expires_at > time.time() for g in self.grants)

    def revoke_all(self) -> None:
        """Every token issued so far stops being valid (an API then answers 401)."""
        with self._grants_lock:
            self._revoked.update(g.token for g in self.grants)

    def _token(self, request: Request) -> Reply:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _oauth_error("invalid_request", "Expected a form-encoded body.")
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        time.sleep(self.delay)
        if self.refuse is not None:
            return _oauth_error("invalid_grant", self.refuse)
        grant_type = form.get("grant_type")
        if grant_type == JWT_BEARER:
            return self._jwt_bearer(form.get("assertion", ""))
        if grant_type == "refresh_token":
            return self._refresh(form)
        return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _jwt_bearer(self, assertion: str) -> Reply:
        parts = assertion.split(".")
        if len(parts) != 3 or "=" in assertion:
            return _oauth_error("invalid_grant", "Invalid JWT: not three unpadded segments.")
        try:
            header, claims = _b64_json(parts[0]), _b64_json(parts[1])
            signature = _b64(parts[2])
        except ValueError:
            return _oauth_error("invalid_grant", "Invalid JWT: bad base64url or JSON.")
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            return _oauth_error("invalid_grant", "Invalid JWT: alg must be RS256, typ JWT.")
        account = self._accounts.get(str(claims.get("iss")))
        if account is None:
            return _oauth_error("invalid_grant", "Invalid grant: account not found")
        key_id, key = account
        if key_id is not None and header.get("kid") != key_id:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        try:
            key.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return _oauth_error("invalid_grant", "Invalid JWT: aud is not the token endpoint.")
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if (
            not isinstance(iat, int)
            or not isinstance(exp, int)
            or not (iat - _SKEW <= now < exp)
            or exp - iat > 3600
        ):
            return _oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        scopes = tuple(str(claims.get("scope", "")).split())
        if not scopes or (self.required_scope is not None and self.required_scope not in scopes):
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience.")
        return self._answer(self.issue(str(claims["iss"]), JWT_BEARER, scopes))

    def _refresh(self, form: dict[str, str]) -> Reply:
        client = self._clients.get(form.get("client_id", ""))
        if client is None or client[0] != form.get("client_secret"):
            return _oauth_error("invalid_client", "The OAuth client was not found.", 401)
        if client[1] != form.get("refresh_token"):
            return _oauth_error("invalid_grant", "Token has been expired or revoked.")
        return self._answer(self.issue(form["client_id"], "refresh_token", ()))

    def _answer(self, grant: Grant) -> Reply:
        body = {"access_token": grant.token, "expires_in": self.lifetime, "token_type": "Bearer"}
        return Reply(200, body)


class MetadataServer(Emulator):
    """The metadata server; ``flavor=False`` makes it an impostor that omits the header."""

    def __init__(self, tokens: TokenServer, *, project: str = "metadata-project") -> None:
        super().__init__("metadata server")
        self.tokens = tokens
        self.project = project
        self.account = "1234-compute@developer.gserviceaccount.com"
        self.flavor = True
        self.route("GET", "/")(self._ping)
        account = "/computeMetadata/v1/instance/service-accounts/default"
        self.route("GET", f"{account}/token")(self._token)
        self.route("GET", f"{account}/email")(lambda r: self._text(r, self.account))
        self.route("GET", "/computeMetadata/v1/project/project-id")(
            lambda r: self._text(r, self.project)
        )

    def _headers(self) -> dict[str, str]:
        return {"Metadata-Flavor": "Google"} if self.flavor else {}

    def _ping(self, request: Request) -> Reply:
        return Reply(200, body=b"computeMetadata/\n", headers=self._headers())

    def _text(self, request: Request, value: str) -> Reply:
        if request.headers.get("metadata-flavor") != "Google":
            return Reply(403, body=b"Missing Metadata-Flavor:Google header.")
        return Reply(200, body=value.encode(), headers=self._headers())

    def _token(self, request: Request) -> Reply:
        if request.headers.get("metadata-flavor") != "Google":
            return Reply(403, body=b"Missing Metadata-Flavor:Google header.")
        scopes = tuple((request.param("scopes") or "").split(","))
        grant = self.tokens.issue(self.account, "metadata", scopes)
        body = {
            "access_token": grant.token,
            "expires_in": self.tokens.lifetime,
            "token_type": "Bearer",
        }
        return Reply(200, body, headers=self._headers())


def _oauth_error(error: str, description: str, status: int = 400) -> Reply:
    return Reply(status, {"error": error, "error_description": description})


def _b64(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, TypeError) as err:
        raise ValueError(str(err)) from None


def _b64_json(segment: str) -> dict[str, Any]:
    value = json.loads(_b64(segment))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
