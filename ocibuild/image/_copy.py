"""Copying images between transports, byte for byte where the destination allows it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import ManifestError
from ..oci import Descriptor, Index, Manifest, Platform
from ..oci._manifest import MAX_INDEX_DEPTH, parse_manifest_or_index
from ..transports import Location, open_sink, open_source
from ..transports._base import ImageSource, Progress, phase
from ..transports._tagging import TaggingSink
from ._image import Image
from ._write import BlobWriter, WriteResult, tag_of, write

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = ["copy"]


def copy(
    src: str | Location,
    dest: str | Location,
    *,
    platform: Platform | str | None = None,
    registry_options: RegistryOptions | None = None,
    progress: Progress | None = None,
    extra_tags: Sequence[str] = (),
) -> WriteResult:
    """Copy what ``src`` names to ``dest``, keeping manifest digests.

    An index is copied whole (every platform) unless ``platform`` picks one entry; ``"all"``
    asks for the whole index explicitly. Blobs the destination has are not sent; blobs in
    another repository of the same registry are mounted. ``extra_tags`` name the copy too
    (one manifest put each).
    """
    src_loc = src if isinstance(src, Location) else Location.parse(src)
    dest_loc = dest if isinstance(dest, Location) else Location.parse(dest)
    if src_loc.kind == "scratch":
        return write(
            Image.scratch(None if platform == "all" else platform),
            dest_loc,
            registry_options=registry_options,
            progress=progress,
            extra_tags=extra_tags,
        )
    if isinstance(platform, str) and platform != "all":
        platform = Platform.parse(platform)

    source = open_source(src_loc, registry_options)
    sink = open_sink(dest_loc, registry_options)
    tag = tag_of(dest_loc)
    if extra_tags:
        sink = TaggingSink(sink, extra_tags)
        tag = tag if tag is not None else extra_tags[0]
    writer = BlobWriter(sink, progress)
    platforms: list[str] = []
    selected = platform if isinstance(platform, Platform) else None

    def body() -> Descriptor:
        data, media_type = source.get_manifest()
        parsed = parse_manifest_or_index(data, media_type)
        if isinstance(parsed, Index):
            if selected is None:
                return _copy_index(writer, source, parsed, data, tag, platforms)
            desc = parsed.select(selected)
            data = source.get_child_manifest(desc)
            parsed = Manifest.from_json(data, desc.media_type)
        top = writer.raw_image(source, parsed, data, tag=tag)
        platforms.append(str(top.platform))
        return top

    try:
        return writer.transact(body, str(dest_loc), platforms)
    finally:
        source.close()


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
