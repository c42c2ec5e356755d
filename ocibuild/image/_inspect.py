"""What ``ocibuild inspect`` shows: the manifest (or index) and the config of an image."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import InvalidPlatformError
from ..oci import Digest, ImageConfig, Index, Manifest, Platform
from ..oci._manifest import parse_manifest_or_index
from ..transports import Location, open_source
from ._platforms import wanted_platforms

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = ["InspectReport", "human_bytes", "inspect"]


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


@dataclass(frozen=True)
class InspectReport:
    """A manifest or index, and for a single image its config."""

    name: str
    digest: Digest
    media_type: str
    manifest_bytes: bytes
    manifest: Manifest | Index
    config: ImageConfig | None
    index_digest: Digest | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON objects."""
        out: dict[str, Any] = {
            "name": self.name,
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "manifest": json.loads(self.manifest_bytes),
        }
        if self.index_digest is not None:
            out["indexDigest"] = str(self.index_digest)
        if self.config is not None:
            out["config"] = dict(self.config.raw)
        return out

    def human(self) -> str:
        """A short readable summary."""
        lines = [f"{self.name}", f"  digest:     {self.digest}", f"  media type: {self.media_type}"]
        if self.index_digest is not None:
            lines.append(f"  from index: {self.index_digest}")
        if isinstance(self.manifest, Index):
            lines.append(f"  platforms ({len(self.manifest.manifests)}):")
            for d in self.manifest.manifests:
                lines.append(f"    {d.platform or '?'}  {d.digest}  {human_bytes(d.size)}")
            return "\n".join(lines)
        total = sum(d.size for d in self.manifest.layers)
        lines.append(f"  layers ({len(self.manifest.layers)}, {human_bytes(total)}):")
        for d in self.manifest.layers:
            lines.append(f"    {d.digest}  {human_bytes(d.size):>10}  {d.media_type}")
        if self.config is not None:
            cfg = self.config
            lines.append(f"  platform:   {cfg.platform}")
            lines.append(f"  created:    {cfg.raw.get('created', '')}")
            container = cfg.container
            for key in ("Entrypoint", "Cmd", "WorkingDir", "User"):
                if container.get(key):
                    lines.append(f"  {key + ':':<11} {json.dumps(container[key])}")
            for item in container.get("Env") or ():
                lines.append(f"  env:        {item}")
            for k, v in (container.get("Labels") or {}).items():
                lines.append(f"  label:      {k}={v}")
        for k, v in self.manifest.annotations.items():
            lines.append(f"  annotation: {k}={v}")
        return "\n".join(lines)


def inspect(
    spec: str,
    *,
    platform: Platform | str | None = None,
    registry_options: RegistryOptions | None = None,
) -> InspectReport:
    """Read the manifest (and config) that ``spec`` names; an index is shown as such unless
    ``platform`` (a :class:`Platform` or its spelling, ``linux/arm64``) picks an entry."""
    wanted = wanted_platforms(platform)
    if isinstance(wanted, str) or (wanted is not None and len(wanted) != 1):
        raise InvalidPlatformError(
            f"inspect shows one image or the whole index: give one platform, not {platform!r}"
        )
    location = Location.parse(spec)
    source = open_source(location, registry_options)
    try:
        data, media_type = source.get_manifest()
        parsed = parse_manifest_or_index(data, media_type)
        index_digest = None
        if isinstance(parsed, Index) and wanted is not None:
            index_digest = Digest.of(data)
            desc = parsed.select(wanted[0])
            data = source.get_child_manifest(desc)
            media_type = desc.media_type
            parsed = Manifest.from_json(data, media_type)
        config = None
        if isinstance(parsed, Manifest):
            config = ImageConfig.from_json(source.get_blob(parsed.config))
        return InspectReport(
            name=str(location),
            digest=Digest.of(data),
            media_type=parsed.media_type,
            manifest_bytes=data,
            manifest=parsed,
            config=config,
            index_digest=index_digest,
        )
    finally:
        source.close()
