"""Transports: where images are read from and written to, behind one table of prefixes.

``oci:`` (an OCI image layout), ``docker-archive:`` (a ``docker save`` tarball) and registries
(:mod:`ocibuild.registry`); every one is an :class:`ImageSource` and an :class:`ImageSink`.
"""

from ._base import BlobOutcome, BlobResult, ImageSink, ImageSource, NullProgress, Progress
from ._credential_sources import CredentialSource, set_plugin_sources
from ._location import Location, set_prefix_resolver
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
