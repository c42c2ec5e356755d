"""A layer read from a tar file on disk, plain or compressed, kept as is or recompressed."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Generator, Iterator
from pathlib import Path

from .._errors import TarballError
from ..oci._config import json_text
from ..oci._digest import Digest
from ..oci._layer import BlobStream, LayerDigests
from ..oci._mediatypes import layer_media_type
from ._compress import Compression, check_level, decompress_stream, detect_compression
from ._pipeline import build_blob, reporting
from ._spool import TarballInput
from ._tar_check import checked_tar
from ._tar_index import BLOCK, HeaderReader, TarCorrupt

__all__ = ["TarballLayer"]


class TarballLayer:
    """A layer from a tarball; its compression is read from the bytes, never the file name.

    ``compression=None`` keeps the file's own compression and streams the file as is (the
    diff_id is computed by decompressing in the same pass); another compression, or a
    ``level``, recompresses it in one pass. Whatever the compression, the tar inside must be
    whole: one that is cut short or corrupt fails the stream before a sink commits it.

    ``strict`` refuses members that are valid tar but hostile in a layer: paths or links out
    of the root, devices, FIFOs, setuid files, in the same pass.

    A regular file is checked when the layer is made. A pipe or FIFO is opened and read
    when the layer is first streamed or its media type first asked for (a FIFO waits there
    for its writer), and read only once: what it gave is kept, so the layer can be streamed
    again (an upload the registry lost) without reading the pipe twice.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        compression: Compression | None = None,
        level: int | None = None,
        docker_media_types: bool = False,
        strict: bool = False,
    ) -> None:
        self.path = Path(path)
        self.strict = strict
        self._label = json_text(str(self.path))
        self._input = TarballInput(self.path, self._label)
        if compression is not None:
            check_level(compression, level)
            layer_media_type(compression, docker=docker_media_types)  # zstd has no Docker type
        self._asked = compression
        self._level = level
        self._docker = docker_media_types
        self._source: Compression | None = None
        self._digests: LayerDigests | None = None
        if self._input.regular:
            _ = self.media_type  # reads the head: a wrong file fails now, before a base is pulled

    def __repr__(self) -> str:
        return f"TarballLayer({str(self.path)!r})"

    @property
    def media_type(self) -> str:
        """The media type of the blob: the file's compression, or the one asked for."""
        return layer_media_type(self._target(), docker=self._docker)

    @property
    def description(self) -> str:
        """The tarball's path (undecodable bytes written as ``\\xNN``)."""
        return self._label

    def known(self) -> LayerDigests | None:
        """The digests once a :meth:`compressed` stream has been read to the end, else ``None``."""
        return self._digests

    def compressed(self) -> BlobStream:
        """The blob: the file itself, or the file recompressed."""
        if self._target() == self.source_compression and self._level is None:
            return _AsIs(self)
        blob = build_blob(
            self.uncompressed(),
            compression=self._target(),
            level=self._level,
            media_type=self.media_type,
        )
        return reporting(blob, self._remember)

    def _remember(self, digests: LayerDigests) -> None:
        self._digests = digests

    def uncompressed(self) -> Generator[bytes, None, None]:
        """The tar inside the file, checked to be whole as it passes."""
        return self.tar_of(self._input.chunks())

    def tar_of(self, file_chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
        """The checked tar inside ``file_chunks`` (the file's bytes), errors naming the file."""
        source = self.source_compression
        what = "the tar" if source == "none" else f"the tar inside the {source} data"
        tar = checked_tar(decompress_stream(file_chunks, source), what, strict=self.strict)
        return self._named_errors(tar)

    def read_file(self) -> Generator[bytes, None, None]:
        """The file's own bytes."""
        return self._input.chunks()

    def _target(self) -> Compression:
        return self._asked if self._asked is not None else self.source_compression

    @property
    def source_compression(self) -> Compression:
        """The file's compression, sniffed once; the first block must then be a tar header."""
        if self._source is None:
            source = detect_compression(self._input.head(4))
            check_level(self._asked or source, self._level)
            self._check_is_tar(source)
            self._source = source
        return self._source

    def _check_is_tar(self, source: Compression) -> None:
        """Refuse a file whose (decompressed) first block is not a tar header."""
        head = b""
        with contextlib.closing(
            self._named_errors(decompress_stream(self._input.chunks(BLOCK), source))
        ) as tar:
            for piece in tar:
                head += piece
                if len(head) >= BLOCK:
                    break
        if not _is_tar_header(head[:BLOCK]):
            kind = "uncompressed" if source == "none" else source
            raise TarballError(
                f"'{self._label}' is not a tar archive (read as {kind} data); layer tarballs "
                "must be plain, gzip or zstd tar files"
            )

    def _named_errors(self, chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
        """``chunks``, with the file named in any :class:`TarballError` they raise."""
        try:
            yield from chunks
        except TarballError as err:
            if self._label in str(err):
                raise
            raise TarballError(f"layer tarball '{self._label}': {err}") from err


def _is_tar_header(block: bytes) -> bool:
    """Whether ``block`` is a valid tar header, or the zero block of an empty archive."""
    if len(block) < BLOCK:
        return False
    if block == bytes(BLOCK):
        return True
    try:
        HeaderReader().read(block, 0)
    except TarCorrupt:
        return False
    return True


class _AsIs(BlobStream):
    """The file's own bytes as the blob, decompressed alongside to hash the diff_id."""

    def __init__(self, layer: TarballLayer) -> None:
        self._layer = layer
        self._blob_hasher = hashlib.sha256()
        self._diff_hasher = hashlib.sha256()
        self._size = 0
        self._taken: list[bytes] = []  # file chunks the decompressor has read, not yet handed on
        self._tar = layer.tar_of(self._tap())
        self._ended = False  # the tar has been read and checked to its end: digests are final
        self._closed = False
        self._plain = layer.source_compression == "none"

    def _tap(self) -> Iterator[bytes]:
        for chunk in self._layer.read_file():
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
