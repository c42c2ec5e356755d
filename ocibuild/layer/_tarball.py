"""A layer read from a tar file on disk, plain or compressed, kept as is or recompressed."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Generator, Iterator
from pathlib import Path

from .._errors import TarballError
from ..oci._digest import Digest
from ..oci._layer import BlobStream, LayerDigests
from ..oci._mediatypes import layer_media_type
from ._compress import Compression, check_level, decompress_stream, detect_compression
from ._pipeline import build_blob, reporting

__all__ = ["TarballLayer"]

_READ_SIZE = 1 << 20
_BLOCK = 512


class TarballLayer:
    """A layer from a tarball; its compression is read from the bytes, never the file name.

    ``compression=None`` keeps the file's own compression and streams the file as is (the
    diff_id is computed by decompressing in the same pass); another compression, or a
    ``level``, recompresses it in one pass.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        compression: Compression | None = None,
        level: int | None = None,
        docker_media_types: bool = False,
    ) -> None:
        self.path = Path(path)
        self._source_compression = detect_compression(self._head(4))
        target = compression if compression is not None else self._source_compression
        check_level(target, level)
        self._compression: Compression = target
        self._level = level
        self._as_is = target == self._source_compression and level is None
        self._media_type = layer_media_type(target, docker=docker_media_types)
        self._digests: LayerDigests | None = None
        self._check_is_tar()

    def __repr__(self) -> str:
        return f"TarballLayer({str(self.path)!r})"

    @property
    def media_type(self) -> str:
        """The media type of the blob: the file's compression, or the one asked for."""
        return self._media_type

    @property
    def description(self) -> str:
        """The tarball's path."""
        return str(self.path)

    def known(self) -> LayerDigests | None:
        """The digests once a :meth:`compressed` stream has been read to the end, else ``None``."""
        return self._digests

    def compressed(self) -> BlobStream:
        """The blob: the file itself, or the file recompressed."""
        if self._as_is:
            return _AsIs(self)
        blob = build_blob(
            self.uncompressed(),
            compression=self._compression,
            level=self._level,
            media_type=self._media_type,
        )
        return reporting(blob, self._remember)

    def _remember(self, digests: LayerDigests) -> None:
        self._digests = digests

    def uncompressed(self) -> Generator[bytes, None, None]:
        """The tar inside the file."""
        return self._named_errors(decompress_stream(self._read(), self._source_compression))

    def _read(self, size: int = _READ_SIZE) -> Generator[bytes, None, None]:
        try:
            with open(self.path, "rb", buffering=0) as f:
                while chunk := f.read(size):
                    yield chunk
        except OSError as err:
            raise TarballError(f"cannot read layer tarball '{self.path}': {err.strerror}") from err

    def _head(self, size: int) -> bytes:
        reader = self._read(size)
        try:
            return next(reader, b"")
        finally:
            reader.close()

    def _check_is_tar(self) -> None:
        """Refuse a file whose (decompressed) first block is not a tar header."""
        head = b""
        with contextlib.closing(self.uncompressed()) as tar:
            for piece in tar:
                head += piece
                if len(head) >= _BLOCK:
                    break
        if not _is_tar_header(head[:_BLOCK]):
            kind = (
                "uncompressed" if self._source_compression == "none" else self._source_compression
            )
            raise TarballError(
                f"'{self.path}' is not a tar archive (read as {kind} data); layer tarballs "
                "must be plain, gzip or zstd tar files"
            )

    def _named_errors(self, chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
        """``chunks``, with the file named in any :class:`TarballError` they raise."""
        try:
            yield from chunks
        except TarballError as err:
            if str(self.path) in str(err):
                raise
            raise TarballError(f"layer tarball '{self.path}': {err}") from err


def _is_tar_header(block: bytes) -> bool:
    """Whether ``block`` is a tar header with a valid checksum, or the zero end-of-archive block.

    The checksum, not the ustar magic, decides: v7 archives have no magic.
    """
    if len(block) < _BLOCK:
        return False
    if block == bytes(_BLOCK):
        return True
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"x", 8)
    except ValueError:
        return False
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * ord(" ")  # the checksum field counts as spaces
    signed = unsigned - 256 * sum(1 for byte in rest if byte > 127)  # what old writers summed
    return stored in (unsigned, signed)


class _AsIs(BlobStream):
    """The file's own bytes as the blob, decompressed alongside to hash the diff_id."""

    def __init__(self, layer: TarballLayer) -> None:
        self._layer = layer
        self._blob_hasher = hashlib.sha256()
        self._diff_hasher = hashlib.sha256()
        self._size = 0
        self._taken: list[bytes] = []  # file chunks the decompressor has read, not yet handed on
        self._tar = layer._named_errors(decompress_stream(self._tap(), layer._source_compression))
        self._ended = False  # the decompressor has finished: the digests are final
        self._closed = False
        self._plain = layer._source_compression == "none"

    def _tap(self) -> Iterator[bytes]:
        for chunk in self._layer._read():
            self._taken.append(chunk)
            yield chunk

    def __next__(self) -> bytes:
        """The next chunk of the file, once the decompressor has read (and checked) it."""
        if self._closed or self.digests is not None:
            raise StopIteration
        try:
            while not self._taken and not self._ended:
                piece = next(self._tar, None)
                if piece is None:
                    self._ended = True  # decompressors read their input to the end
                else:
                    self._diff_hasher.update(piece)
        except BaseException:
            self.close()
            raise
        chunk = b"".join(self._taken)
        self._taken.clear()
        if not self._plain:  # a plain tar's digest is its diff_id: hash it once
            self._blob_hasher.update(chunk)
        self._size += len(chunk)
        if self._ended:
            self._finish()
        if not chunk:
            raise StopIteration
        return chunk

    def _finish(self) -> None:
        diff_id = Digest.from_hash(self._diff_hasher)
        digest = diff_id if self._plain else Digest.from_hash(self._blob_hasher)
        self.digests = LayerDigests(self._layer.media_type, digest, diff_id, self._size)
        self._layer._digests = self.digests

    def close(self) -> None:
        self._closed = True
        self._tar.close()
