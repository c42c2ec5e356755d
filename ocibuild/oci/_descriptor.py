"""Descriptors and platforms: how one piece of content points at another."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._errors import InvalidPlatformError, ManifestError
from ._digest import Digest, content_mismatch

__all__ = ["Descriptor", "Platform", "freeze_map"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def freeze_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy of a str->str mapping (empty when ``None``)."""
    if not value:
        return _EMPTY
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Platform:
    """Where an image runs: ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` such as ``linux/arm64/v8``."""
        parts = text.strip().split("/")
        # a comma list is several platforms (see ocibuild.load), never one with a comma in it
        if len(parts) not in (2, 3) or not all(parts) or "," in text:
            raise InvalidPlatformError(
                f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Platform:
        """Read the ``platform`` object of an index entry."""
        try:
            return cls(
                os=str(data["os"]),
                architecture=str(data["architecture"]),
                variant=data.get("variant"),
                os_version=data.get("os.version"),
                os_features=tuple(data.get("os.features") or ()),
            )
        except (KeyError, TypeError) as err:
            raise ManifestError(f"invalid platform object {dict(data)!r}") from err

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out

    def matches(self, wanted: Platform) -> bool:
        """Whether this platform satisfies ``wanted`` (variants compared only when asked for)."""
        if (self.os, self.architecture) != (wanted.os, wanted.architecture):
            return False
        if wanted.variant and self.variant != wanted.variant:
            # arm64 images commonly omit the implied v8 variant.
            return wanted.architecture == "arm64" and wanted.variant == "v8" and not self.variant
        return True

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """A typed pointer to content: media type, digest and size, plus optional metadata."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ManifestError(f"descriptor {self.digest} has a negative size")
        object.__setattr__(self, "annotations", freeze_map(self.annotations))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Descriptor:
        """Read a descriptor JSON object."""
        try:
            platform = data.get("platform")
            raw = data.get("data")
            return cls(
                media_type=str(data["mediaType"]),
                digest=Digest.parse(str(data["digest"])),
                size=int(data["size"]),
                annotations=dict(data.get("annotations") or {}),
                platform=Platform.from_dict(platform) if platform else None,
                urls=tuple(data.get("urls") or ()),
                artifact_type=data.get("artifactType"),
                data=base64.b64decode(raw) if raw else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, ManifestError):
                raise
            raise ManifestError(f"invalid descriptor: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form, in the field order the spec's examples use."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.data is not None:
            out["data"] = base64.b64encode(self.data).decode("ascii")
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    def verify(self, data: bytes, where: str) -> bytes:
        """``data``, checked to be this descriptor's content (digest and size).

        ``where`` names the source in the :class:`DigestMismatchError` a mismatch raises.
        """
        self.check(Digest.of(data, self.digest.algorithm), len(data), where)
        return data

    def check(self, digest: Digest, size: int, where: str) -> None:
        """Raise :class:`DigestMismatchError` unless content that hashed to ``digest`` in
        ``size`` bytes is this descriptor's (what a stream reports at its end)."""
        if digest != self.digest or size != self.size:
            raise content_mismatch(self.digest, where, digest, size, self.size)

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        """A copy with ``annotations`` merged over the existing ones."""
        merged = {**self.annotations, **annotations}
        return _replace(self, annotations=merged)

    def with_platform(self, platform: Platform | None) -> Descriptor:
        """A copy pointing at the same content with another platform."""
        return _replace(self, platform=platform)


def _replace(desc: Descriptor, **changes: Any) -> Descriptor:
    from dataclasses import replace

    return replace(desc, **changes)
