"""Where a registry's credentials come from, in Docker's order, and which source was used.

explicit options > ``$DOCKER_AUTH_CONFIG`` > Docker config (``credHelpers[host]`` >
``credsStore`` > ``auths``) > ``$REGISTRY_AUTH_FILE`` > containers ``auth.json`` >
``~/.dockercfg`` > the sources plugins add (``ocibuild_credential_sources``, e.g. Google's
for Artifact Registry). An explicit ``auth_file`` option replaces every file in that chain. A
configured helper that is not installed is a warning naming it, and the search goes on.

The plugin sources come through :func:`ocibuild.transports.set_plugin_sources`: the package
root hands over a function that loads the plugins when it is first called, so this floor
never imports them.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..._errors import CredentialError
from .._credential_sources import Credential
from .._hooks import plugin_sources
from ._authfiles import (
    auth_file_chain,
    docker_config_path,
    load_auth_file,
    matching_key,
    server_url,
)
from ._helpers import HelperMissingError, helper_get, program
from ._options import RegistryOptions

__all__ = ["ANONYMOUS", "Credential", "find_credential"]

log = logging.getLogger("ocibuild.registry")


ANONYMOUS = Credential("anonymous")


def find_credential(registry: str, repository: str | None, options: RegistryOptions) -> Credential:
    """The first credential found for ``registry`` (and ``repository``), else :data:`ANONYMOUS`."""
    if options.username is not None:
        return Credential("explicit", options.username, options.password or "")
    if options.auth_file is not None:
        files = [(Path(options.auth_file), load_auth_file(Path(options.auth_file)))]
        if files[0][1] is None:
            raise CredentialError(f"auth file {options.auth_file} does not exist")
    else:
        found = _from_env(registry, repository)
        if found is not None:
            return found
        paths = [docker_config_path(), *auth_file_chain()]
        files = [(path, load_auth_file(path)) for path in paths]
    for path, data in files:
        if data:
            found = _from_file(path, data, registry, repository)
            if found is not None:
                return found
    for source in plugin_sources():
        found = source(registry, repository)
        if found is not None:
            return found
    return ANONYMOUS


def _from_env(registry: str, repository: str | None) -> Credential | None:
    """Docker CLI >= 28.3 reads ``DOCKER_AUTH_CONFIG`` (only ``auth`` entries) before its stores."""
    text = os.environ.get("DOCKER_AUTH_CONFIG")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialError("$DOCKER_AUTH_CONFIG is not valid JSON; fix or unset it") from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    key = matching_key(auths, registry, repository)
    if key is None or not isinstance(auths[key], dict) or "auth" not in auths[key]:
        return None
    return _decode_entry(auths[key], "$DOCKER_AUTH_CONFIG", registry)


def _from_file(
    path: Path, data: dict[str, Any], registry: str, repository: str | None
) -> Credential | None:
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        key = matching_key(helpers, registry, repository)
        if key is not None and isinstance(helpers[key], str):
            found = _from_helper(helpers[key], registry, path)
            if found is not None:
                return found
    store = data.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, registry, path)
        if found is not None:
            return found
    auths = data.get("auths")
    if isinstance(auths, dict):
        key = matching_key(auths, registry, repository)
        if key is not None and isinstance(auths[key], dict):
            return _decode_entry(auths[key], str(path), registry)
    return None


def _from_helper(name: str, registry: str, config: Path) -> Credential | None:
    try:
        secret = helper_get(name, server_url(registry))
    except HelperMissingError:
        message = (
            f"credential helper {program(name)} (configured in {config}) is not on PATH; "
            "trying the next credential source"
        )
        log.warning("%s", message)
        return None
    if secret is None:
        return None
    source = f"credential helper {program(name)}"
    if secret.is_identity_token:
        return Credential(source, identity_token=secret.secret)
    return Credential(source, secret.username, secret.secret)


def _decode_entry(entry: dict[str, Any], source: str, registry: str) -> Credential | None:
    username = entry.get("username") if isinstance(entry.get("username"), str) else None
    password = entry.get("password") if isinstance(entry.get("password"), str) else None
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialError(
                f"the 'auth' entry for {registry} in {source} is not base64 of 'user:password'"
            ) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialError(
                f"the 'auth' entry for {registry} in {source} has no ':' between user and password"
            )
    identity = entry.get("identitytoken") or None
    registry_token = entry.get("registrytoken") or None
    if not (username or identity or registry_token):
        return None  # a placeholder entry (Docker writes {} when a helper holds the secret)
    return Credential(
        source,
        username or None,
        password,
        identity_token=identity if isinstance(identity, str) else None,
        registry_token=registry_token if isinstance(registry_token, str) else None,
    )
