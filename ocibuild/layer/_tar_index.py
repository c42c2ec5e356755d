"""Reading an uncompressed tar file in place: each member's name, size and data offset.

Only the headers are read; member data is seeked over, so indexing a multi-GiB docker-archive
costs one read per member. ustar, GNU (long names, base-256 numbers) and pax headers are
understood; global pax headers are skipped, as nothing read here needs their defaults.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .._errors import TransportError

__all__ = ["Member", "numeric_field", "read_members", "resolve"]

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_MAX_LINK_HOPS = 16


@dataclass(frozen=True)
class Member:
    """One tar member: where its data starts in the file and how long it is."""

    name: str
    size: int
    offset: int
    kind: bytes  # the typeflag: b"0" file, b"1" hardlink, b"2" symlink, ...
    linkname: str


def numeric_field(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the high bit is set."""
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def read_members(f: BinaryIO, where: Path) -> dict[str, Member]:
    """Index the tar ``f`` (the file at ``where``) by normalized member name."""
    end = os.fstat(f.fileno()).st_size
    members: dict[str, Member] = {}
    pos = 0
    extended: dict[str, str] = {}  # from a pax header or GNU long-name members, for the next one
    while True:
        f.seek(pos)
        header = f.read(_BLOCK)
        if not header or header == _ZERO_BLOCK:
            return members
        try:
            if len(header) < _BLOCK or not _checksum_ok(header):
                raise ValueError("bad header checksum")
            size = int(extended["size"]) if "size" in extended else numeric_field(header[124:136])
        except ValueError:
            raise TransportError(
                f"{where} is not a tar archive or is corrupt at byte {pos}"
            ) from None
        kind = header[156:157]
        data_at = pos + _BLOCK
        if data_at + size > end:
            raise TransportError(f"{where} is truncated: member at byte {pos} runs past the end")
        header_at, pos = pos, data_at + -(-size // _BLOCK) * _BLOCK
        if kind in (b"x", b"L", b"K"):
            f.seek(data_at)
            data = f.read(size)
            if kind == b"x":
                try:
                    extended.update(_pax_records(data))
                except ValueError:
                    raise TransportError(
                        f"{where} has a corrupt pax header at byte {header_at}"
                    ) from None
            else:
                extended["path" if kind == b"L" else "linkpath"] = _cstr(data)
            continue
        if kind == b"g":
            continue
        name = _cstr(header[0:100])
        if header[257:263] == b"ustar\0" and header[345]:  # POSIX ustar (not GNU): a prefix
            name = _cstr(header[345:500]) + "/" + name
        name = _normalize(extended.get("path", name))
        link = extended.get("linkpath", _cstr(header[157:257]))
        extended = {}
        members[name] = Member(name, size, data_at, kind, link)


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


def _pax_records(data: bytes) -> dict[str, str]:
    """``"<len> key=value\\n"`` records of a pax extended header."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        length = int(data[pos : data.index(b" ", pos)])
        key, _, value = data[data.index(b" ", pos) + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _checksum_ok(header: bytes) -> bool:
    stored = numeric_field(header[148:156])
    blanked = header[:148] + b" " * 8 + header[156:]
    if stored == sum(blanked):
        return True
    return stored == sum(b - 256 if b > 127 else b for b in blanked)  # old writers' signed sums
