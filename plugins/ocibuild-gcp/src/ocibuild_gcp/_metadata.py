"""The metadata server of Compute Engine, GKE and Cloud Run: the last place ADC looks.

google-auth pings ``169.254.169.254`` (``$GCE_METADATA_IP``) and reads from
``metadata.google.internal`` (``$GCE_METADATA_HOST``, legacy ``$GCE_METADATA_ROOT``); here a
configured host is both pinged and read (an emulator or a proxy names one host), else the IP
is, which needs no DNS. The answer must carry ``Metadata-Flavor: Google``: anything else on
that address is not a metadata server. ``NO_GCE_CHECK=true`` skips it. A refused connection
fails at once; a ping that times out (``$GCE_METADATA_TIMEOUT``, 3 s, tried
``$GCE_METADATA_DETECT_RETRIES`` times) is remembered, so only the first lookup waits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import httpx

from ._auth import GoogleCredentials
from ._errors import GcpAuthError

__all__ = ["MetadataCredentials", "metadata_credentials", "metadata_host"]

_FLAVOR = {"Metadata-Flavor": "Google"}
_DEFAULT_IP = "169.254.169.254"
_ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default"

_timed_out: set[str] = set()
_timed_out_lock = threading.Lock()


def metadata_host() -> str:
    """The metadata server's ``host[:port]``: the configured host, else its IP."""
    for name in ("GCE_METADATA_HOST", "GCE_METADATA_ROOT", "GCE_METADATA_IP"):
        if os.environ.get(name):
            return os.environ[name]
    return _DEFAULT_IP


class MetadataCredentials(GoogleCredentials):
    """The default service account of the VM, pod or service, from its metadata server."""

    def __init__(self, host: str, scopes: Sequence[str], account: str | None) -> None:
        who = f" ({account})" if account else ""
        super().__init__(
            f"the metadata server at {host}{who}", _get_text(host, "project/project-id")
        )
        self.host = host
        self.scopes = tuple(scopes)

    def _fetch(self) -> tuple[str, float]:
        params = {"scopes": ",".join(self.scopes)} if self.scopes else {}
        try:
            answer = httpx.get(
                f"http://{self.host}{_ACCOUNT}/token", params=params, headers=_FLAVOR, timeout=10
            )
        except httpx.HTTPError as err:
            raise GcpAuthError(
                f"cannot reach {self.source} for a token ({type(err).__name__}); "
                "set GOOGLE_APPLICATION_CREDENTIALS to a service account key instead"
            ) from None
        body = _json(answer) if _is_metadata(answer) else None
        token = body.get("access_token") if body else None
        lifetime = body.get("expires_in", 3600) if body else None
        if answer.status_code != 200 or not isinstance(token, str) or not token:
            raise GcpAuthError(
                f"{self.source} gave no access token (HTTP {answer.status_code}); check that "
                "the instance has a service account with the cloud-platform scope"
            )
        if not isinstance(lifetime, (int, float)):
            lifetime = 3600
        return token, float(lifetime)


def metadata_credentials(scopes: Sequence[str]) -> MetadataCredentials | None:
    """Credentials from the metadata server, or ``None`` when none answers."""
    if os.environ.get("NO_GCE_CHECK", "").lower() == "true":
        return None
    host = metadata_host()
    if not _ping(host):
        return None
    return MetadataCredentials(
        host, scopes, _get_text(host, "instance/service-accounts/default/email")
    )


def _ping(host: str) -> bool:
    with _timed_out_lock:
        if host in _timed_out:
            return False
    try:
        timeout = float(os.environ.get("GCE_METADATA_TIMEOUT") or 3)
        tries = max(1, int(os.environ.get("GCE_METADATA_DETECT_RETRIES") or 3))
    except ValueError:
        timeout, tries = 3.0, 3
    for _ in range(tries):
        try:
            answer = httpx.get(f"http://{host}/", headers=_FLAVOR, timeout=timeout)
        except httpx.TimeoutException:
            continue
        except httpx.HTTPError:
            return False  # refused, unreachable: nothing listens there
        return answer.status_code == 200 and _is_metadata(answer)
    with _timed_out_lock:
        _timed_out.add(host)
    return False


def _get_text(host: str, path: str) -> str | None:
    try:
        answer = httpx.get(f"http://{host}/computeMetadata/v1/{path}", headers=_FLAVOR, timeout=3)
    except httpx.HTTPError:
        return None
    ok = answer.status_code == 200 and _is_metadata(answer)
    return answer.text.strip() or None if ok else None


def _is_metadata(answer: httpx.Response) -> bool:
    return bool(answer.headers.get("metadata-flavor") == "Google")


def _json(answer: httpx.Response) -> dict[str, object] | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
