"""Checking a tar stream as it passes: valid headers, complete members, then the end.

A layer tarball cut mid-member, or cut between members, is accepted by a blob store but then
fails in ``tar -t`` and ``umoci unpack``, or silently loses files. The check reads the stream
as it flows through the layer's one pass (only headers are looked at; member data is counted
over) and raises before the stream ends, so no sink commits the blob.

The archive must end with a zero block followed by nothing but zeros: GNU tar reads exactly
that without complaint (two zero blocks, or one and a warning), and Go's archive/tar refuses
a non-zero block after a zero one.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable

from .._errors import TarballError
from ._tar_index import BLOCK, SPECIAL, HeaderReader, Member, TarCorrupt, pax_records
from ._tar_strict import StrictCheck

__all__ = ["checked_tar"]

_ZERO_BLOCK = bytes(BLOCK)


def checked_tar(
    chunks: Iterable[bytes], what: str = "the tar", *, strict: bool = False
) -> Generator[bytes, None, None]:
    """``chunks`` of a tar stream, unchanged; :class:`TarballError` where they stop being tar.

    A chunk is handed on only after its headers were checked, and the end is checked before
    the generator finishes. ``what`` names the stream in the errors. ``strict`` also refuses
    members that are valid tar but hostile in a layer (see :mod:`._tar_strict`).
    """
    walk = _Walk(what, StrictCheck() if strict else None)
    for chunk in chunks:
        walk.feed(chunk)
        yield chunk
    walk.finish()


class _Walk:
    """Where in the archive the stream is: in a header, in member data, or past the end."""

    def __init__(self, what: str, strict: StrictCheck | None) -> None:
        self.what = what
        self.strict = strict
        self.pos = 0  # bytes of the stream seen so far
        self.skip = 0  # member data and padding still to pass over
        self.gathering = bytearray()  # a header block, or a special member's data
        self.want = BLOCK  # how many bytes to gather
        self.special: Member | None = None  # the pax or long-name member being gathered
        self.current: tuple[bytes, int] | None = None  # the last header and its offset
        self.ended = False  # a zero block was seen: only zeros may follow
        self.headers = HeaderReader()

    def feed(self, chunk: bytes) -> None:
        i, n = 0, len(chunk)
        while i < n:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                self.pos += step
            elif self.ended:
                if chunk.count(0, i) != n - i:
                    rest = chunk[i:]
                    at = self.pos + len(rest) - len(rest.lstrip(b"\0"))
                    raise self._corrupt(at, "data after the end-of-archive zero block")
                self.pos += n - i
                return
            elif not self.gathering and n - i >= self.want:  # all of it in this chunk
                step = self.want
                self.pos += step
                i += step
                self._gathered(chunk[i - step : i])
            else:
                step = min(self.want - len(self.gathering), n - i)
                self.gathering += memoryview(chunk)[i : i + step]
                i += step
                self.pos += step
                if len(self.gathering) == self.want:
                    gathered = bytes(self.gathering)
                    self.gathering.clear()
                    self._gathered(gathered)

    def _gathered(self, data: bytes) -> None:
        if self.special is not None:
            self._take_special(self.special, data)
            return
        at = self.pos - BLOCK
        if data == _ZERO_BLOCK:
            self.ended = True
            return
        try:
            # Names are decoded only when the strict check needs them: the common case skips.
            member = self.headers.read_raw(data, at) if self.strict else None
            kind, size = (member.kind, member.size) if member else self.headers.skip(data, at)
        except TarCorrupt as err:
            if at == 0:
                raise TarballError(f"not a tar archive ({err.why})") from None
            raise self._corrupt(err.at, err.why) from None
        self.current = (data, at)
        if kind in SPECIAL:
            self.special = Member("", size, at + BLOCK, kind, "")
            self.want = size
            if not size:
                self._take_special(self.special, b"")
        else:
            if self.strict and member:
                self.strict.check(member, data)
            self.skip = _padded(size)

    def _take_special(self, member: Member, data: bytes) -> None:
        try:
            self.headers.extend(member, data)
            if self.strict and member.kind == b"g":
                self.strict.check_global(pax_records(data, member.offset - BLOCK))
        except TarCorrupt as err:
            raise self._corrupt(err.at, err.why) from None
        self.special = None
        self.want = BLOCK
        self.skip = _padded(member.size) - member.size

    def finish(self) -> None:
        """Raise unless the stream ended at the end of the archive."""
        if self.ended:
            return
        if self.pos == 0:
            raise TarballError("not a tar archive (it is empty)")
        if self.current is None and self.pos < BLOCK:
            raise TarballError(f"not a tar archive (it is {self.pos} bytes long)")
        if self.current is not None and (self.skip or self.special is not None):
            block, at = self.current
            name = "" if self.special is not None else HeaderReader().read(block, at).name
            raise TarballError(
                f"{self.what} is truncated: it ends at byte {self.pos}, inside the data of the "
                f"member{f' {name!r}' if name else ''} whose header is at byte {at}"
            )
        where = "inside a header block" if self.gathering else "without the end-of-archive block"
        raise TarballError(f"{self.what} is truncated: it ends at byte {self.pos} {where}")

    def _corrupt(self, at: int, why: str) -> TarballError:
        return TarballError(f"{self.what} is corrupt: {why} at byte {at}")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK
