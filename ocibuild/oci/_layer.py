"""What every layer is: a protocol of six questions and a stream of bytes.

A layer is a tar changeset. ``digest``, ``size`` and ``media_type`` describe its compressed
blob (what manifests list and registries store); ``diff_id`` is the sha256 of the uncompressed
tar (what the image config lists). Layers built from local files only learn their digests by
streaming, so :meth:`Layer.known` may answer ``None`` until :meth:`Layer.compressed` has been
read to the end (or until the layer cache remembers them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._digest import Digest

__all__ = ["BlobStream", "Layer", "LayerDigests", "SizedSource"]


@dataclass(frozen=True)
class LayerDigests:
    """The identity of a finished layer blob."""

    media_type: str
    digest: Digest
    diff_id: Digest
    size: int


class BlobStream(Iterator[bytes]):
    """An iterator of compressed chunks whose :attr:`digests` are set once it is exhausted.

    Chunks are ``bytes`` of roughly one MiB or more (the last may be shorter). Closing the
    stream early stops any worker thread behind it.
    """

    digests: LayerDigests | None = None

    def __iter__(self) -> BlobStream:
        return self

    def __next__(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Stop producing; safe to call more than once."""

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def consumed(self) -> int | None:
        """Bytes of the source taken so far (the uncompressed tar of a layer being built), for
        progress; ``None`` when the stream does not count them."""
        return None

    @property
    def result(self) -> LayerDigests:
        """The digests; raises ``RuntimeError`` if the stream was not read to the end."""
        if self.digests is None:
            raise RuntimeError("the layer stream has not been read to the end")
        return self.digests


@runtime_checkable
class Layer(Protocol):
    """A layer of an image, wherever its bytes come from."""

    @property
    def media_type(self) -> str:
        """The media type of the compressed blob."""
        ...

    def known(self) -> LayerDigests | None:
        """The digests if they are known without reading the content, else ``None``."""
        ...

    def compressed(self) -> BlobStream:
        """A fresh stream of the compressed blob; its digests are final once it is exhausted."""
        ...

    def uncompressed(self) -> Iterator[bytes]:
        """A fresh stream of the uncompressed tar.

        A layer that knows its diff_id up front returns a :class:`BlobStream` that checks the
        tar against it, with digests (``digest`` = ``diff_id``) final once exhausted.
        """
        ...

    @property
    def description(self) -> str:
        """A short label (a path, a tarball, a base layer digest) for progress and errors."""
        ...


@runtime_checkable
class SizedSource(Protocol):
    """A layer that knows, before it is built, about how big its uncompressed tar will be."""

    def expected_tar_size(self) -> int:
        """The tar's size from a stat walk (exact but for PAX records of long names)."""
        ...
