"""OCI value types: digests, descriptors, platforms, references, configs, manifests, indexes."""

from . import _mediatypes as media_types
from ._config import ContainerConfig, HistoryEntry, ImageConfig
from ._descriptor import Descriptor, Platform
from ._digest import Digest
from ._manifest import Index, Manifest, describe, parse_manifest_or_index
from ._reference import Reference

__all__ = [
    "ContainerConfig",
    "Descriptor",
    "Digest",
    "HistoryEntry",
    "ImageConfig",
    "Index",
    "Manifest",
    "Platform",
    "Reference",
    "describe",
    "media_types",
    "parse_manifest_or_index",
]
