"""``ocibuild login`` / ``logout``: check credentials, then store or erase them as docker does.

Credentials go to the credential helper the config names for the registry (``credHelpers``,
else ``credsStore``), otherwise into the config file's ``auths`` as base64 ``user:password``.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..._errors import CredentialError
from ._authfiles import (
    docker_config_path,
    hostname_of_key,
    load_auth_file,
    matching_key,
    save_auth_file,
    server_url,
)
from ._client import RegistryClient
from ._helpers import HelperMissingError, helper_erase, helper_store, program
from ._options import RegistryOptions

__all__ = ["login", "logout", "normalize_registry"]

log = logging.getLogger("ocibuild.registry")

_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io"})
_SECRET_FIELDS = ("auth", "password", "identitytoken", "registrytoken")


def normalize_registry(text: str) -> str:
    """``https://host:port/v2/`` -> ``host:port``; Docker Hub's names -> ``docker.io``."""
    host = hostname_of_key(text.strip()) or "docker.io"
    return "docker.io" if host in _HUB_ALIASES else host


def login(
    registry: str, username: str, password: str, options: RegistryOptions | None = None
) -> str:
    """Verify the credentials against the registry, store them, and say where they went."""
    host = normalize_registry(registry)
    base = options or RegistryOptions()
    with RegistryClient(host, replace(base, username=username, password=password)) as client:
        client.check_login()
    return store_credential(host, username, password, base)


def logout(registry: str, options: RegistryOptions | None = None) -> bool:
    """Erase stored credentials for ``registry``; False if there were none."""
    host = normalize_registry(registry)
    path = _config_path(options)
    data = load_auth_file(path)
    if data is None:
        return False
    removed = False
    helper = _helper_for(data, host)
    if helper is not None:
        try:
            removed = helper_erase(helper, server_url(host))
        except HelperMissingError:
            log.warning(
                "credential helper %s (configured in %s) is not on PATH; "
                "its copy of the credentials was not erased",
                program(helper),
                path,
            )
    auths = data.get("auths")
    if isinstance(auths, dict):
        changed = False
        while (key := matching_key(auths, host)) is not None:
            del auths[key]
            changed = True
        if changed:
            save_auth_file(path, data)
            removed = True
    return removed


def store_credential(host: str, username: str, password: str, options: RegistryOptions) -> str:
    """Store credentials for ``host`` in its helper or the config file; return where."""
    path = _config_path(options)
    data = load_auth_file(path) or {}
    auths = data.get("auths")
    if not isinstance(auths, dict):
        auths = data["auths"] = {}
    key = matching_key(auths, host) or server_url(host)
    helper = _helper_for(data, host)
    if helper is not None:
        try:
            helper_store(helper, server_url(host), username, password)
        except HelperMissingError:
            raise CredentialError(
                f"credential helper {program(helper)} (configured in {path}) is not on PATH; "
                f"install it, or remove it from {path} to store credentials in the file"
            ) from None
        # Like docker: the file keeps an empty entry for the registry and no secret.
        entry = auths.get(key)
        if not isinstance(entry, dict) or any(f in entry for f in _SECRET_FIELDS):
            auths[key] = {}
            save_auth_file(path, data)
        return f"credential helper {program(helper)}"
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    auths[key] = {"auth": encoded}
    save_auth_file(path, data)
    return str(path)


def _config_path(options: RegistryOptions | None) -> Path:
    if options is not None and options.auth_file is not None:
        return Path(options.auth_file)
    return docker_config_path()


def _helper_for(data: dict[str, Any], host: str) -> str | None:
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        key = matching_key(helpers, host)
        if key is not None and isinstance(helpers[key], str) and helpers[key]:
            return str(helpers[key])
    store = data.get("credsStore")
    return store if isinstance(store, str) and store else None
