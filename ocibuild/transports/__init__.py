"""Transports: where images are read from and written to, behind one table of prefixes.

``oci:`` (an OCI image layout), ``docker-archive:`` (a ``docker save`` tarball) and registries
(:mod:`ocibuild.registry`); every one is an :class:`ImageSource` and an :class:`ImageSink`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._public import lazy_names
from ._lean_httpx import skip_httpx_cli

if TYPE_CHECKING:
    from ._base import BlobOutcome, BlobResult, ImageSink, ImageSource, NullProgress, Progress
    from ._credential_sources import CredentialSource
    from ._hooks import set_plugin_sources, set_prefix_resolver
    from ._location import Location
    from ._table import Transport, mount_origin, open_sink, open_source, register_transport

__all__ = [
    "BlobOutcome",
    "BlobResult",
    "CredentialSource",
    "ImageSink",
    "ImageSource",
    "Location",
    "NullProgress",
    "Progress",
    "Transport",
    "mount_origin",
    "open_sink",
    "open_source",
    "register_transport",
    "set_plugin_sources",
    "set_prefix_resolver",
]

# Each name loads with its module (PEP 562): the package root installs the plugin hooks of
# `_hooks` at import, and that must not cost the whole table.
_HOMES = {
    **dict.fromkeys(
        ["BlobOutcome", "BlobResult", "ImageSink", "ImageSource", "NullProgress", "Progress"],
        "._base",
    ),
    "CredentialSource": "._credential_sources",
    "Location": "._location",
    **dict.fromkeys(["set_plugin_sources", "set_prefix_resolver"], "._hooks"),
    **dict.fromkeys(
        ["Transport", "mount_origin", "open_sink", "open_source", "register_transport"], "._table"
    ),
}


# Every importer of httpx (the registry client, the engine client) lives below this package.
skip_httpx_cli()


__getattr__, __dir__ = lazy_names(__name__, _HOMES)
