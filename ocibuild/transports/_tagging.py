"""A sink that gives the tagged manifest more tags: the blobs go once, each tag is a PUT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ..oci import Descriptor, Platform
from ..oci._layer import BlobStream, Layer
from ._base import BlobOutcome, ImageSink

__all__ = ["TaggingSink", "with_extra_tags"]

_Tag = TypeVar("_Tag")


def with_extra_tags(
    sink: ImageSink, tag: _Tag | None, extra_tags: Sequence[str]
) -> tuple[ImageSink, _Tag | str | None]:
    """``sink`` and the top-level tag, given ``extra_tags``: a :class:`TaggingSink` that puts
    the manifest under each of them too, and the first of them as the tag when ``tag`` is
    ``None`` (the destination named none)."""
    if not extra_tags:
        return sink, tag
    return TaggingSink(sink, extra_tags), tag if tag is not None else extra_tags[0]


class TaggingSink:
    """Wraps ``inner``: a manifest put under a tag is put again under each of ``tags``.

    Only the top-level manifest of a write carries a tag (an index's children go by digest),
    so every tag names the same image, and none is written before all blobs are in place.
    """

    def __init__(self, inner: ImageSink, tags: Sequence[str]) -> None:
        self.inner = inner
        self.tags = tuple(dict.fromkeys(tags))

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def concurrency(self) -> int:
        return self.inner.concurrency

    @property
    def stores_uncompressed(self) -> bool:
        return self.inner.stores_uncompressed

    def has_blob(self, descriptor: Descriptor) -> bool:
        return self.inner.has_blob(descriptor)

    def try_mount(self, layer: Layer, descriptor: Descriptor) -> bool:
        return self.inner.try_mount(layer, descriptor)

    def put_blob(self, stream: BlobStream, descriptor: Descriptor | None) -> BlobOutcome:
        return self.inner.put_blob(stream, descriptor)

    def put_manifest(
        self, data: bytes, media_type: str, *, tag: str | None, platform: Platform | None = None
    ) -> Descriptor:
        desc = self.inner.put_manifest(data, media_type, tag=tag, platform=platform)
        if tag is not None:
            for extra in self.tags:
                if extra != tag:
                    self.inner.put_manifest(data, media_type, tag=extra, platform=platform)
        return desc

    def commit(self) -> None:
        self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()
