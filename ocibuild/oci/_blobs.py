"""Blob streams with known or verified digests, shared by every transport."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .._errors import DigestMismatchError
from . import Descriptor, Digest
from ._layer import BlobStream, LayerDigests

__all__ = ["BytesStream", "VerifyingStream"]


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


class VerifyingStream(BlobStream):
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
        source: str = "",
    ) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._expected = expected
        self._diff_id = diff_id
        self._hasher = expected.digest.new_hasher()
        self._size = 0
        self._source = source

    def __next__(self) -> bytes:
        try:
            chunk = next(self._it)
        except StopIteration:
            self._finish()
            raise
        self._hasher.update(chunk)
        self._size += len(chunk)
        return chunk

    def _finish(self) -> None:
        actual = Digest(self._expected.digest.algorithm, self._hasher.hexdigest())
        where = f" from {self._source}" if self._source else ""
        if actual != self._expected.digest or self._size != self._expected.size:
            raise DigestMismatchError(
                f"blob {self._expected.digest}{where} has digest {actual} and size {self._size}, "
                f"expected size {self._expected.size}; the source is corrupt or was changed"
            )
        self.digests = LayerDigests(
            self._expected.media_type,
            self._expected.digest,
            self._diff_id or self._expected.digest,
            self._size,
        )

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
