"""Images as immutable values (a config, layers base first, manifest annotations), and reading
them from any transport.

Every change returns a new :class:`Image`. Appended layers may not know their digests yet:
their ``diff_ids`` and history reach the config when the image is written. A loaded image
remembers what it was read as (:class:`ImageOrigin`): written unchanged it is the same bytes,
and an image made from it names it as its base.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._errors import InvalidOptionError, InvalidPlatformError, ManifestError, TarballError
from ..layer._compress import decompress_stream
from ..oci import (
    ContainerConfig,
    Descriptor,
    Digest,
    HistoryEntry,
    ImageConfig,
    Index,
    Manifest,
    Platform,
)
from ..oci import media_types as mt
from ..oci._blobs import TarStream, VerifyingStream
from ..oci._config import check_text
from ..oci._descriptor import freeze_map
from ..oci._epoch import source_date_epoch
from ..oci._layer import BlobStream, Layer, LayerDigests
from ..oci._manifest import parse_manifest_or_index
from ..transports import Location, mount_origin, open_source
from ..transports._base import ImageSource
from ._platforms import (
    ALL,
    DEFAULT_PLATFORM,
    PlatformSpec,
    check_single,
    select_entries,
    wanted_platforms,
)

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = [
    "BASE_DIGEST",
    "BASE_NAME",
    "Image",
    "ImageOrigin",
    "Loaded",
    "SourceLayer",
    "build_time",
    "checked_diff_ids",
    "load",
    "load_image",
]

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


def build_time() -> str:
    """RFC 3339 time for ``created`` fields: ``SOURCE_DATE_EPOCH``, else 1970 (reproducible)."""
    moment = datetime.fromtimestamp(source_date_epoch(), tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ImageOrigin:
    """What :func:`load` read an image as: enough to write it again byte for byte, and to
    name it as the base of images made from it.

    ``name`` is the base's registry reference, fully qualified (``docker.io/library/python:3.12``);
    a reference pinned by digest is named ``REGISTRY/REPO@DIGEST`` with any tag beside the
    digest left out, since the digest alone chose the content. Layouts, archives and engines
    have no ``name``: their spelling is a path on one machine, which would make the digest of
    every image built on them depend on where the base happened to lie.
    """

    name: str | None
    digest: Digest
    manifest: Manifest
    manifest_data: bytes = field(repr=False)
    config_data: bytes = field(repr=False)
    config: ImageConfig = field(repr=False)
    layers: tuple[Layer, ...] = field(repr=False)
    media_type: str = mt.OCI_MANIFEST

    @property
    def annotations(self) -> dict[str, str]:
        """The ``org.opencontainers.image.base.*`` annotations an image made from this one
        carries: none for a base without a registry name."""
        if self.name is None:
            return {}
        return {BASE_NAME: self.name, BASE_DIGEST: str(self.digest)}


@dataclass(frozen=True)
class Image:
    """An image: ``config`` describes ``layers[:len(layers) - len(pending_history)]``; the
    rest were appended and are described by ``pending_history`` until written.

    ``annotations`` are the ones the written manifest adds; a loaded image starts with none
    (its source's describe that image, not one made from it). ``origin`` is what :func:`load`
    read; it is kept through every change, and only an image equal to it is written as its
    original bytes.
    """

    config: ImageConfig
    layers: tuple[Layer, ...] = ()
    media_type: str = mt.OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=dict)
    pending_history: tuple[HistoryEntry, ...] = ()
    origin: ImageOrigin | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_annotations(self.annotations)
        object.__setattr__(self, "annotations", freeze_map(self.annotations))

    # -- making ----------------------------------------------------------------------

    @classmethod
    def scratch(cls, platform: Platform | str | None = None) -> Image:
        """The empty image for ``platform`` (``linux/amd64`` by default)."""
        if isinstance(platform, str):
            platform = Platform.parse(platform)
        config = ImageConfig.empty(platform or DEFAULT_PLATFORM, build_time())
        return cls(config)

    @classmethod
    def load(
        cls,
        spec: str,
        *,
        platform: Platform | str | None = None,
        registry_options: RegistryOptions | None = None,
    ) -> Image:
        """Read an image from any transport spelling (``oci:DIR:TAG``, ``REGISTRY/REPO:TAG``, ...).

        An index is resolved to the entry for ``platform`` (``linux/amd64`` when not given, with
        a warning naming the other platforms); :func:`load` reads several.
        """
        return load_image(spec, platform=platform, registry_options=registry_options)

    # -- reading ---------------------------------------------------------------------

    @property
    def platform(self) -> Platform:
        """The platform the config claims."""
        return self.config.platform

    @property
    def base_layer_count(self) -> int:
        """How many layers the config already lists."""
        return len(self.layers) - len(self.pending_history)

    @property
    def is_unchanged(self) -> bool:
        """Whether this is the image :func:`load` read, as it was: writing it writes the
        manifest and config it was read from, byte for byte."""
        origin = self.origin
        if origin is None or self.pending_history or self.annotations:
            return False
        return (self.config, self.layers, self.media_type) == (
            origin.config,
            origin.layers,
            origin.media_type,
        )

    # -- changing --------------------------------------------------------------------

    def append(self, *layers: Layer, created_by: str | None = None) -> Image:
        """A new image with ``layers`` on top, each with a history entry."""
        when = self.config.raw.get("created") or build_time()
        history = tuple(
            HistoryEntry(created=when, created_by=created_by or f"ocibuild: {layer.description}")
            for layer in layers
        )
        return replace(
            self,
            layers=self.layers + tuple(layers),
            pending_history=self.pending_history + history,
        )

    def with_config(self, changes: ContainerConfig | None = None, **fields: Any) -> Image:
        """A new image whose container config has ``changes`` (or keyword fields) applied.

        Keywords are those of :class:`~ocibuild.oci.ContainerConfig`: ``entrypoint``, ``cmd``,
        ``env``, ``working_dir``, ``user``, ``labels``, ``exposed_ports``, ``volumes``,
        ``stop_signal``.
        """
        if changes is None:
            changes = ContainerConfig(**fields)
        elif fields:
            changes = replace(changes, **fields)
        return replace(self, config=self.config.with_container(changes))

    def with_annotations(self, annotations: Mapping[str, str]) -> Image:
        """A new image whose manifest carries ``annotations`` (merged over existing ones)."""
        return replace(self, annotations={**self.annotations, **annotations})

    def with_created(self, created: str) -> Image:
        """A new image whose config has another ``created`` time."""
        return replace(self, config=self.config.with_created(created))

    def with_platform(self, platform: Platform | str) -> Image:
        """A new image whose config claims ``platform`` (a :class:`Platform` or its spelling,
        ``linux/arm64``, as :meth:`scratch` and :func:`load` take it)."""
        if isinstance(platform, str):
            platform = Platform.parse(platform)
        elif not isinstance(platform, Platform):
            raise InvalidPlatformError(
                f"platform must be a Platform or a string like linux/arm64, not "
                f"{type(platform).__name__}"
            )
        return replace(self, config=self.config.with_platform(platform))


def _check_annotations(annotations: Mapping[str, str]) -> None:
    """Refuse annotations no manifest can hold now, not after the layers were pushed."""
    for key, value in annotations.items():
        if not isinstance(key, str):
            raise InvalidOptionError(f"annotation key must be a string, not {type(key).__name__}")
        check_text("annotation key", key)
        label = f"annotation '{key}' value"
        if not isinstance(value, str):
            raise InvalidOptionError(f"{label} must be a string, not {type(value).__name__}")
        check_text(label, value)


class SourceLayer:
    """A layer that already exists in a source (registry, layout, archive): digests are known."""

    def __init__(
        self,
        source: ImageSource,
        descriptor: Descriptor,
        diff_id: Digest,
        *,
        mount_from: tuple[str, str] | None = None,
    ) -> None:
        self.source = source
        self.descriptor = descriptor
        self.diff_id = diff_id
        self.mount_from = mount_from

    @property
    def media_type(self) -> str:
        return self.descriptor.media_type

    @property
    def description(self) -> str:
        return f"layer {self.descriptor.digest.encoded[:12]} of {self.source.name}"

    def known(self) -> LayerDigests:
        d = self.descriptor
        return LayerDigests(d.media_type, d.digest, self.diff_id, d.size)

    def compressed(self) -> BlobStream:
        return VerifyingStream(
            self.source.open_blob(self.descriptor),
            self.descriptor,
            diff_id=self.diff_id,
            source=self.source.name,
        )

    def uncompressed(self) -> BlobStream:
        """The tar: the blob verified against its digest, decompressed, checked against the
        diff_id the config claims (a plain tar whose digest is that diff_id is checked once)."""
        kind = mt.compression_of(self.descriptor.media_type)
        if kind == "none" and self.descriptor.digest == self.diff_id:
            return self.compressed()
        tar = decompress_stream(self.compressed(), kind)  # type: ignore[arg-type]
        return TarStream(self._naming(tar), diff_id=self.diff_id, source=self.source.name)

    def _naming(self, tar: Iterator[bytes]) -> Iterator[bytes]:
        """``tar``, with a decompression error saying which blob of which source it was."""
        try:
            yield from tar
        except TarballError as err:
            raise TarballError(
                f"layer {self.descriptor.digest} of {self.source.name} cannot be decompressed "
                f"({err}); the source is corrupt"
            ) from err


@dataclass(frozen=True)
class Loaded:
    """What a location holds: one image, or an index and the images of the platforms asked for.

    ``images`` come in the order the platforms were asked for (the index's own for all of
    them); ``index`` is the index read (``None`` for one image or ``scratch``) and ``digest``
    the digest of what the location names.
    """

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
    platform: PlatformSpec = None,
    all_platforms: bool = False,
    registry_options: RegistryOptions | None = None,
) -> Loaded:
    """Read what ``spec`` names.

    An index gives the images of the platforms ``platform`` asks for: one (``linux/arm64``),
    several (``["linux/amd64", "linux/arm64"]`` or ``"linux/amd64,linux/arm64"``) or every one
    (``"all"``, or ``all_platforms``). Asked for none, it gives ``linux/amd64`` and logs a
    warning naming what else the index has. ``scratch`` gives an empty image per platform.
    """
    location = spec if isinstance(spec, Location) else Location.parse(spec)
    wanted = ALL if all_platforms else wanted_platforms(platform)
    if location.kind == "scratch":
        chosen = (None,) if wanted is None or wanted == ALL else wanted
        return Loaded(tuple(Image.scratch(p) for p in chosen), None, None, None)

    source = open_source(location, registry_options)
    data, media_type = source.get_manifest()
    top_digest = Digest.of(data)
    parsed = parse_manifest_or_index(data, media_type)
    name = base_name(location)
    if isinstance(parsed, Manifest):
        image = _image_from_manifest(source, parsed, data, name, top_digest)
        if isinstance(wanted, tuple):
            check_single(location, image.platform, wanted)
        return Loaded((image,), None, top_digest, source)

    index = parsed
    entries = select_entries(location, index, wanted)
    images = []
    for desc in entries:
        child_data = source.get_child_manifest(desc)
        child = Manifest.from_json(child_data, desc.media_type)
        images.append(_image_from_manifest(source, child, child_data, name, desc.digest))
    return Loaded(tuple(images), index, top_digest, source)


def load_image(
    spec: str,
    *,
    platform: Platform | str | None = None,
    registry_options: RegistryOptions | None = None,
) -> Image:
    """Read one image (an index resolved to ``platform``, ``linux/amd64`` by default)."""
    wanted = wanted_platforms(platform)
    if wanted == ALL or (isinstance(wanted, tuple) and len(wanted) > 1):
        raise InvalidPlatformError(
            f"one image has one platform, not {platform!r}: use load() for several"
        )
    return load(spec, platform=wanted, registry_options=registry_options).images[0]


def base_name(location: Location) -> str | None:
    """The ``base.name`` annotation for a base at ``location``: registries only, fully
    qualified, and ``REGISTRY/REPO@DIGEST`` for a pinned one whatever tag stood beside it."""
    ref = location.reference
    if location.kind != "registry" or ref is None:
        return None
    return str(replace(ref, tag=None) if ref.digest is not None else ref)


def _image_from_manifest(
    source: ImageSource, manifest: Manifest, data: bytes, name: str | None, digest: Digest
) -> Image:
    config_data = source.get_blob(manifest.config)
    config = ImageConfig.from_json(config_data)
    diff_ids = checked_diff_ids(config, manifest, source)
    mount_from = mount_origin(source)
    layers = tuple(
        SourceLayer(source, desc, diff_id, mount_from=mount_from)
        for desc, diff_id in zip(manifest.layers, diff_ids, strict=True)
    )
    media_type = mt.DOCKER_MANIFEST if manifest.is_docker else mt.OCI_MANIFEST
    origin = ImageOrigin(name, digest, manifest, data, config_data, config, layers, media_type)
    return Image(config, layers, media_type=media_type, origin=origin)


def checked_diff_ids(
    config: ImageConfig, manifest: Manifest, source: ImageSource
) -> tuple[Digest, ...]:
    """The config's diff_ids, one per manifest layer, or a :class:`ManifestError`."""
    diff_ids = config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise ManifestError(
            f"{source.name}: the config lists {len(diff_ids)} layers but the manifest has "
            f"{len(manifest.layers)}; the image is inconsistent"
        )
    return diff_ids
