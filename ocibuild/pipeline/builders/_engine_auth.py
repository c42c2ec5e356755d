"""Registry credentials for the engine: the ``X-Registry-Auth`` and ``X-Registry-Config`` headers.

The Engine API takes them as base64url JSON: ``X-Registry-Auth`` (push, pull) is one
``{"username", "password", "serveraddress"}`` (or ``{"identitytoken"}``) object,
``X-Registry-Config`` (build, for the ``FROM`` images) maps registry hosts to such objects.
They come from ocibuild's own credential sources, in the registry client's order
(:func:`ocibuild.transports.registry.find_credential`), so the engine pushes with what
``ocibuild login`` stored. The header values carry secrets: nothing here logs them, and
:class:`EngineHeaders` keeps them out of its repr.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..._errors import OCIBuildError
from ...oci import Reference

if TYPE_CHECKING:
    from ...transports.registry import Credential, RegistryOptions

__all__ = ["EngineHeaders", "registry_auth", "registry_config"]

# Docker keys Docker Hub's credentials by its old index URL, in config files and headers alike.


@dataclass(frozen=True)
class EngineHeaders:
    """Request headers holding credentials; the values never show in a repr. ``images``: those
    of the images asked about whose registries have credentials."""

    values: dict[str, str] = field(repr=False)
    images: tuple[str, ...] = ()


def registry_auth(reference: Reference, options: RegistryOptions | None) -> EngineHeaders:
    """``X-Registry-Auth`` for pushing or pulling ``reference`` (``{}`` when anonymous)."""
    # The registry client (and httpx) loads when a build talks to an engine: looking up the
    # builder by name stays light.
    from ...transports.registry import RegistryOptions, find_credential, server_url

    found = find_credential(reference.registry, reference.repository, options or RegistryOptions())
    entry = _entry(found, server_url(reference.registry))
    return EngineHeaders({"X-Registry-Auth": _encode(entry)})


def registry_config(images: Iterable[str], options: RegistryOptions | None) -> EngineHeaders:
    """``X-Registry-Config`` with the credentials for the registries of ``images``."""
    from ...transports.registry import RegistryOptions, find_credential, server_url

    default = RegistryOptions()
    config: dict[str, dict[str, str]] = {}
    anonymous: set[str] = set()
    authenticated: list[str] = []
    for image in images:
        try:
            reference = Reference.parse(image)
        except OCIBuildError:  # an ARG-built or odd FROM: the engine says what is wrong with it
            continue
        server = server_url(reference.registry)
        if server not in config and server not in anonymous:
            found = find_credential(reference.registry, reference.repository, options or default)
            if found.is_anonymous:
                anonymous.add(server)
            else:
                config[server] = _entry(found, server)
        if server in config:
            authenticated.append(image)
    values = {"X-Registry-Config": _encode(config)} if config else {}
    return EngineHeaders(values, tuple(authenticated))


def _entry(credential: Credential, server: str) -> dict[str, str]:
    if credential.is_anonymous:
        return {}
    entry = {"serveraddress": server}
    if credential.identity_token:
        entry["identitytoken"] = credential.identity_token
    elif credential.registry_token:
        entry["registrytoken"] = credential.registry_token
    else:
        entry["username"] = credential.username or ""
        entry["password"] = credential.password or ""
    return entry


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode("utf-8")).decode("ascii")
