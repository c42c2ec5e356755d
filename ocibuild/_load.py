"""Reading images from any transport into :class:`~ocibuild._image.Image` values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import ManifestError
from ._image import BASE_DIGEST, BASE_NAME, Image, SourceLayer
from ._location import Location
from ._transport import ImageSink, ImageSource
from .oci import Digest, ImageConfig, Index, Manifest, Platform
from .oci import media_types as mt
from .oci._manifest import parse_manifest_or_index

__all__ = ["Loaded", "load", "load_image", "open_sink", "open_source"]


def open_source(location: Location, registry_options: Any = None) -> ImageSource:
    """An :class:`ImageSource` for a parsed location (not ``scratch``)."""
    if location.kind == "oci":
        from ._layout import LayoutSource

        return LayoutSource(location.path or ".", location.tag)
    if location.kind == "docker-archive":
        from ._archive import ArchiveSource

        return ArchiveSource(location.path or ".", location.tag)
    if location.kind == "registry" and location.reference is not None:
        from .registry import RegistryOptions, RegistrySource

        return RegistrySource(location.reference, registry_options or RegistryOptions())
    raise ManifestError(f"{location} cannot be read from")


def open_sink(location: Location, registry_options: Any = None) -> ImageSink:
    """An :class:`ImageSink` for a parsed location."""
    if location.kind == "oci":
        from ._layout import LayoutSink

        return LayoutSink(location.path or ".", location.tag)
    if location.kind == "docker-archive":
        from ._archive import ArchiveSink

        return ArchiveSink(location.path or ".", location.tag)
    if location.kind == "registry" and location.reference is not None:
        from .registry import RegistryOptions, RegistrySink

        return RegistrySink(location.reference, registry_options or RegistryOptions())
    raise ManifestError(f"{location} cannot be written to")


@dataclass(frozen=True)
class Loaded:
    """What a location holds: one image, or an index with an image per platform."""

    images: tuple[Image, ...]
    index: Index | None
    digest: Digest | None
    source: ImageSource | None

    @property
    def is_index(self) -> bool:
        return self.index is not None


def load(
    spec: str | Location,
    *,
    platform: Platform | str | None = None,
    all_platforms: bool = False,
    registry_options: Any = None,
) -> Loaded:
    """Read what ``spec`` names; an index is resolved to ``platform`` unless ``all_platforms``."""
    location = spec if isinstance(spec, Location) else Location.parse(spec)
    if isinstance(platform, str):
        platform = Platform.parse(platform)
    if location.kind == "scratch":
        return Loaded((Image.scratch(platform),), None, None, None)

    source = open_source(location, registry_options)
    data, media_type = source.get_manifest()
    top_digest = Digest.of(data)
    parsed = parse_manifest_or_index(data, media_type)
    base_name = str(location)
    if isinstance(parsed, Manifest):
        image = _image_from_manifest(source, parsed, base_name, top_digest)
        if platform is not None and not all_platforms and not image.platform.matches(platform):
            raise ManifestError(
                f"{base_name} is a single {image.platform} image, not {platform}; "
                "drop --platform or pick a matching base"
            )
        return Loaded((image,), None, top_digest, source)

    index = parsed
    if all_platforms:
        entries = index.images
    else:
        entries = (index.select(platform or Platform("linux", "amd64")),)
    images = []
    for desc in entries:
        child = Manifest.from_json(source.get_child_manifest(desc), desc.media_type)
        images.append(_image_from_manifest(source, child, base_name, desc.digest))
    return Loaded(tuple(images), index, top_digest, source)


def load_image(
    spec: str, *, platform: Platform | str | None = None, registry_options: Any = None
) -> Image:
    """Read one image (an index resolved to ``platform``, ``linux/amd64`` by default)."""
    return load(spec, platform=platform, registry_options=registry_options).images[0]


def _image_from_manifest(
    source: ImageSource, manifest: Manifest, base_name: str, digest: Digest
) -> Image:
    from ._write import _diff_ids

    config = ImageConfig.from_json(source.get_blob(manifest.config))
    diff_ids = _diff_ids(config, manifest, source)
    mount_from = mount_origin(source)
    layers = tuple(
        SourceLayer(source, desc, diff_id, mount_from=mount_from)
        for desc, diff_id in zip(manifest.layers, diff_ids, strict=True)
    )
    annotations = {BASE_NAME: base_name, BASE_DIGEST: str(digest)}
    media_type = mt.DOCKER_MANIFEST if manifest.is_docker else mt.OCI_MANIFEST
    return Image(config, layers, media_type=media_type, annotations=annotations)


def mount_origin(source: ImageSource) -> tuple[str, str] | None:
    ref = getattr(source, "reference", None)
    registry, repository = getattr(ref, "registry", None), getattr(ref, "repository", None)
    if isinstance(registry, str) and isinstance(repository, str):
        return (registry, repository)
    return None
