"""How a file tree becomes a layer blob: the options the layer and its cache key share."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._errors import InvalidOptionError
from ..oci._epoch import source_date_epoch
from ..oci._mediatypes import layer_media_type
from ._compress import Compression, check_level
from ._tar import TarOptions

__all__ = ["LayerOptions"]


@dataclass(frozen=True)
class LayerOptions:
    """How a file tree becomes a layer blob."""

    compression: Compression = "gzip"
    level: int | None = None  # None: the codec's default (see ``_compress``)
    mtime: int | None = field(default_factory=source_date_epoch)  # None keeps real mtimes
    keep_owner: bool = False  # False: every entry is owned by 0:0
    excludes: tuple[str, ...] = ()  # .dockerignore-style patterns
    ignore_file: str | None = None
    docker_media_types: bool = False  # Docker schema 2 layer type (gzip and none only)

    def __post_init__(self) -> None:
        object.__setattr__(self, "excludes", tuple(self.excludes))
        check_level(self.compression, self.level)
        # Refuse zstd with Docker media types now rather than mid-build.
        layer_media_type(self.compression, docker=self.docker_media_types)
        if self.mtime is not None and self.mtime < 0:
            raise InvalidOptionError(
                f"mtime {self.mtime} is negative; give seconds since the epoch"
            )

    @property
    def media_type(self) -> str:
        """The layer media type these options produce."""
        return layer_media_type(self.compression, docker=self.docker_media_types)

    @property
    def tar_options(self) -> TarOptions:
        """The tar writer's share of these options."""
        return TarOptions(mtime=self.mtime, keep_owner=self.keep_owner)
