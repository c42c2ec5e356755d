"""The tar writer: walked entries to a reproducible ustar/PAX byte stream, written by hand.

Why not ``tarfile``: it builds a TarInfo object per member and a header through several layers
of helpers, which made it 3-4 times slower on trees of small files; this is the hot path.

Format notes:

- ustar headers (magic ``ustar\\0``, version ``00``), no user or group names, device numbers 0.
- A PAX extended header (typeflag ``x``) comes first when ustar cannot hold a value: a path that
  does not split into prefix (155) + name (100) or is not ASCII, a link target over 100 bytes or
  not ASCII, a size of 8 GiB or more, a uid/gid over 0o7777777, or a negative, fractional or too
  large mtime when real times are kept. Its own name is ``PaxHeaders/<basename>`` and its mtime 0,
  so the output depends only on the entries. Names that are not UTF-8 go into it as their raw
  bytes, as GNU tar writes them (a ``hdrcharset=BINARY`` record would be correct pax, but GNU
  tar 1.34 warns on every member that carries one), and GNU tar, Go and umoci read them back.
- The archive ends with two zero blocks and is NOT padded to tar's customary 10240-byte record:
  layers are hashed and compressed, and every reader accepts a 512-byte multiple.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

from .._errors import SourceError
from ._tree import Entry

__all__ = ["TarOptions", "encode_header", "file_header", "tar_stream"]

_BLOCK = 512
_ZEROS = bytes(_BLOCK)
_END = bytes(2 * _BLOCK)
# name mode uid gid size mtime chksum typeflag linkname magic+version uname gname devmajor
# devminor prefix (and 12 bytes of padding)
_USTAR = struct.Struct("100s8s8s8s12s12s8s1s100s8s32s32s8s8s155s12x")
_MAGIC = b"ustar\x0000"
_DEVICE = b"0000000\x00"
_CHKSUM_BLANK = b" " * 8
_MAX_OCTAL_11 = 0o77777777777  # size and mtime fields: 11 octal digits
_MAX_OCTAL_7 = 0o7777777  # uid and gid fields: 7 octal digits
_TYPEFLAGS = {"file": b"0", "hardlink": b"1", "symlink": b"2", "dir": b"5"}
_ASCII_ONLY = bytes(range(128)) + b"_" * 128  # translate table for fallback names


@dataclass(frozen=True)
class TarOptions:
    """How entries become tar headers."""

    mtime: int | None = 0  # the mtime of every entry; None keeps each entry's own
    keep_owner: bool = False  # False: uid/gid 0; True: the entries' uid/gid
    chunk_size: int = 1 << 20  # the size yielded chunks aim for

    def __post_init__(self) -> None:
        if self.chunk_size < _BLOCK:
            raise ValueError(f"chunk_size must be at least {_BLOCK} bytes, got {self.chunk_size}")


def tar_stream(
    entries: Iterable[Entry], options: TarOptions = TarOptions()
) -> Generator[bytes, None, None]:
    """Yield the tar archive of ``entries`` (in the given order) as chunks of about chunk_size.

    Files are read when their turn comes; one whose size differs from what the walk saw raises
    :class:`SourceError` instead of producing a corrupt archive. Empty files are not opened.
    Closing the generator early closes the file being read.
    """
    chunk_size = options.chunk_size
    parts: list[bytes] = []
    pending = 0
    for entry in entries:
        header = encode_header(entry, options)
        parts.append(header)
        pending += len(header)
        size = entry.size
        if entry.kind == "file" and size:
            if size < chunk_size:
                parts.append(_read_whole(entry))
                pending += size
            else:
                yield b"".join(parts)
                parts, pending = [], 0
                yield from _read_blocks(entry, chunk_size)
            padding = -size % _BLOCK
            if padding:
                parts.append(_ZEROS[:padding])
                pending += padding
        if pending >= chunk_size:
            yield b"".join(parts)
            parts, pending = [], 0
    parts.append(_END)
    yield b"".join(parts)


def encode_header(entry: Entry, options: TarOptions = TarOptions()) -> bytes:
    """The header block(s) of one entry: a PAX extended header first if ustar cannot hold it."""
    try:
        typeflag = _TYPEFLAGS[entry.kind]
    except KeyError:
        raise ValueError(f"unknown entry kind {entry.kind!r} for '{entry.path}'") from None
    pax: list[tuple[bytes, bytes]] = []
    path = os.fsencode(entry.path)
    if typeflag == b"5":
        path += b"/"
    split = _split_path(path)
    if split is None:
        pax.append((b"path", path))
        prefix, name = b"", path.translate(_ASCII_ONLY)[:100]
    else:
        prefix, name = split
    link = os.fsencode(entry.linkname) if entry.linkname else b""
    if len(link) > 100 or not link.isascii():
        pax.append((b"linkpath", link))
        link = link.translate(_ASCII_ONLY)[:100]
    size = entry.size if typeflag == b"0" else 0
    if size > _MAX_OCTAL_11:
        pax.append((b"size", b"%d" % size))
        size = 0
    uid, gid = (entry.uid, entry.gid) if options.keep_owner else (0, 0)
    if uid > _MAX_OCTAL_7:
        pax.append((b"uid", b"%d" % uid))
        uid = 0
    if gid > _MAX_OCTAL_7:
        pax.append((b"gid", b"%d" % gid))
        gid = 0
    mtime = _mtime_field(options.mtime if options.mtime is not None else entry.mtime, pax)
    header = _ustar(name, prefix, entry.mode & 0o7777, uid, gid, size, mtime, typeflag, link)
    if pax:
        return _pax_header(pax, path) + header
    return header


def file_header(name: str, size: int) -> bytes:
    """One header block of a regular file: short ASCII name, mode 0644, owner and mtime 0.

    Never more than one block, unlike :func:`encode_header`: a size of 8 GiB or more goes into
    the size field as GNU base-256 (read by Go and Python) instead of a PAX record, so a writer
    can put a placeholder block before data of unknown length and overwrite it afterwards.
    """
    raw = name.encode("ascii")
    if len(raw) > 100:
        raise ValueError(f"tar member name {name!r} is longer than 100 bytes")
    return _ustar(raw, b"", 0o644, 0, 0, size, 0, b"0", b"")


def _split_path(path: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for the ustar fields, or None if the path needs a PAX record."""
    if not path.isascii():
        return None
    if len(path) <= 100:
        return b"", path
    # The first '/' that leaves at most 100 bytes after it gives the shortest prefix; a
    # directory's trailing '/' must stay in the name.
    cut = path.find(b"/", len(path) - 101, len(path) - 1)
    if cut <= 0 or cut > 155:
        return None
    return path[:cut], path[cut + 1 :]


def _mtime_field(mtime: float, pax: list[tuple[bytes, bytes]]) -> int:
    """The ustar mtime, adding a PAX record when it is fractional or out of range."""
    whole = math.floor(mtime)
    if mtime != whole:
        text = (b"%.9f" % mtime).rstrip(b"0").rstrip(b".")  # PAX times go to the nanosecond
        if b"." in text:
            pax.append((b"mtime", text))
            return min(max(whole, 0), _MAX_OCTAL_11)
        whole = int(text)  # within a nanosecond of a whole second
    if 0 <= whole <= _MAX_OCTAL_11:
        return whole
    pax.append((b"mtime", b"%d" % whole))
    return min(max(whole, 0), _MAX_OCTAL_11)


def _ustar(
    name: bytes,
    prefix: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    typeflag: bytes,
    link: bytes,
) -> bytes:
    """One 512-byte ustar header block with its checksum."""
    fields = [
        name,
        b"%07o\x00" % mode,
        b"%07o\x00" % uid,
        b"%07o\x00" % gid,
        # Only file_header passes sizes past 11 octal digits: encode_header moves them to PAX.
        b"%011o\x00" % size if size <= _MAX_OCTAL_11 else b"\x80" + size.to_bytes(11, "big"),
        b"%011o\x00" % mtime,
        _CHKSUM_BLANK,
        typeflag,
        link,
        _MAGIC,
        b"",
        b"",
        _DEVICE,
        _DEVICE,
        prefix,
    ]
    fields[6] = b"%06o\x00 " % sum(_USTAR.pack(*fields))
    return _USTAR.pack(*fields)


def _pax_header(records: list[tuple[bytes, bytes]], path: bytes) -> bytes:
    """A PAX extended header (typeflag 'x') carrying ``records`` for the entry that follows."""
    body = b"".join(_pax_record(key, value) for key, value in records)
    basename = path.rstrip(b"/").rpartition(b"/")[2]
    name = (b"PaxHeaders/" + basename.translate(_ASCII_ONLY))[:100]
    header = _ustar(name, b"", 0o644, 0, 0, len(body), 0, b"x", b"")
    return header + body + _ZEROS[: -len(body) % _BLOCK]


def _pax_record(key: bytes, value: bytes) -> bytes:
    """``"<length> key=value\\n"``, where length counts the whole record including itself."""
    rest = b" " + key + b"=" + value + b"\n"
    length = len(rest) + len(str(len(rest)))
    if len(str(length)) > len(str(len(rest))):
        length += 1
    return b"%d" % length + rest


def _changed(entry: Entry) -> SourceError:
    return SourceError(
        f"'{entry.source}' changed while it was being packed; retry when it is stable"
    )


def _open(entry: Entry) -> int:
    if entry.source is None:
        raise ValueError(f"file entry '{entry.path}' has no source path")
    try:
        return os.open(entry.source, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _changed(entry) from None
    except OSError as err:
        raise SourceError(f"cannot read '{entry.source}': {err.strerror}") from err


def _read(fd: int, size: int, entry: Entry) -> bytes:
    try:
        return os.read(fd, size)
    except IsADirectoryError:
        raise _changed(entry) from None  # the file was replaced by a directory
    except OSError as err:
        raise SourceError(f"cannot read '{entry.source}': {err.strerror}") from err


def _read_whole(entry: Entry) -> bytes:
    """The content of a small file, which must still have the size the walk saw."""
    size = entry.size
    fd = _open(entry)
    try:
        # Asking for one byte more than expected shows growth without another syscall.
        data = _read(fd, size + 1, entry)
        while len(data) < size:  # a short read: the file shrank, or a filesystem being terse
            more = _read(fd, size + 1 - len(data), entry)
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    if len(data) != size:
        raise _changed(entry)
    return data


def _read_blocks(entry: Entry, block_size: int) -> Iterator[bytes]:
    """The content of a large file in blocks, checking it neither shrinks nor grows."""
    remaining = entry.size
    fd = _open(entry)
    try:
        while remaining:
            data = _read(fd, min(block_size, remaining), entry)
            if not data:
                raise _changed(entry)
            remaining -= len(data)
            yield data
        if _read(fd, 1, entry):
            raise _changed(entry)
    finally:
        os.close(fd)
