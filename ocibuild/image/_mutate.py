"""Changing an image's config and annotations without adding a layer (``ocibuild mutate``).

The layers are the source's, untouched (mounted or skipped where the destination has them).
An image that the changes leave as it was is copied byte for byte, so its digest stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from .._errors import ManifestError
from ..oci import ContainerConfig, ImageConfig, Index, Manifest, Platform
from ..oci import media_types as mt
from ..oci._manifest import parse_manifest_or_index
from ..transports import Location, mount_origin, open_source
from ..transports._base import ImageSource, Progress
from ._copy import copy
from ._image import Image, SourceLayer, checked_diff_ids
from ._write import WriteResult, write

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = ["mutate"]


def mutate(
    src: str | Location,
    dest: str | Location,
    *,
    changes: ContainerConfig | None = None,
    annotations: Mapping[str, str] | None = None,
    platform: Platform | str | None = None,
    registry_options: RegistryOptions | None = None,
    progress: Progress | None = None,
    extra_tags: Sequence[str] = (),
) -> WriteResult:
    """Write ``src`` to ``dest`` with ``changes`` to its config and ``annotations`` merged
    into its manifest.

    An index is changed platform by platform and written as an index, unless ``platform``
    picks one entry. What the changes leave as it was is copied unchanged.
    """
    src_loc = src if isinstance(src, Location) else Location.parse(src)
    if src_loc.kind == "scratch":
        raise ManifestError("mutate needs an image to change; scratch has nothing to keep")
    if isinstance(platform, str) and platform != "all":
        platform = Platform.parse(platform)
    selected = platform if isinstance(platform, Platform) else None
    source = open_source(src_loc, registry_options)
    try:
        originals, is_index = _images(source, selected)
    finally:
        source.close()
    changed = [_change(image, changes, annotations) for image in originals]
    if all(_same(a, b) for a, b in zip(originals, changed, strict=True)):
        return copy(
            src_loc,
            dest,
            platform=selected or "all",
            registry_options=registry_options,
            progress=progress,
            extra_tags=extra_tags,
        )
    return write(
        changed,
        dest,
        registry_options=registry_options,
        progress=progress,
        as_index=is_index,
        extra_tags=extra_tags,
    )


def _images(source: ImageSource, platform: Platform | None) -> tuple[list[Image], bool]:
    """The images ``source`` names (one per platform of an index), with their own
    annotations; and whether they came from an index that stays one."""
    data, media_type = source.get_manifest()
    parsed = parse_manifest_or_index(data, media_type)
    if isinstance(parsed, Manifest):
        image = _image(source, parsed)
        if platform is not None and not image.platform.matches(platform):
            raise ManifestError(
                f"{source.name} is a single {image.platform} image, not {platform}; drop --platform"
            )
        return [image], False
    index: Index = parsed
    entries = index.images if platform is None else (index.select(platform),)
    images = []
    for desc in entries:
        child = Manifest.from_json(source.get_child_manifest(desc), desc.media_type)
        images.append(_image(source, child))
    return images, platform is None


def _image(source: ImageSource, manifest: Manifest) -> Image:
    config = ImageConfig.from_json(source.get_blob(manifest.config))
    origin = mount_origin(source)
    layers = tuple(
        SourceLayer(source, desc, diff_id, mount_from=origin)
        for desc, diff_id in zip(
            manifest.layers, checked_diff_ids(config, manifest, source), strict=True
        )
    )
    media_type = mt.DOCKER_MANIFEST if manifest.is_docker else mt.OCI_MANIFEST
    return Image(config, layers, media_type=media_type, annotations=dict(manifest.annotations))


def _change(
    image: Image, changes: ContainerConfig | None, annotations: Mapping[str, str] | None
) -> Image:
    if changes is not None and changes != ContainerConfig():
        image = image.with_config(changes)
    if annotations:
        if mt.is_docker(image.media_type):
            # Docker schema 2 has no annotations: the image becomes OCI to carry them.
            image = replace(image, media_type=mt.OCI_MANIFEST)
        image = image.with_annotations(annotations)
    return image


def _same(a: Image, b: Image) -> bool:
    return a.config.raw == b.config.raw and dict(a.annotations) == dict(b.annotations)
