"""The one-pass blob pipeline: digests agree with the bytes, errors and early stops are clean."""

from __future__ import annotations

import gc
import gzip
import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from ocibuild._errors import SourceError
from ocibuild.layer import FileTreeLayer, LayerOptions, build_blob
from ocibuild.layer._compress import Compression
from ocibuild.layer._pipeline import prefetched

MIB = 1 << 20


def tar_like(total: int, chunk: int = MIB) -> list[bytes]:
    """Chunks of mixed data (text, random, zeros) standing in for a tar stream."""
    pattern = b"def f(x):\n    return x * 2\n" * 2000 + os.urandom(100_000) + bytes(50_000)
    data = (pattern * (total // len(pattern) + 1))[:total]
    return [data[i : i + chunk] for i in range(0, total, chunk)]


def decompress(blob: bytes, kind: Compression) -> bytes:
    if kind == "gzip":
        return gzip.decompress(blob)
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(blob).read()
    return blob


def wait_for_threads(count: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_digests_agree_with_the_bytes(kind: Compression) -> None:
    chunks = tar_like(5 * MIB + 12345)
    tar = b"".join(chunks)
    stream = build_blob(iter(chunks), compression=kind, level=None, media_type="m/t")
    pieces = list(stream)
    blob = b"".join(pieces)
    assert decompress(blob, kind) == tar
    result = stream.result
    assert result.media_type == "m/t"
    assert result.size == len(blob)
    assert result.digest.hex == hashlib.sha256(blob).hexdigest()
    assert result.diff_id.hex == hashlib.sha256(tar).hexdigest()
    assert all(len(piece) >= MIB for piece in pieces[:-1])


def test_uncompressed_blob_is_the_tar_chunks_themselves() -> None:
    chunks = tar_like(3 * MIB)
    stream = build_blob(iter(chunks), compression="none", level=None, media_type="m/t")
    assert list(stream) == chunks
    assert stream.result.digest == stream.result.diff_id


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_an_empty_tar_still_gives_a_valid_blob(kind: Compression) -> None:
    stream = build_blob(iter([]), compression=kind, level=None, media_type="m/t")
    blob = b"".join(stream)
    assert decompress(blob, kind) == b""
    assert stream.result.diff_id.hex == hashlib.sha256(b"").hexdigest()
    assert stream.result.digest.hex == hashlib.sha256(blob).hexdigest()


def test_digests_are_unset_until_exhausted() -> None:
    stream = build_blob(iter(tar_like(4 * MIB)), compression="gzip", level=1, media_type="m/t")
    next(stream)
    assert stream.digests is None
    with pytest.raises(RuntimeError, match="not been read to the end"):
        _ = stream.result
    stream.close()
    assert stream.digests is None
    assert list(stream) == []


def test_bad_level_fails_before_any_thread_starts() -> None:
    before = threading.active_count()
    with pytest.raises(ValueError, match="out of range"):
        build_blob(iter([b"x"]), compression="gzip", level=12, media_type="m/t")
    assert threading.active_count() == before


def test_worker_errors_reach_the_consumer_unchanged() -> None:
    error = SourceError("'/x' changed while it was being packed; retry when it is stable")

    def failing() -> Iterator[bytes]:
        yield from tar_like(3 * MIB)
        raise error

    before = threading.active_count()
    stream = build_blob(failing(), compression="gzip", level=None, media_type="m/t")
    with pytest.raises(SourceError) as caught:
        for _ in stream:
            pass
    assert caught.value is error
    assert wait_for_threads(before) == before


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_early_close_stops_the_worker_and_closes_the_source(kind: Compression) -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            block = os.urandom(MIB)
            while True:
                yield block
        finally:
            closed.set()

    before = threading.active_count()
    with build_blob(endless(), compression=kind, level=None, media_type="m/t") as stream:
        next(stream)
        next(stream)
    assert threading.active_count() == before  # close() joins the worker
    assert closed.is_set()


@pytest.mark.parametrize("kind", ["gzip", "none"])
def test_prefetched_stream_is_the_same_blob(kind: Compression) -> None:
    chunks = tar_like(5 * MIB)
    direct = build_blob(iter(chunks), compression=kind, level=None, media_type="m/t")
    expected = b"".join(direct)
    before = threading.active_count()
    ahead = prefetched(build_blob(iter(chunks), compression=kind, level=None, media_type="m/t"))
    assert b"".join(ahead) == expected
    assert ahead.result == direct.result
    assert wait_for_threads(before) == before


def test_prefetched_errors_and_early_close() -> None:
    error = SourceError("'/x' vanished")

    def failing() -> Iterator[bytes]:
        yield from tar_like(3 * MIB)
        raise error

    before = threading.active_count()
    stream = prefetched(build_blob(failing(), compression="gzip", level=None, media_type="m/t"))
    with pytest.raises(SourceError) as caught:
        for _ in stream:
            pass
    assert caught.value is error
    assert wait_for_threads(before) == before

    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            block = os.urandom(MIB)
            while True:
                yield block
        finally:
            closed.set()

    with prefetched(build_blob(endless(), compression="zstd", level=None, media_type="m/t")) as s:
        next(s)
    assert closed.is_set()
    assert wait_for_threads(before) == before


def test_dropping_an_unfinished_stream_stops_the_worker() -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            block = os.urandom(MIB)
            while True:
                yield block
        finally:
            closed.set()

    before = threading.active_count()
    stream = build_blob(endless(), compression="gzip", level=None, media_type="m/t")
    next(stream)
    assert threading.active_count() == before + 1
    del stream
    gc.collect()
    assert wait_for_threads(before) == before
    assert closed.wait(5)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_early_close_of_a_file_layer_leaks_no_fds(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(os.urandom(24 * MIB))
    layer = FileTreeLayer([f"{tmp_path}:/data"], LayerOptions(compression="gzip"))
    layer.entries  # noqa: B018 - walk first: only the build's fds are counted
    fds, threads = open_fds(), threading.active_count()
    stream = layer.compressed()
    next(stream)
    assert open_fds() > fds  # the worker is reading the big file
    stream.close()
    assert open_fds() == fds
    assert threading.active_count() == threads


def test_a_file_vanishing_mid_build_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "a-first").write_bytes(os.urandom(24 * MIB))
    (tmp_path / "z-later").write_bytes(b"soon gone")
    layer = FileTreeLayer([f"{tmp_path}:/data"], LayerOptions(compression="zstd"))
    before = threading.active_count()
    stream = layer.compressed()
    next(stream)  # the worker is at most a few MiB into the first file
    (tmp_path / "z-later").unlink()
    with pytest.raises(SourceError, match="z-later"):
        for _ in stream:
            pass
    assert threading.active_count() == before
    assert layer.known() is None


_MEMORY_CHILD = textwrap.dedent(
    """
    import base64, os, sys
    from ocibuild.layer import FileTreeLayer, LayerOptions

    root = sys.argv[1]
    # Text that compresses slower than it is read, so an unbounded hand-over would pile up,
    # then a sparse file to make up 1 GiB.
    with open(os.path.join(root, "a-text.b64"), "wb") as f:
        for _ in range(256):
            f.write(base64.b64encode(os.urandom(3 << 18)))
    with open(os.path.join(root, "b-sparse.bin"), "wb") as f:
        f.truncate(768 << 20)
    layer = FileTreeLayer([root + ":/data"], LayerOptions(compression="zstd", level=1))
    with layer.compressed() as stream:
        size = sum(len(chunk) for chunk in stream)
    assert stream.result.size == size
    # VmHWM, not getrusage: ru_maxrss survives exec and so counts the forking parent's pages.
    with open("/proc/self/status") as status:
        print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
    """
)


@pytest.mark.slow
def test_a_1_gib_layer_builds_in_constant_memory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    peak_kib = int(done.stdout.strip())
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB"
