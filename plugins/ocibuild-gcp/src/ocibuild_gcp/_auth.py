"""Google's Application Default Credentials, without google-auth.

Where credentials come from, in google-auth's order (``google.auth.default()``):

1. ``$GOOGLE_APPLICATION_CREDENTIALS``: a service-account key or an ADC file;
2. gcloud's ADC file, ``$CLOUDSDK_CONFIG/application_default_credentials.json`` (default
   ``~/.config/gcloud``), written by ``gcloud auth application-default login``;
3. the metadata server of Compute Engine, GKE and Cloud Run (``$GCE_METADATA_HOST``, else
   ``169.254.169.254``), unless ``NO_GCE_CHECK=true``.

A service-account key is exchanged for an access token by the OAuth2 JWT-bearer grant (RFC
7523; an RS256 assertion signed with ``cryptography``), an authorized-user file by its refresh
token; both at the file's ``token_uri``. Tokens are cached and fetched again five minutes
before they expire, once for any number of threads. No secret (private key, refresh token,
client secret, access token) is ever put in a message, a log line or a repr.
"""

from __future__ import annotations

import abc
import base64
import configparser
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import GcpAuthError

if TYPE_CHECKING:
    import httpx
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "CLOUD_PLATFORM",
    "GOOGLE_TOKEN_URI",
    "GoogleCredentials",
    "application_default_credentials",
    "default_project",
    "default_region",
    "find_credentials",
    "load_credentials_file",
]

log = logging.getLogger("ocibuild.gcp")

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

# Tokens are fetched again this long before they expire, so a request never carries a token
# that runs out on its way.
REFRESH_MARGIN = 300.0
_JWT_LIFETIME = 3600  # the longest assertion Google's token endpoint accepts
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_TOKEN_TIMEOUT = 30.0
_ADC_FILE = "application_default_credentials.json"


class GoogleCredentials(abc.ABC):
    """Where access tokens come from; ``source`` names it in messages (never a secret)."""

    source: str
    project_id: str | None

    def __init__(self, source: str, project_id: str | None) -> None:
        self.source = source
        self.project_id = project_id
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def token(self) -> str:
        """A valid access token: cached, fetched again 5 minutes before it expires; one fetch
        however many threads ask at once. Raises :class:`GcpAuthError` (one line)."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                started = time.monotonic()
                token, lifetime = self._fetch()
                # A token shorter-lived than the margin (Google issues none) serves for half
                # its life rather than being fetched again on every call.
                usable = lifetime - REFRESH_MARGIN if lifetime > REFRESH_MARGIN else lifetime / 2
                self._token, self._refresh_at = token, started + usable
            return self._token

    def invalidate(self) -> None:
        """Drop the cached token (an API answered 401): the next :meth:`token` fetches one."""
        with self._lock:
            self._token = None

    @abc.abstractmethod
    def _fetch(self) -> tuple[str, float]:
        """A new access token and its lifetime in seconds."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source}>"


class ServiceAccountCredentials(GoogleCredentials):
    """A service-account key: a JWT-bearer assertion signed with its private key (RFC 7523)."""

    def __init__(self, info: Mapping[str, Any], path: Path, scopes: Sequence[str]) -> None:
        email = _field(info, "client_email", path, "service_account")
        pem = _field(info, "private_key", path, "service_account")
        super().__init__(f"service account key {path} ({email})", _opt(info, "project_id"))
        self.email = email
        self.token_uri = _opt(info, "token_uri") or GOOGLE_TOKEN_URI
        self.scopes = tuple(scopes)
        self._key_id = _opt(info, "private_key_id")
        # cryptography loads when a key does: the plugin's hooks stay light to import.
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise GcpAuthError(
                f"{path}: private_key is not a PEM RSA private key; "
                "create a new key for the service account and download it again"
            )
        self._key: rsa.RSAPrivateKey = key

    def assertion(self) -> str:
        """The signed JWT: ``iss`` the account, ``aud`` Google's token endpoint (google-auth
        sends that fixed audience whatever the key's ``token_uri``), one hour of life."""
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        if self._key_id:
            header["kid"] = self._key_id
        claims = {
            "iss": self.email,
            "scope": " ".join(self.scopes),
            "aud": GOOGLE_TOKEN_URI,
            "iat": now,
            "exp": now + _JWT_LIFETIME,
        }
        signing_input = f"{_b64_json(header)}.{_b64_json(claims)}"
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": _JWT_BEARER, "assertion": self.assertion()}
        hint = "check that the key is not deleted or disabled and that this machine's clock is set"
        return token_request(self.token_uri, form, self.source, hint)


class AuthorizedUserCredentials(GoogleCredentials):
    """A user's refresh token, as ``gcloud auth application-default login`` writes it."""

    def __init__(self, info: Mapping[str, Any], path: Path) -> None:
        self._client_id = _field(info, "client_id", path, "authorized_user")
        self._client_secret = _field(info, "client_secret", path, "authorized_user")
        self._refresh_token = _field(info, "refresh_token", path, "authorized_user")
        super().__init__(f"user credentials {path}", None)
        self.token_uri = _opt(info, "token_uri") or GOOGLE_TOKEN_URI

    def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        hint = "run `gcloud auth application-default login` again"
        return token_request(self.token_uri, form, self.source, hint)


def token_request(uri: str, form: Mapping[str, str], source: str, hint: str) -> tuple[str, float]:
    """POST ``form`` to the OAuth2 token endpoint ``uri``: the access token and its lifetime."""
    import httpx  # when a token is needed: importing the plugin stays light

    try:
        answer = httpx.post(uri, data=dict(form), timeout=_TOKEN_TIMEOUT)
    except httpx.HTTPError as err:
        raise GcpAuthError(
            f"cannot reach the token endpoint {uri} for {source} ({type(err).__name__}); "
            "check the network and the file's token_uri"
        ) from None
    body = _json_object(answer)
    if answer.status_code != 200:
        error = str(body.get("error") or f"HTTP {answer.status_code}")
        detail = str(body.get("error_description") or "").strip()
        said = f"{error}: {detail}" if detail else error
        raise GcpAuthError(f"the token endpoint {uri} refused {source}: {said}; {hint}")
    token, lifetime = body.get("access_token"), body.get("expires_in", 3600)
    if not isinstance(token, str) or not token or not isinstance(lifetime, (int, float)):
        raise GcpAuthError(
            f"the token endpoint {uri} answered {source} without an access token; "
            "check the file's token_uri"
        )
    log.debug("access token for %s, %s s", source, lifetime)
    return token, float(lifetime)


def find_credentials(scopes: Sequence[str] = (CLOUD_PLATFORM,)) -> GoogleCredentials | None:
    """Application Default Credentials in google-auth's order, or ``None`` when nothing is
    configured and no metadata server answers. A configured file that cannot be used is a
    :class:`GcpAuthError`. Credentials from the same unchanged file are shared, token and all."""
    found = _file_credentials(scopes)
    if found is not None:
        return found
    from ._metadata import metadata_credentials

    return metadata_credentials(scopes)


def _file_credentials(scopes: Sequence[str]) -> GoogleCredentials | None:
    """The first two places ADC looks: ``$GOOGLE_APPLICATION_CREDENTIALS``, gcloud's file."""
    explicit = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if explicit:
        return _load(Path(explicit), scopes, "$GOOGLE_APPLICATION_CREDENTIALS")
    gcloud = gcloud_config_dir() / _ADC_FILE
    if gcloud.is_file():
        return _load(gcloud, scopes, "gcloud's ADC file")
    return None


def application_default_credentials(
    scopes: Sequence[str] = (CLOUD_PLATFORM,),
) -> GoogleCredentials:
    """:func:`find_credentials`, or a :class:`GcpAuthError` saying how to configure some."""
    found = find_credentials(scopes)
    if found is None:
        raise GcpAuthError(
            "no Google credentials found; set GOOGLE_APPLICATION_CREDENTIALS to a service "
            "account key, or run `gcloud auth application-default login`"
        )
    return found


def load_credentials_file(
    path: str | os.PathLike[str], scopes: Sequence[str] = (CLOUD_PLATFORM,)
) -> GoogleCredentials:
    """The credentials of a ``service_account`` key or an ``authorized_user`` file; any other
    type is a :class:`GcpAuthError` naming it."""
    return _load(Path(path), scopes, None)


_cache: dict[tuple[object, ...], GoogleCredentials] = {}
_cache_lock = threading.Lock()


def _load(path: Path, scopes: Sequence[str], named_by: str | None) -> GoogleCredentials:
    where = f" (named by {named_by})" if named_by else ""
    try:
        stat = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GcpAuthError(
            f"the credentials file {path}{where} does not exist; point "
            "GOOGLE_APPLICATION_CREDENTIALS at a service account key, or unset it"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else "not UTF-8 text"
        raise GcpAuthError(f"cannot read the credentials file {path}{where}: {reason}") from None
    key = (str(path.resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size, tuple(scopes))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = _cache[key] = _parse(text, path, scopes, where)
        return cached


def _parse(text: str, path: Path, scopes: Sequence[str], where: str) -> GoogleCredentials:
    try:
        info = json.loads(text)
    except ValueError as err:
        line = getattr(err, "lineno", "?")
        raise GcpAuthError(
            f"the credentials file {path}{where} is not valid JSON (line {line}); "
            "download the key again or run `gcloud auth application-default login`"
        ) from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        return ServiceAccountCredentials(info, path, scopes)
    if kind == "authorized_user":
        return AuthorizedUserCredentials(info, path)
    said = f"type {kind!r}" if isinstance(kind, str) else 'no "type"'
    raise GcpAuthError(
        f"the credentials file {path}{where} has {said}; ocibuild-gcp reads service_account "
        "keys and authorized_user files: use a service account key, or run "
        "`gcloud auth application-default login`"
    )


def default_project(credentials: GoogleCredentials | None = None) -> str | None:
    """The project: ``$GOOGLE_CLOUD_PROJECT``, ``$GCLOUD_PROJECT``, the credentials' own (a
    key's ``project_id``; without ``credentials``, those of the ADC file if any), gcloud's
    (``$CLOUDSDK_CORE_PROJECT``, the active configuration's ``[core] project``), and last
    the metadata server's. An ADC file that cannot be used is a :class:`GcpAuthError`."""
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        if os.environ.get(name):
            return os.environ[name]
    if credentials is None:
        credentials = _file_credentials((CLOUD_PLATFORM,))
    if credentials is not None and credentials.project_id:
        return credentials.project_id
    configured = os.environ.get("CLOUDSDK_CORE_PROJECT") or gcloud_property("core", "project")
    if configured or credentials is not None:
        return configured
    from ._metadata import metadata_credentials

    on_google = metadata_credentials((CLOUD_PLATFORM,))
    return on_google.project_id if on_google is not None else None


def default_region() -> str | None:
    """The region: ``$GOOGLE_CLOUD_REGION``, ``$CLOUD_ML_REGION``, gcloud's
    ``$CLOUDSDK_AI_REGION`` and ``$CLOUDSDK_COMPUTE_REGION``, then the active gcloud
    configuration's ``[ai] region`` and ``[compute] region``."""
    names = ("GOOGLE_CLOUD_REGION", "CLOUD_ML_REGION", "CLOUDSDK_AI_REGION")
    for name in (*names, "CLOUDSDK_COMPUTE_REGION"):
        if os.environ.get(name):
            return os.environ[name]
    return gcloud_property("ai", "region") or gcloud_property("compute", "region")


def gcloud_config_dir() -> Path:
    """gcloud's configuration directory: ``$CLOUDSDK_CONFIG``, else ``~/.config/gcloud``."""
    configured = os.environ.get("CLOUDSDK_CONFIG")
    return Path(configured) if configured else Path.home() / ".config" / "gcloud"


def gcloud_property(section: str, name: str) -> str | None:
    """A property of gcloud's active configuration (``$CLOUDSDK_ACTIVE_CONFIG_NAME``, else the
    ``active_config`` file, else ``default``), or ``None``."""
    config = gcloud_config_dir()
    active = os.environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    if not active:
        try:
            active = (config / "active_config").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            active = ""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config / "configurations" / f"config_{active or 'default'}", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    return parser.get(section, name, fallback=None) or None


def _field(info: Mapping[str, Any], name: str, path: Path, kind: str) -> str:
    value = info.get(name)
    if not isinstance(value, str) or not value:
        raise GcpAuthError(
            f"the {kind} file {path} has no {name}; download it again "
            "or run `gcloud auth application-default login`"
        )
    return value


def _opt(info: Mapping[str, Any], name: str) -> str | None:
    value = info.get(name)
    return value if isinstance(value, str) and value else None


def _json_object(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_json(value: Mapping[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())
