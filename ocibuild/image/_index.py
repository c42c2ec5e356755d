"""Building a multi-platform index from images (``ocibuild index create|append``).

Each image keeps its manifest bytes (so its digest), its blobs are copied where the
destination lacks them (mounted within one registry), and its index entry carries the
platform its config claims. An image that is itself an index contributes its entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import InvalidOptionError, ManifestError
from ..oci import Descriptor, Index, Manifest
from ..oci import media_types as mt
from ..oci._manifest import parse_manifest_or_index
from ..transports import Location, open_sink, open_source
from ..transports._base import ImageSource, Progress
from ..transports._tagging import with_extra_tags
from ._write import BlobWriter, WriteResult, tag_of

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = ["build_index"]


def build_index(
    dest: str | Location,
    images: Sequence[str | Location],
    *,
    append: bool = False,
    registry_options: RegistryOptions | None = None,
    progress: Progress | None = None,
    extra_tags: Sequence[str] = (),
) -> WriteResult:
    """Write an index of ``images`` to ``dest``; with ``append``, the index already at
    ``dest`` keeps its entries, except those for a platform one of ``images`` brings."""
    if not images:
        raise InvalidOptionError("an index needs at least one image: give --image REF")
    dest_loc = dest if isinstance(dest, Location) else Location.parse(dest)
    kept = _existing(dest_loc, registry_options) if append else ()
    sink = open_sink(dest_loc, registry_options)
    tag = tag_of(dest_loc)
    sink, tag = with_extra_tags(sink, tag, extra_tags)
    writer = BlobWriter(sink, progress)
    platforms: list[str] = []

    def body() -> Descriptor:
        added: list[Descriptor] = []
        for spec in images:
            added += _add(writer, spec, registry_options)
        new = {str(d.platform) for d in added}
        entries = [d for d in kept if str(d.platform) not in new] + added
        platforms.extend(str(d.platform) for d in entries if d.platform is not None)
        index = Index(tuple(entries), media_type=_index_type(entries))
        return sink.put_manifest(index.to_json(), index.media_type, tag=tag)

    return writer.transact(body, str(dest_loc), platforms)


def _existing(location: Location, options: RegistryOptions | None) -> tuple[Descriptor, ...]:
    """The entries of the index at ``location`` (which must be an index)."""
    source = open_source(location, options)
    try:
        data, media_type = source.get_manifest()
    finally:
        source.close()
    parsed = parse_manifest_or_index(data, media_type)
    if not isinstance(parsed, Index):
        raise ManifestError(
            f"{location} is a single image, not an index; use 'ocibuild index create' "
            f"with --image {location}"
        )
    return parsed.manifests


def _add(
    writer: BlobWriter, spec: str | Location, options: RegistryOptions | None
) -> list[Descriptor]:
    """Copy the image (or each image of the index) ``spec`` names; their index entries."""
    location = spec if isinstance(spec, Location) else Location.parse(spec)
    if location.kind == "scratch":
        raise InvalidOptionError("--image scratch: an index holds real images; write one first")
    source = open_source(location, options)
    try:
        data, media_type = source.get_manifest()
        parsed = parse_manifest_or_index(data, media_type)
        if isinstance(parsed, Manifest):
            return [writer.raw_image(source, parsed, data, tag=None)]
        return _children(writer, source, parsed)
    finally:
        source.close()


def _children(writer: BlobWriter, source: ImageSource, index: Index) -> list[Descriptor]:
    children = []
    for desc in index.images:
        data = source.get_child_manifest(desc)
        child = parse_manifest_or_index(data, desc.media_type)
        if not isinstance(child, Manifest):
            raise ManifestError(
                f"{source.name} nests an index in an index; give its images one by one"
            )
        children.append((child, data))
    written = writer.raw_images(source, children)
    # The source index's entry may say more than the config (os.version, features).
    return [
        Descriptor(w.media_type, w.digest, w.size, platform=d.platform or w.platform)
        for w, d in zip(written, index.images, strict=True)
    ]


def _index_type(children: Sequence[Descriptor]) -> str:
    if children and all(mt.is_docker(c.media_type) for c in children):
        return mt.DOCKER_MANIFEST_LIST
    return mt.OCI_INDEX
