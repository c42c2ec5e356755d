"""The tar header reader: a hostile or damaged archive is refused in bounded time, by offset."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from ocibuild._errors import TransportError
from ocibuild.layer._tar_index import numeric_field, read_members
from ocibuild.transports._archive import ArchiveSource
from tests._bounded import bounded

LONG = "d/" + "n" * 150  # needs a pax path record


def pax_tar(names: tuple[str, ...] = (LONG, "small")) -> bytes:
    """A pax archive whose first member has a pax header (at byte 0) and data at 512."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    return out.getvalue()


def with_field(data: bytes, at: int, start: int, value: bytes) -> bytes:
    """``data`` with ``value`` written at ``start`` of the header at ``at``, checksum redone."""
    block = bytearray(data[at : at + 512])
    block[start : start + len(value)] = value
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return data[:at] + bytes(block) + data[at + 512 :]


def with_pax_data(data: bytes, records: bytes) -> bytes:
    """``data`` whose first (pax) header carries ``records`` instead of its own."""
    assert data[156:157] == b"x"
    padded = records + bytes(-len(records) % 512)
    old = -(-numeric_field(data[124:136]) // 512) * 512
    head = with_field(data, 0, 124, b"%011o\0" % len(records))
    return head[:512] + padded + head[512 + old :]


def index(tmp_path: Path, data: bytes) -> object:
    path = tmp_path / "archive.tar"
    path.write_bytes(data)
    with open(path, "rb") as f:
        return bounded(5, lambda: read_members(f, path))


def refused(tmp_path: Path, data: bytes) -> str:
    with pytest.raises(TransportError) as err:
        index(tmp_path, data)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "archive.tar") in message
    return message


def test_a_pax_archive_reads(tmp_path: Path) -> None:
    assert sorted(index(tmp_path, pax_tar())) == sorted([LONG, "small"])  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "records",
    [
        b"0 path=x\n",  # a zero length used to loop forever
        b"00000000000 path=x\n",
        b"-9 path=x\n",  # a negative one stepped backwards
        b"-1 path=x\n",
        b"+10 path=x\n",  # int() would take these
        b" 10 path=x\n",
        b"1_0 path=x\n",
        b"3 p\n",  # shorter than its own length field
        b"200 path=x\n",  # past the end of the data
        b"11 path=x\nX",  # not ending at its newline
        b"10 pathx\n\n",  # no '='
        b"9 =value\n",  # no key
        b"noNumber path=x\n",
        b"12 path=x\n\0\0junk",  # data after the padding
        b"14 \xff\xfe=value\n",  # a key that is not UTF-8
        b"12 size=-5\n",
        b"12 size=1e3\n",
        b"12 size= 12\n",
    ],
)
def test_malformed_pax_records_are_refused(tmp_path: Path, records: bytes) -> None:
    message = refused(tmp_path, with_pax_data(pax_tar(), records))
    assert "at byte 0" in message or "at byte 1024" in message


def test_a_zero_length_pax_record_fails_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "archive.tar"
    path.write_bytes(with_pax_data(pax_tar(), b"0 path=x\n"))
    with pytest.raises(TransportError, match="corrupt pax header at byte 0"):
        bounded(5, lambda: ArchiveSource(path, None))


def test_gnu_tar_rejects_what_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(with_pax_data(pax_tar(), b"0 path=x\n"))
    listed = subprocess.run(["tar", "-tf", str(bad)], capture_output=True, timeout=30)
    assert listed.returncode != 0


@pytest.mark.parametrize(
    "size",
    [
        b"-0001000000\0",  # negative octal: the reader stepped back to an earlier header
        b"0o000000017\0",  # Python's int(_, 8) takes a prefix
        b"00000_00017\0",
        b"+0000000017\0",
        b"0000000001x\0",
        b"\xff" + b"\xff" * 11,  # negative GNU base-256
    ],
)
def test_bad_size_fields_are_refused(tmp_path: Path, size: bytes) -> None:
    data = pax_tar(("a", "b"))
    message = refused(tmp_path, with_field(data, 0, 124, size))
    assert "at byte 0" in message


def test_a_bad_checksum_is_named_with_its_offset(tmp_path: Path) -> None:
    data = bytearray(pax_tar(("a", "b")))
    data[1024 + 10] ^= 1  # the second member's header
    assert "is corrupt at byte 1024: a bad header checksum" in refused(tmp_path, bytes(data))


def test_special_members_are_bounded(tmp_path: Path) -> None:
    big = b"%d path=%s\n" % (2_000_013, b"x" * 2_000_000)
    data = with_pax_data(pax_tar(), big)
    assert "at most 1 MiB" in refused(tmp_path, data)


def test_a_size_past_the_end_is_truncation(tmp_path: Path) -> None:
    data = with_field(pax_tar(("a", "b")), 0, 124, b"%011o\0" % (1 << 33))
    assert "truncated" in refused(tmp_path, data)


def test_header_only_types_have_no_data(tmp_path: Path) -> None:
    # A directory that claims a size: Go and tarfile skip no data after it, and so must we.
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("dir")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        info = tarfile.TarInfo("file")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    data = with_field(out.getvalue(), 0, 124, b"%011o\0" % 512)
    members = index(tmp_path, data)
    assert sorted(members) == ["dir", "file"]  # type: ignore[call-overload]
