"""Streaming codecs: round trips through independent decoders, fixed headers, sniffing, errors."""

from __future__ import annotations

import gzip
import os
import subprocess
import zlib
from collections.abc import Iterable
from pathlib import Path

import pytest
import zstandard

from ocibuild._errors import TarballError
from ocibuild.layer._compress import (
    GZIP_HEADER,
    Compression,
    decompress_stream,
    detect_compression,
    gzip_backend,
    new_compressor,
)

MIXED = (b"text line of a python file\n" * 40_000) + os.urandom(1 << 20) + bytes(1 << 20)


def compress_all(data: bytes, kind: Compression, level: int | None = None) -> bytes:
    comp = new_compressor(kind, level)
    step = 1 << 16
    out = [comp.compress(data[i : i + step]) for i in range(0, len(data), step)]
    return b"".join(out) + comp.flush()


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def decompress_all(chunks: Iterable[bytes], kind: Compression) -> bytes:
    return b"".join(decompress_stream(chunks, kind))


@pytest.mark.parametrize("level", [None, 0, 1, 2, 3, 4, 9])
def test_gzip_round_trips_through_python_and_gzip_tool(level: int | None, tmp_path: Path) -> None:
    blob = compress_all(MIXED, "gzip", level)
    assert gzip.decompress(blob) == MIXED
    path = tmp_path / "x.gz"
    path.write_bytes(blob)
    subprocess.run(["gzip", "-t", str(path)], check=True)
    assert decompress_all(chunked(blob, 4096), "gzip") == MIXED


@pytest.mark.parametrize("level", [None, 0, 1, 3, 9])
def test_gzip_header_is_fixed_whatever_the_library(level: int | None) -> None:
    blob = compress_all(b"abc" * 1000, "gzip", level)
    assert blob[:10] == GZIP_HEADER
    # no FNAME/FEXTRA/FCOMMENT flags, mtime 0, OS "unknown"
    assert blob[3] == 0 and blob[4:8] == b"\0\0\0\0" and blob[9] == 0xFF


def test_gzip_is_deterministic() -> None:
    assert compress_all(MIXED, "gzip") == compress_all(MIXED, "gzip")


def test_gzip_of_nothing_is_a_valid_empty_stream() -> None:
    blob = compress_all(b"", "gzip")
    assert blob[:10] == GZIP_HEADER
    assert gzip.decompress(blob) == b""
    assert decompress_all([blob], "gzip") == b""


def test_gzip_levels_pick_the_library() -> None:
    from isal import isal_zlib as isal

    assert gzip_backend(0) == (zlib, 0)
    assert gzip_backend(1) == (isal, 1)
    assert gzip_backend(3) == (isal, 3)
    assert gzip_backend(6) == (zlib, 6)
    assert gzip_backend(2, isal=None) == (zlib, 2)


@pytest.mark.parametrize(("kind", "level"), [("gzip", -1), ("gzip", 10), ("zstd", 0), ("zstd", 23)])
def test_bad_levels_say_the_range(kind: Compression, level: int) -> None:
    with pytest.raises(ValueError, match="out of range; use"):
        new_compressor(kind, level)


def test_unknown_compression_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown compression"):
        new_compressor("brotli", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [None, 1, 19])
def test_zstd_round_trips_and_carries_a_checksum(level: int | None, tmp_path: Path) -> None:
    blob = compress_all(MIXED, "zstd", level)
    params = zstandard.get_frame_parameters(blob)
    assert params.has_checksum
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    dctx = zstandard.ZstdDecompressor()
    assert dctx.stream_reader(blob).read() == MIXED
    path = tmp_path / "x.zst"
    path.write_bytes(blob)
    subprocess.run(["zstd", "-q", "-t", str(path)], check=True)
    assert decompress_all(chunked(blob, 1000), "zstd") == MIXED


def test_none_passes_bytes_through() -> None:
    comp = new_compressor("none")
    assert comp.compress(b"abc") == b"abc" and comp.flush() == b""
    assert decompress_all([b"ab", b"", b"c"], "none") == b"abc"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x28\xb5\x2f\xfd\x00", "zstd"),
        (b"ustar", "none"),
        (b"", "none"),
        (b"\x1f", "none"),
    ],
)
def test_detect_compression_from_magic(head: bytes, kind: str) -> None:
    assert detect_compression(head) == kind


def test_detect_compression_of_real_blobs() -> None:
    assert detect_compression(compress_all(b"x", "gzip")) == "gzip"
    assert detect_compression(compress_all(b"x", "zstd")) == "zstd"


def test_multi_member_gzip_and_zero_padding() -> None:
    blob = gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)
    assert decompress_all(chunked(blob, 7), "gzip") == b"first second"
    assert decompress_all([blob, bytes(10240)], "gzip") == b"first second"


def test_multi_frame_and_skippable_zstd() -> None:
    skippable = b"\x50\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"abc"
    blob = compress_all(b"one ", "zstd") + skippable + compress_all(b"two", "zstd")
    assert decompress_all(chunked(blob, 3), "zstd") == b"one two"


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_output_pieces_stay_small_for_huge_ratios(kind: Compression) -> None:
    zeros = bytes(1 << 20)
    comp = new_compressor(kind, None)
    blob = b"".join(comp.compress(zeros) for _ in range(64)) + comp.flush()
    total = 0
    for piece in decompress_stream([blob], kind):
        assert len(piece) <= 1 << 20
        total += len(piece)
    assert total == 64 << 20


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_truncated_streams_are_tarball_errors(kind: Compression) -> None:
    blob = compress_all(MIXED, kind)
    for cut in (len(blob) - 1, len(blob) - 4, len(blob) // 2, 5):
        with pytest.raises(TarballError, match="truncated"):
            decompress_all(chunked(blob[:cut], 1 << 16), kind)
    with pytest.raises(TarballError, match="empty"):
        decompress_all([], kind)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_corrupt_streams_are_tarball_errors(kind: Compression) -> None:
    blob = bytearray(compress_all(MIXED, kind))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(TarballError, match=f"corrupt {kind} stream"):
        decompress_all([bytes(blob)], kind)


def test_trailing_garbage_after_gzip_is_corrupt() -> None:
    blob = compress_all(b"abc", "gzip")
    with pytest.raises(TarballError, match="corrupt gzip stream"):
        decompress_all([blob + b"\0\0garbage"], "gzip")


def test_garbage_in_place_of_a_zstd_frame_is_corrupt() -> None:
    blob = compress_all(b"abc", "zstd")
    with pytest.raises(TarballError, match="corrupt zstd stream"):
        decompress_all([blob + b"garbage!"], "zstd")
