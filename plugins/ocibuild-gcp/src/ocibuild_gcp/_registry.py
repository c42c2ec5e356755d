"""Registry credentials for Google's registries from Application Default Credentials.

Artifact Registry (``LOCATION-docker.pkg.dev``) and Container Registry (``gcr.io``,
``us.gcr.io``, ...) take an OAuth2 access token as the password of the user
``oauth2accesstoken``: what ``gcloud auth configure-docker`` sets up, without the helper.
Hosts are matched in full, never by suffix, so a Google token goes to Google's hosts only
(not to ``us-docker.pkg.dev.example.com``). ocibuild asks this source after everything the
user configured (``DOCKER_AUTH_CONFIG``, auth files, credential helpers), so those win.
"""

from __future__ import annotations

import re

from ocibuild.registry import Credential

from ._auth import find_credentials

__all__ = ["google_registry_credential", "is_google_registry"]

# Artifact Registry's Docker hosts are LOCATION-docker.pkg.dev (us, europe-west4, ...);
# Container Registry's are gcr.io and one-label subdomains of it (us, eu, asia, ...).
_GOOGLE_REGISTRY = re.compile(
    r"[a-z0-9]+(?:-[a-z0-9]+)*-docker\.pkg\.dev|(?:[a-z0-9]+(?:-[a-z0-9]+)*\.)?gcr\.io"
)
_USERNAME = "oauth2accesstoken"


def is_google_registry(registry: str) -> bool:
    """Whether ``registry`` (``host[:port]``) is an Artifact Registry or Container Registry
    host: the whole host, no port."""
    return _GOOGLE_REGISTRY.fullmatch(registry.lower()) is not None


def google_registry_credential(registry: str, repository: str | None) -> Credential | None:
    """``oauth2accesstoken`` and an access token for a Google registry; ``None`` for any
    other host or when no Google credentials are configured. Credentials that are
    configured but fail raise :class:`~ocibuild_gcp.GcpAuthError`."""
    if not is_google_registry(registry):
        return None
    credentials = find_credentials()
    if credentials is None:
        return None
    return Credential(
        source=f"Google credentials ({credentials.source})",
        username=_USERNAME,
        password=credentials.token(),
    )
