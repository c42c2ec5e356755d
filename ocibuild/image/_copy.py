"""Copying images between transports, byte for byte where the destination allows it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import ManifestError
from ..oci import Descriptor, Index, Manifest, Platform
from ..oci._manifest import MAX_INDEX_DEPTH, parse_manifest_or_index
from ..transports import Location, open_sink, open_source
from ..transports._base import ImageSource, Progress, phase
from ..transports._tagging import with_extra_tags
from ._image import load
from ._platforms import PlatformSpec, select_entries, wanted_platforms
from ._write import BlobWriter, WriteResult, tag_of, write

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = ["copy"]


def copy(
    src: str | Location,
    dest: str | Location,
    *,
    platform: PlatformSpec = None,
    registry_options: RegistryOptions | None = None,
    progress: Progress | None = None,
    extra_tags: Sequence[str] = (),
) -> WriteResult:
    """Copy what ``src`` names to ``dest``, keeping manifest digests.

    An index is copied whole (every platform; ``"all"`` asks for that explicitly) unless
    ``platform`` picks one entry (copied as that image) or several (``"linux/amd64,linux/arm64"``
    or a list: a new index of exactly those entries, each image byte for byte). Blobs the
    destination has are not sent; blobs in another repository of the same registry are mounted.
    ``extra_tags`` name the copy too (one manifest put each).
    """
    src_loc = src if isinstance(src, Location) else Location.parse(src)
    dest_loc = dest if isinstance(dest, Location) else Location.parse(dest)
    wanted = wanted_platforms(platform)
    if src_loc.kind == "scratch":
        images = load(src_loc, platform=platform).images
        return write(
            images,
            dest_loc,
            registry_options=registry_options,
            progress=progress,
            extra_tags=extra_tags,
        )

    source = open_source(src_loc, registry_options)
    sink = open_sink(dest_loc, registry_options)
    tag = tag_of(dest_loc)
    sink, tag = with_extra_tags(sink, tag, extra_tags)
    writer = BlobWriter(sink, progress)
    platforms: list[str] = []

    def body() -> Descriptor:
        data, media_type = source.get_manifest()
        parsed = parse_manifest_or_index(data, media_type)
        if isinstance(parsed, Index):
            if not isinstance(wanted, tuple):
                return _copy_index(writer, source, parsed, data, tag, platforms)
            if len(wanted) > 1:
                return _copy_entries(writer, source, parsed, wanted, tag, platforms)
            desc = parsed.select(wanted[0])
            data = source.get_child_manifest(desc)
            parsed = Manifest.from_json(data, desc.media_type)
        elif isinstance(wanted, tuple) and len(wanted) > 1:
            asked = ", ".join(str(p) for p in wanted)
            raise ManifestError(f"{src_loc} is a single image, not an index of {asked}")
        top = writer.raw_image(source, parsed, data, tag=tag)
        platforms.append(str(top.platform))
        return top

    try:
        return writer.transact(body, str(dest_loc), platforms)
    finally:
        source.close()


def _copy_entries(
    writer: BlobWriter,
    source: ImageSource,
    index: Index,
    wanted: tuple[Platform, ...],
    tag: str | None,
    platforms: list[str],
) -> Descriptor:
    """Copy the entries of ``index`` for ``wanted``, under a new index of just those."""
    children = []
    entries = select_entries(source.name, index, wanted)
    for desc in entries:
        data = source.get_child_manifest(desc)
        child = parse_manifest_or_index(data, desc.media_type)
        if not isinstance(child, Manifest):
            raise ManifestError(
                f"{source.name}: the {desc.platform} entry is an index, not an image"
            )
        children.append((child, data))
        platforms.append(str(desc.platform))
    writer.raw_images(source, children)
    subset = Index(tuple(entries), media_type=index.media_type, annotations=index.annotations)
    return writer.sink.put_manifest(subset.to_json(), subset.media_type, tag=tag)


def _copy_index(
    writer: BlobWriter,
    source: ImageSource,
    index: Index,
    data: bytes,
    tag: str | None,
    platforms: list[str],
    depth: int = 1,
) -> Descriptor:
    if depth > MAX_INDEX_DEPTH:
        raise ManifestError(
            f"{source.name} nests image indexes more than {MAX_INDEX_DEPTH} deep; "
            "no real image does"
        )
    children: list[tuple[Manifest, bytes]] = []
    for desc in index.manifests:
        child_data = source.get_child_manifest(desc)
        child = parse_manifest_or_index(child_data, desc.media_type)
        if not isinstance(child, Manifest):
            # Nested indexes are rare; their blobs are copied as their children are.
            _copy_index(writer, source, child, child_data, None, platforms, depth + 1)
            continue
        children.append((child, child_data))
        if desc.platform is not None:
            platforms.append(str(desc.platform))
    writer.raw_images(source, children)  # the platforms' blobs go at the same time
    with phase(writer.progress, "index") as step:
        step.detail = f"{len(children)} platforms"
        return writer.sink.put_manifest(data, index.media_type, tag=tag)
