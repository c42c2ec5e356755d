"""Manifests (one image) and indexes (several), OCI and Docker schema 2."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import ManifestError, NotFoundError
from . import _mediatypes as mt
from ._config import dumps
from ._descriptor import Descriptor, Platform, freeze_map
from ._digest import Digest
from ._fields import LIST, STRING, STRING_MAP, check_descriptor, check_fields, load_json

__all__ = ["MAX_INDEX_DEPTH", "Index", "Manifest", "describe", "parse_manifest_or_index"]

MAX_INDEX_DEPTH = 8  # indexes of indexes: real images nest two at most


def _load(data: bytes, what: str) -> dict[str, Any]:
    obj = load_json(data, what)
    if not isinstance(obj, dict):
        raise ManifestError(f"{what} is not a JSON object")
    if obj.get("schemaVersion") != 2:
        raise ManifestError(
            f"{what} has schemaVersion {obj.get('schemaVersion')!r}; only schema 2 is supported"
        )
    check_fields(obj, _DOCUMENT_FIELDS, what)
    return obj


_DOCUMENT_FIELDS = {
    "mediaType": STRING,
    "artifactType": STRING,
    "annotations": STRING_MAP,
    "layers": LIST,
    "manifests": LIST,
}


def _descriptors(obj: Mapping[str, Any], key: str, what: str) -> tuple[Descriptor, ...]:
    """The descriptors in the list ``obj[key]``, each checked."""
    return tuple(
        _descriptor(item, f"{what} {key}[{index}]") for index, item in enumerate(obj.get(key) or ())
    )


def _descriptor(obj: Any, where: str) -> Descriptor:
    try:
        return Descriptor.from_dict(check_descriptor(obj, where))
    except ManifestError as err:
        if str(err).startswith(where):
            raise
        raise ManifestError(f"{where}: {err}") from None


def _subject(obj: Mapping[str, Any], what: str) -> Descriptor | None:
    subject = obj.get("subject")
    return None if subject is None else _descriptor(subject, f"{what} subject")


@dataclass(frozen=True)
class Manifest:
    """A single-image manifest: a config descriptor and layer descriptors, base first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mt.OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "annotations", freeze_map(self.annotations))

    @classmethod
    def from_json(cls, data: bytes, media_type: str | None = None) -> Manifest:
        """Parse manifest bytes; ``media_type`` (a Content-Type) is used when the body has none."""
        obj = _load(data, "manifest")
        kind = obj.get("mediaType") or media_type or mt.OCI_MANIFEST
        if not mt.is_manifest(kind):
            raise ManifestError(f"expected an image manifest, got media type {kind!r}")
        if obj.get("config") is None:
            raise ManifestError("manifest lacks the 'config' field")
        return cls(
            config=_descriptor(obj["config"], "manifest config"),
            layers=_descriptors(obj, "layers", "manifest"),
            media_type=kind,
            annotations=dict(obj.get("annotations") or {}),
            subject=_subject(obj, "manifest"),
            artifact_type=obj.get("artifactType"),
        )

    def to_json(self) -> bytes:
        """Serialized bytes (deterministic)."""
        obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        if self.artifact_type:
            obj["artifactType"] = self.artifact_type
        obj["config"] = self.config.to_dict()
        obj["layers"] = [d.to_dict() for d in self.layers]
        if self.subject is not None:
            obj["subject"] = self.subject.to_dict()
        if self.annotations:
            obj["annotations"] = dict(sorted(self.annotations.items()))
        return dumps(obj)

    @property
    def is_docker(self) -> bool:
        """Whether this is a Docker schema 2 manifest."""
        return mt.is_docker(self.media_type)

    def with_annotations(self, annotations: Mapping[str, str]) -> Manifest:
        """A copy with ``annotations`` merged in (Docker manifests cannot carry them)."""
        return replace(self, annotations={**self.annotations, **annotations})


@dataclass(frozen=True)
class Index:
    """An image index (or Docker manifest list): manifests for several platforms."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "annotations", freeze_map(self.annotations))

    @classmethod
    def from_json(cls, data: bytes, media_type: str | None = None) -> Index:
        """Parse index bytes."""
        obj = _load(data, "image index")
        kind = obj.get("mediaType") or media_type or mt.OCI_INDEX
        if not mt.is_index(kind):
            raise ManifestError(f"expected an image index, got media type {kind!r}")
        return cls(
            manifests=_descriptors(obj, "manifests", "image index"),
            media_type=kind,
            annotations=dict(obj.get("annotations") or {}),
            subject=_subject(obj, "image index"),
        )

    def to_json(self) -> bytes:
        """Serialized bytes (deterministic)."""
        obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        obj["manifests"] = [d.to_dict() for d in self.manifests]
        if self.subject is not None:
            obj["subject"] = self.subject.to_dict()
        if self.annotations:
            obj["annotations"] = dict(sorted(self.annotations.items()))
        return dumps(obj)

    @property
    def images(self) -> tuple[Descriptor, ...]:
        """Entries that are images (attestations and other artifacts left out)."""
        return tuple(
            d
            for d in self.manifests
            if (mt.is_manifest(d.media_type) or mt.is_index(d.media_type))
            and not (d.platform and d.platform.os == "unknown")
        )

    def select(self, platform: Platform | str) -> Descriptor:
        """The entry for ``platform`` (a :class:`Platform` or its spelling, ``linux/arm64``);
        raises :class:`NotFoundError` listing what exists."""
        if isinstance(platform, str):
            platform = Platform.parse(platform)
        for desc in self.images:
            if desc.platform is not None and desc.platform.matches(platform):
                return desc
        have = ", ".join(str(d.platform) for d in self.images if d.platform) or "none"
        raise NotFoundError(
            f"the image index has no entry for platform {platform} (it has: {have}); "
            "pick one with --platform"
        )


def parse_manifest_or_index(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse bytes that may be either, judging by ``mediaType`` (body first, then the header)."""
    obj = load_json(data, "manifest")
    if not isinstance(obj, dict):
        raise ManifestError("manifest is not a JSON object")
    kind = obj.get("mediaType") or media_type
    if kind is None:
        kind = mt.OCI_INDEX if "manifests" in _load(data, "manifest") else mt.OCI_MANIFEST
    if not isinstance(kind, str):
        raise ManifestError(f"manifest field 'mediaType' must be a string, not {kind!r}")
    if mt.is_index(kind):
        return Index.from_json(data, kind)
    return Manifest.from_json(data, kind)


def describe(data: bytes, media_type: str, **extra: Any) -> Descriptor:
    """A descriptor for serialized bytes."""
    return Descriptor(media_type, Digest.of(data), len(data), **extra)
