"""Reading tar headers: the one parser behind the docker-archive index and the tarball check.

ustar, GNU (long names, base-256 numbers) and pax headers are understood. Nothing is trusted
before it is checked, so a hostile archive fails in time linear in its size: every header's
checksum, numbers that are plain octal (or GNU base-256) and never negative, pax records whose
lengths are positive and add up, and pax or long-name members of at most 1 MiB (Go's
archive/tar has the same bound). A member whose type has no data (links, directories, devices,
FIFOs) has none whatever its size field says, as Go's archive/tar and Python's tarfile read it.

:func:`read_members` indexes an uncompressed tar file in place: member data is seeked over, so
indexing a multi-GiB docker-archive costs one read per member.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .._errors import TransportError

__all__ = [
    "BLOCK",
    "SPECIAL",
    "HeaderReader",
    "Member",
    "TarCorrupt",
    "numeric_field",
    "pax_records",
    "read_members",
    "resolve",
]

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_MAX_LINK_HOPS = 16
_MAXSPECIAL = 1 << 20  # pax and GNU long-name data are read into memory: bound them
SPECIAL = frozenset({b"x", b"g", b"L", b"K"})  # members that describe others, not files
_HEADER_ONLY = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})
_OCTAL = re.compile(rb"[0-7]+")
_DECIMAL = re.compile(r"[0-9]{1,20}")
_RECORD_LENGTH = re.compile(rb"[1-9][0-9]{0,19} ")


class TarCorrupt(ValueError):
    """A header or record that is not valid tar, ``at`` a byte offset of the archive."""

    def __init__(self, at: int, why: str) -> None:
        super().__init__(f"{why} at byte {at}")
        self.at = at
        self.why = why


@dataclass(frozen=True)
class Member:
    """One tar member: where its data starts in the file and how long it is."""

    name: str
    size: int
    offset: int
    kind: bytes  # the typeflag: b"0" file, b"1" hardlink, b"2" symlink, ...
    linkname: str

    @property
    def special(self) -> bool:
        """Whether this is a pax or GNU long-name member, which describes the next one."""
        return self.kind in SPECIAL


def numeric_field(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the high bit is set.

    Raises ValueError for anything else, negative base-256 numbers included.
    """
    if field[0] & 0x80:
        if field[0] & 0x40:
            raise ValueError("negative base-256 number")
        return int.from_bytes(bytes([field[0] & 0x3F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not _OCTAL.fullmatch(text):
        raise ValueError(f"{text!r} is not an octal number")
    return int(text, 8)


class HeaderReader:
    """Members from header blocks in archive order, pax and GNU long-name records applied."""

    def __init__(self) -> None:
        self._extended: dict[str, str] = {}  # for the next member

    def read(self, block: bytes, at: int) -> Member:
        """The member whose 512-byte header ``block`` starts at byte ``at``."""
        member = self.read_raw(block, at)
        return Member(
            _normalize(member.name), member.size, member.offset, member.kind, member.linkname
        )

    def read_raw(self, block: bytes, at: int) -> Member:
        """:meth:`read`, with the name as the archive spells it (``..`` and a leading '/' kept)."""
        kind, size, extended = self._fields(block, at)
        if kind in SPECIAL:
            return Member("", size, at + BLOCK, kind, "")
        name = _cstr(block[0:100])
        if block[257:263] == b"ustar\0" and block[345]:  # POSIX ustar (not GNU): a prefix
            name = _cstr(block[345:500]) + "/" + name
        name = extended.get("path", name)
        link = extended.get("linkpath", _cstr(block[157:257]))
        return Member(name, size, at + BLOCK, kind, link)

    def skip(self, block: bytes, at: int) -> tuple[bytes, int]:
        """The typeflag and data size of the member at ``at``: :meth:`read` without names."""
        kind, size, _ = self._fields(block, at)
        return kind, size

    def _fields(self, block: bytes, at: int) -> tuple[bytes, int, dict[str, str]]:
        """Check the header; its typeflag, data size and the pax records that apply to it."""
        try:
            checksum_ok = _checksum_ok(block)
            size = numeric_field(block[124:136])
        except ValueError as err:
            raise TarCorrupt(at, f"a bad header field ({err})") from None
        if not checksum_ok:
            raise TarCorrupt(at, "a bad header checksum")
        kind = block[156:157]
        if kind in SPECIAL:
            if size > _MAXSPECIAL:
                raise TarCorrupt(at, f"a {size}-byte pax or long-name header (at most 1 MiB)")
            return kind, size, {}
        extended = self._extended
        if extended:
            self._extended = {}
            if "size" in extended:
                if not _DECIMAL.fullmatch(extended["size"]):
                    raise TarCorrupt(at, f"a pax size {extended['size']!r} that is not a number")
                size = int(extended["size"])
        if kind in _HEADER_ONLY:
            size = 0
        return kind, size, extended

    def extend(self, member: Member, data: bytes) -> None:
        """Take the data of a special ``member``: it describes the member after it."""
        header_at = member.offset - BLOCK
        if member.kind == b"x":
            self._extended.update(pax_records(data, header_at))
        elif member.kind == b"g":
            pax_records(data, header_at)  # checked, then unused: nothing here needs defaults
        else:
            self._extended["path" if member.kind == b"L" else "linkpath"] = _cstr(data)


def pax_records(data: bytes, at: int) -> dict[str, str]:
    """The ``"<length> key=value\\n"`` records of the pax header at byte ``at``.

    Each length counts its whole record and must land on its newline, so every record moves
    forward; trailing NUL padding (some writers add it) is allowed.
    """
    records: dict[str, str] = {}
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0:
            if data.count(0, pos) != end - pos:
                raise TarCorrupt(at, "a pax header with data after its NUL padding")
            break
        match = _RECORD_LENGTH.match(data, pos)
        if match is None:
            raise TarCorrupt(at, "a pax record without a valid length")
        stop = pos + int(match.group()[:-1])
        if stop <= match.end() or stop > end or data[stop - 1] != 0x0A:
            raise TarCorrupt(at, "a pax record whose length does not match its text")
        key, equals, value = data[match.end() : stop - 1].partition(b"=")
        if not equals or not key:
            raise TarCorrupt(at, "a pax record that is not key=value")
        try:
            records[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        except UnicodeDecodeError:
            raise TarCorrupt(at, "a pax record key that is not UTF-8") from None
        pos = stop
    return records


def read_members(f: BinaryIO, where: Path) -> dict[str, Member]:
    """Index the tar ``f`` (the file at ``where``) by normalized member name.

    Like Go's archive/tar (which skopeo and Docker use), the end of the file at a header
    boundary ends the archive as well as a zero block does.
    """
    end = os.fstat(f.fileno()).st_size
    members: dict[str, Member] = {}
    headers = HeaderReader()
    pos = 0
    while True:
        f.seek(pos)
        block = f.read(BLOCK)
        if not block or block == _ZERO_BLOCK:
            return members
        if len(block) < BLOCK:
            raise TransportError(f"{where} is truncated: it ends inside the header at byte {pos}")
        try:
            member = headers.read(block, pos)
        except TarCorrupt as err:
            what = "is not a tar archive or is corrupt" if pos == 0 else "is corrupt"
            raise TransportError(f"{where} {what} at byte {err.at}: {err.why}") from None
        if member.offset + member.size > end:
            raise TransportError(f"{where} is truncated: member at byte {pos} runs past the end")
        pos = member.offset + -(-member.size // BLOCK) * BLOCK
        if member.special:
            f.seek(member.offset)
            try:
                headers.extend(member, f.read(member.size))
            except TarCorrupt as err:
                raise TransportError(
                    f"{where} has a corrupt pax header at byte {err.at}: {err.why}"
                ) from None
        else:
            members[member.name] = member


def resolve(members: dict[str, Member], name: str, where: str) -> Member | None:
    """The regular file ``name`` stands for, following links; None if it or a target is missing.

    ``where`` names the archive in the errors for a link loop or a member that is no file.
    """
    wanted = name
    for _ in range(_MAX_LINK_HOPS):
        member = members.get(_normalize(name))
        if member is None:
            return None
        if member.kind in (b"0", b"\0", b"7"):
            return member
        if member.kind == b"2":
            name = posixpath.join(posixpath.dirname(member.name), member.linkname)
        elif member.kind == b"1":
            name = member.linkname
        else:
            raise TransportError(f"{wanted} in {where} is not a regular file")
    raise TransportError(f"{wanted} in {where} is a link loop")


def _cstr(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _normalize(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def _checksum_ok(header: bytes) -> bool:
    stored = numeric_field(header[148:156])
    unsigned = sum(header) - sum(header[148:156]) + 8 * 0x20  # the field counts as spaces
    if stored == unsigned:
        return True
    # Old writers summed signed bytes.
    blanked = header[:148] + header[156:]
    return stored == unsigned - 256 * sum(1 for b in blanked if b > 127)
