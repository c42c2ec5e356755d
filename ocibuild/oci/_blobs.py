"""Blob streams with known or verified digests, shared by every transport.

Every byte read from outside is checked before anything depends on it: whole blobs with
:meth:`Descriptor.verify`, streams with :class:`VerifyingStream` (a blob against its descriptor)
or :class:`TarStream` (a layer's tar against its diff_id). All raise the same
:class:`DigestMismatchError`, naming the blob and where it came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from . import Descriptor, Digest
from ._digest import content_mismatch
from ._layer import BlobStream, Layer, LayerDigests
from ._mediatypes import OCI_LAYER

__all__ = ["BytesStream", "TarStream", "VerifyingStream", "tar_blob"]


class BytesStream(BlobStream):
    """A small blob held in memory (a config, a manifest): its digest is known up front."""

    def __init__(self, data: bytes, media_type: str) -> None:
        self._data: bytes | None = data
        digest = Digest.of(data)
        self.digests = LayerDigests(media_type, digest, digest, len(data))

    def __next__(self) -> bytes:
        if self._data is None:
            raise StopIteration
        data, self._data = self._data, None
        return data

    @property
    def descriptor(self) -> Descriptor:
        """The descriptor of the bytes."""
        d = self.result
        return Descriptor(d.media_type, d.digest, d.size)


class _Hashing(BlobStream):
    """Passes chunks through, hashing and counting them; :meth:`_finish` judges them at the end."""

    def __init__(self, chunks: Iterable[bytes], hasher: hashlib._Hash) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._hasher = hasher
        self._size = 0

    def __next__(self) -> bytes:
        try:
            chunk = next(self._it)
        except StopIteration:
            self._finish(self._hasher.hexdigest(), self._size)
            raise
        self._hasher.update(chunk)
        self._size += len(chunk)
        return chunk

    def _finish(self, hexdigest: str, size: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


class VerifyingStream(_Hashing):
    """Passes chunks through and, at the end, checks their digest and size against ``expected``.

    A mismatch raises :class:`DigestMismatchError` from the final ``next()`` call, so a sink
    that commits only after the stream is exhausted never commits bad content.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        expected: Descriptor,
        *,
        diff_id: Digest | None = None,
        source: str = "a stream",
    ) -> None:
        super().__init__(chunks, expected.digest.new_hasher())
        self._expected = expected
        self._diff_id = diff_id
        self._source = source

    def _finish(self, hexdigest: str, size: int) -> None:
        expected = self._expected
        expected.check(Digest(expected.digest.algorithm, hexdigest), size, self._source)
        self.digests = LayerDigests(
            expected.media_type, expected.digest, self._diff_id or expected.digest, size
        )


class TarStream(_Hashing):
    """A layer's uncompressed tar as a blob, hashed as it passes: its digest is the diff_id.

    With ``diff_id`` given (what a base layer's config claims), a tar that hashes otherwise
    raises :class:`DigestMismatchError` from the final ``next()`` call.
    """

    def __init__(
        self, tar: Iterable[bytes], *, diff_id: Digest | None = None, source: str = "a stream"
    ) -> None:
        super().__init__(tar, diff_id.new_hasher() if diff_id is not None else hashlib.sha256())
        self._diff_id = diff_id
        self._source = source

    def _finish(self, hexdigest: str, size: int) -> None:
        actual = Digest(self._diff_id.algorithm if self._diff_id else "sha256", hexdigest)
        if self._diff_id is not None and actual != self._diff_id:
            raise content_mismatch(self._diff_id, self._source, actual, size, what="layer tar")
        self.digests = LayerDigests(OCI_LAYER, actual, actual, size)


def tar_blob(layer: Layer) -> BlobStream:
    """``layer``'s uncompressed tar as a blob whose digests, once exhausted, give the diff_id.

    A layer whose :meth:`~Layer.uncompressed` stream is already a :class:`BlobStream` (a base
    layer checks its tar against its config's diff_id) is used as it is; any other tar is
    hashed once as it passes. Nothing is compressed.
    """
    tar = layer.uncompressed()
    if isinstance(tar, BlobStream):
        return tar
    return TarStream(tar, source=layer.description)
