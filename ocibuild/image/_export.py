"""An image's flattened filesystem as one tar (``ocibuild export``), whiteouts applied.

The layers are read once each, top layer first, as the union filesystem sees them: the first
layer (from the top) to hold a path wins, ``.wh.NAME`` hides ``NAME`` and everything under it
in the layers below, ``.wh..wh..opq`` hides a directory's contents below, and a path under
something an upper layer made a non-directory is gone. A member that wins is passed through
as its layer wrote it (its header, pax records included, and its data), so nothing of it is
buffered: memory holds the set of paths seen, not layer bytes. Each layer is read to its end,
so its digest and diff_id are checked as for every other read.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .._errors import TarballError
from ..layer._tar_index import BLOCK, HeaderReader, Member, TarCorrupt
from ..oci._layer import Layer

__all__ = ["Flattened", "flatten"]

_ZERO_BLOCK = bytes(BLOCK)
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass
class Flattened:
    """What the union of the layers above the current one has decided, path by path."""

    seen: dict[str, bool] = field(default_factory=dict)  # path -> is a directory
    whiteouts: set[str] = field(default_factory=set)  # paths removed for the layers below
    opaque: set[str] = field(default_factory=set)  # directories emptied for the layers below
    members: int = 0

    def hidden(self, name: str) -> bool:
        """Whether ``name`` of a lower layer is shadowed by what the layers above hold."""
        if name in self.seen or name in self.whiteouts:
            return True
        parent = name
        while parent:
            parent = posixpath.dirname(parent)
            if parent in self.whiteouts or parent in self.opaque:
                return True
            if self.seen.get(parent) is False:  # an upper layer made it a file or a link
                return True
        return False


def flatten(layers: Iterable[Layer]) -> Iterator[bytes]:
    """The flattened tar of ``layers`` (base first), ending with the end-of-archive blocks."""
    state = Flattened()
    for layer in reversed(list(layers)):
        yield from _layer(layer, state)
    yield _ZERO_BLOCK * 2


def _layer(layer: Layer, state: Flattened) -> Iterator[bytes]:
    """The members of ``layer`` the layers above leave visible; its whiteouts are recorded
    for the layers below only once the whole layer was read (they never hide its own files)."""
    reader = _Chunks(layer.uncompressed())
    headers = HeaderReader()
    described = bytearray()  # pax and long-name members that describe the next member
    whiteouts: set[str] = set()
    opaque: set[str] = set()
    claimed: dict[str, bool] = {}
    while True:
        at = reader.position
        block = reader.read(BLOCK)
        if block == _ZERO_BLOCK or not block:
            break
        member = _header(headers, block, at, layer)
        padded = -(-member.size // BLOCK) * BLOCK
        if member.special:
            data = reader.read(padded)
            _extend(headers, member, data[: member.size], layer)
            if member.kind != b"g":  # global pax records would reach other layers' members
                described += block + data
            continue
        header, name = bytes(described) + block, member.name
        described.clear()
        directory, base = posixpath.split(name)
        if base == _OPAQUE:
            opaque.add(directory)
        elif base.startswith(_WHITEOUT):
            whiteouts.add(posixpath.join(directory, base[len(_WHITEOUT) :]))
        elif name not in claimed and not state.hidden(name):
            claimed[name] = member.kind == b"5"
            state.members += 1
            yield header
            yield from reader.pieces(padded)
            continue
        reader.skip(padded)
    reader.drain()  # the rest of the stream: where the digests are checked
    state.seen.update(claimed)
    state.whiteouts |= whiteouts
    state.opaque |= opaque


def _header(headers: HeaderReader, block: bytes, at: int, layer: Layer) -> Member:
    if len(block) < BLOCK:
        raise TarballError(f"{layer.description} is truncated: it ends inside a header")
    try:
        return headers.read(block, at)
    except TarCorrupt as err:
        raise TarballError(f"{layer.description} is corrupt: {err}") from None


def _extend(headers: HeaderReader, member: Member, data: bytes, layer: Layer) -> None:
    try:
        headers.extend(member, data)
    except TarCorrupt as err:
        raise TarballError(f"{layer.description} is corrupt: {err}") from None


class _Chunks:
    """Exact-length reads from a stream of chunks, without copying what is passed on whole."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = b""
        self._at = 0
        self.position = 0

    def _more(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._chunk, self._at = chunk, 0
                return True
        return False

    def pieces(self, n: int) -> Iterator[bytes]:
        """The next ``n`` bytes, as they come; a stream that ends first is a truncated tar."""
        while n:
            if self._at >= len(self._chunk) and not self._more():
                raise TarballError("a layer tar ends inside a member's data")
            piece = self._chunk[self._at : self._at + n]
            if self._at == 0 and len(piece) == len(self._chunk):
                piece = self._chunk  # the whole chunk: no copy
            self._at += len(piece)
            self.position += len(piece)
            n -= len(piece)
            yield piece

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only at the end of the stream)."""
        parts: list[bytes] = []
        with contextlib.suppress(TarballError):  # a short read is the caller's to judge
            parts.extend(self.pieces(n))
        return b"".join(parts)

    def skip(self, n: int) -> None:
        for _ in self.pieces(n):
            pass

    def drain(self) -> None:
        for chunk in self._chunks:
            self.position += len(chunk)
