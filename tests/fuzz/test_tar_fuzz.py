"""Fuzzing the tar reader: mutations of real archives, made by ocibuild, GNU tar and tarfile.

Mutations go where they reach the parser: into header fields with the checksum redone (else
almost every case stops at the checksum), into pax records (which no checksum covers), and
as truncations and splices. Both readers must refuse or accept, never crash or hang; the
streaming check must not depend on how the stream is chunked; and what it accepts, the
seeking index must read too.
"""

from __future__ import annotations

import functools
import gzip
import io
import itertools
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import zstandard
from hypothesis import example, given
from hypothesis import strategies as st

from ocibuild._errors import OCIBuildError
from ocibuild.layer import Entry, TarballLayer, TarOptions, tar_stream
from ocibuild.layer._tar_check import checked_tar
from ocibuild.layer._tar_index import read_members
from tests.fuzz._fuzz import FUZZ, parses_or_refuses


def _ocibuild_tar() -> bytes:
    entries = [
        Entry("d", "dir", 0o755, 0, 0.0, None),
        Entry("d/" + "long" * 40, "symlink", 0o777, 0, 0.0, None, "t" * 120),
        Entry("d/\u00e9t\u00e9", "dir", 0o755, 0, 1.5, None),
    ]
    return b"".join(tar_stream(entries, TarOptions(mtime=None)))


def _gnu_tar(fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "t"
        (root / ("n" * 120)).mkdir(parents=True)
        (root / ("n" * 120) / "f").write_bytes(b"x" * 700)
        os.symlink("l" * 110, root / "link")
        done = subprocess.run(
            ["tar", f"--format={fmt}", "--sort=name", "-cf", "-", "-C", str(root), "."],
            capture_output=True,
            check=True,
        )
        return done.stdout


def _tarfile_pax() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("p" * 130)
        info.size = 5
        info.pax_headers = {"comment": "=" * 20}
        tar.addfile(info, io.BytesIO(b"hello"))
    return out.getvalue()


@functools.cache
def seeds() -> tuple[bytes, ...]:
    return (_ocibuild_tar(), _gnu_tar("pax"), _gnu_tar("gnu"), _tarfile_pax())


def headers(data: bytes) -> list[int]:
    """Offsets of the header blocks of a well-formed archive."""
    found, pos = [], 0
    while pos + 512 <= len(data) and data[pos : pos + 512] != bytes(512):
        found.append(pos)
        size = int(data[pos + 124 : pos + 135].strip(b"\0 ") or b"0", 8)
        kind = data[pos + 156 : pos + 157]
        pos += 512 + (0 if kind in b"123456" and kind else -(-size // 512) * 512)
    return found


def rechecksummed(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


FIELDS = [(0, 100), (100, 8), (124, 12), (136, 12), (156, 1), (157, 100), (257, 8), (345, 155)]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    seed = draw(st.sampled_from(seeds()))
    data, blocks = bytearray(seed), headers(seed)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["field", "pax", "bytes", "cut", "splice"]))
        at = draw(st.sampled_from(blocks))
        if how == "field":
            start, width = draw(st.sampled_from(FIELDS))
            value = draw(st.binary(min_size=1, max_size=width))
            block = bytearray(data[at : at + 512])
            block[start : start + len(value)] = value
            if draw(st.booleans()):
                rechecksummed(block)
            data[at : at + 512] = block
        elif how == "pax":
            record = draw(st.sampled_from([b"0", b"-1", b"-512", b"9" * 25, b"+3", b"00"]))
            body = at + 512
            space = data.find(b" ", body, body + 30)
            if space > body:
                data[body:space] = record
        elif how == "bytes":
            offset = draw(st.integers(0, max(0, len(data) - 1)))
            data[offset : offset + 8] = draw(st.binary(min_size=1, max_size=8))
        elif how == "cut":
            del data[draw(st.integers(0, len(data))) :]
        else:
            other = draw(st.sampled_from(seeds()))
            offset = draw(st.integers(0, len(other)))
            data[draw(st.integers(0, len(data))) :] = other[offset:]
    return bytes(data)


def check_stream(data: bytes, cuts: list[int], *, strict: bool = False) -> str:
    """'ok', or the message of the TarballError the streaming check raised."""
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    outcome = parses_or_refuses(lambda: b"".join(checked_tar(iter(chunks), strict=strict)))
    if isinstance(outcome, OCIBuildError):
        return str(outcome)
    assert outcome == data
    return "ok"


def index_of(data: bytes) -> object:
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        with open(f.name, "rb") as read:
            return parses_or_refuses(lambda: read_members(read, Path(f.name)))


def _pax_length(record: bytes) -> bytes:
    data = bytearray(_tarfile_pax())
    space = data.index(b" ", 512)
    data[512:space] = record
    return bytes(data)


def _negative_size() -> bytes:
    data = bytearray(_tarfile_pax())
    block = bytearray(data[1024:1536])
    block[124:136] = b"-0000002000\0"
    rechecksummed(block)
    data[1024:1536] = block
    return bytes(data)


@FUZZ
@given(data=mutated(), cuts=st.lists(st.integers(0, 1 << 14), max_size=6))
@example(data=_pax_length(b"0"), cuts=[])  # looped forever in the index
@example(data=_pax_length(b"-9"), cuts=[])
@example(data=_negative_size(), cuts=[600])  # stepped back to an earlier header
@example(data=_tarfile_pax() + b"junk", cuts=[len(_tarfile_pax()) - 1])  # offset by chunking
def test_mutated_archives_are_read_or_refused(data: bytes, cuts: list[int]) -> None:
    streamed = check_stream(data, cuts)
    assert check_stream(data, []) == streamed  # however the stream is chunked
    strict = check_stream(data, cuts, strict=True)
    assert strict == streamed or "the strict check refuses it" in strict  # it refuses more only
    indexed = index_of(data)
    if streamed == "ok":
        assert not isinstance(indexed, OCIBuildError), f"the index refused it: {indexed}"


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_read_or_refused(data: bytes) -> None:
    check_stream(data, [len(data) // 2])
    index_of(data)


def test_the_seeds_are_whole() -> None:
    for seed in seeds():
        assert check_stream(seed, [1, 513, 1000]) == "ok"
        assert not isinstance(index_of(seed), OCIBuildError)


def _compress(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.compress(data, mtime=0)
    if codec == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def stream_tarball(data: bytes, **options: object) -> object:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer"
        path.write_bytes(data)

        def read() -> bytes:
            with TarballLayer(path, **options).compressed() as blob:  # type: ignore[arg-type]
                return b"".join(blob)

        return parses_or_refuses(read)


@FUZZ
@given(
    tar=mutated() | st.sampled_from(seeds()),
    codec=st.sampled_from(["none", "gzip", "zstd"]),
    damage=st.lists(st.tuples(st.integers(0, 1 << 12), st.integers(0, 255)), max_size=3),
    cut=st.none() | st.integers(0, 1 << 12),
    recompress=st.booleans(),
)
def test_compressed_tarballs_are_read_or_refused(
    tar: bytes, codec: str, damage: list[tuple[int, int]], cut: int | None, recompress: bool
) -> None:
    data = bytearray(_compress(tar, codec))
    for offset, value in damage:
        if offset < len(data):
            data[offset] = value
    if cut is not None:
        del data[cut:]
    stream_tarball(bytes(data), **({"compression": "zstd"} if recompress else {}))
