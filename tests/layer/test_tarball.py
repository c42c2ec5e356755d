"""Tarball layers: compression from the bytes, as-is streaming, recompression, refusals."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from ocibuild._errors import TarballError
from ocibuild.layer import Layer, TarballLayer
from ocibuild.oci._mediatypes import DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD


@pytest.fixture
def plain_tar(tmp_path: Path) -> Path:
    """A ~3 MiB tar of text and random data, written by the tar CLI."""
    src = tmp_path / "content"
    (src / "dir").mkdir(parents=True)
    (src / "dir/text.txt").write_bytes(b"some text\n" * 100_000)
    (src / "random.bin").write_bytes(os.urandom(2 << 20))
    out = tmp_path / "plain.tar"
    subprocess.run(["tar", "-cf", str(out), "-C", str(src), "."], check=True)
    return out


def compressed_copy(tar: Path, tool: str, name: str) -> Path:
    out = tar.parent / name
    with open(out, "wb") as f:
        subprocess.run([tool, "-c", str(tar)], stdout=f, check=True)
    return out


def read_all(layer: TarballLayer) -> bytes:
    with layer.compressed() as stream:
        return b"".join(stream)


def unzstd(blob: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(blob).read()


@pytest.mark.parametrize(
    ("tool", "name", "media_type"),
    [
        (None, "layer.tar.gz", OCI_LAYER),  # a plain tar with a misleading name
        ("gzip", "layer.tar", OCI_LAYER_GZIP),  # a gzip file named .tar
        ("zstd", "layer.tgz", OCI_LAYER_ZSTD),  # a zstd file named .tgz
    ],
)
def test_kept_as_is(plain_tar: Path, tool: str | None, name: str, media_type: str) -> None:
    path = plain_tar.parent / name
    if tool is None:
        path.write_bytes(plain_tar.read_bytes())
    else:
        path = compressed_copy(plain_tar, tool, name)
    layer = TarballLayer(path)
    assert isinstance(layer, Layer)
    assert layer.media_type == media_type
    assert layer.known() is None
    blob = read_all(layer)
    tar = plain_tar.read_bytes()
    assert blob == path.read_bytes()
    digests = layer.known()
    assert digests is not None and digests.media_type == media_type
    assert digests.digest.hex == hashlib.sha256(blob).hexdigest()
    assert digests.diff_id.hex == hashlib.sha256(tar).hexdigest()
    assert digests.size == len(blob)
    assert b"".join(layer.uncompressed()) == tar
    assert layer.description == str(path)


def test_recompress_gzip_to_zstd(plain_tar: Path) -> None:
    path = compressed_copy(plain_tar, "gzip", "layer.tar")
    layer = TarballLayer(path, compression="zstd")
    assert layer.media_type == OCI_LAYER_ZSTD
    blob = read_all(layer)
    assert blob[:4] == b"\x28\xb5\x2f\xfd"
    assert unzstd(blob) == plain_tar.read_bytes()
    digests = layer.known()
    assert digests is not None and digests.media_type == OCI_LAYER_ZSTD
    assert digests.digest.hex == hashlib.sha256(blob).hexdigest()
    assert digests.diff_id.hex == hashlib.sha256(plain_tar.read_bytes()).hexdigest()
    assert digests.size == len(blob)


def test_recompress_zstd_to_uncompressed(plain_tar: Path) -> None:
    layer = TarballLayer(compressed_copy(plain_tar, "zstd", "x"), compression="none")
    assert layer.media_type == OCI_LAYER
    assert read_all(layer) == plain_tar.read_bytes()
    digests = layer.known()
    assert digests is not None and digests.digest == digests.diff_id


def test_compress_a_plain_tar_for_docker(plain_tar: Path) -> None:
    layer = TarballLayer(plain_tar, compression="gzip", docker_media_types=True)
    assert layer.media_type == DOCKER_LAYER_GZIP
    assert gzip.decompress(read_all(layer)) == plain_tar.read_bytes()


def test_a_level_recompresses_even_the_same_codec(plain_tar: Path) -> None:
    path = compressed_copy(plain_tar, "gzip", "x.tgz")
    blob = read_all(TarballLayer(path, level=6))
    assert blob != path.read_bytes()
    assert gzip.decompress(blob) == plain_tar.read_bytes()


def test_zstd_is_refused_for_docker_media_types(plain_tar: Path) -> None:
    with pytest.raises(ValueError, match="zstd"):
        TarballLayer(compressed_copy(plain_tar, "zstd", "x"), docker_media_types=True)


@pytest.mark.parametrize("fmt", ["gnu", "v7", "pax"])
def test_other_tar_formats_are_accepted(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    out = tmp_path / "x.tar"
    subprocess.run(
        ["tar", f"--format={fmt}", "-cf", str(out), "-C", str(tmp_path), "f"], check=True
    )
    assert read_all(TarballLayer(out)) == out.read_bytes()


def test_an_empty_archive_is_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "empty.tar"
    with tarfile.open(path, "w"):
        pass
    assert TarballLayer(path).media_type == OCI_LAYER


@pytest.mark.parametrize(
    "content",
    [
        b"just some text, not a tar at all\n" * 100,
        gzip.compress(b"compressed, but not a tar\n" * 100, mtime=0),
        b"",
        b"\x1f\x8b\x08\x00 truncated gzip header",
    ],
    ids=["text", "gzip-text", "empty", "cut-gzip"],
)
def test_not_a_tar_is_a_tarball_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "suspicious.tar"
    path.write_bytes(content)
    with pytest.raises(TarballError, match=r"suspicious\.tar"):
        TarballLayer(path)


def test_a_missing_file_is_a_tarball_error(tmp_path: Path) -> None:
    with pytest.raises(TarballError, match=r"nothing\.tar"):
        TarballLayer(tmp_path / "nothing.tar")


def test_corruption_after_the_head_fails_the_stream(plain_tar: Path) -> None:
    path = compressed_copy(plain_tar, "gzip", "cut.tgz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])  # the head still reads as a tar
    layer = TarballLayer(path)
    with pytest.raises(TarballError, match=r"cut\.tgz.*truncated"):
        read_all(layer)
    assert layer.known() is None
    with pytest.raises(TarballError, match=r"cut\.tgz"):
        b"".join(TarballLayer(path, compression="zstd").compressed())


def test_blob_chunks_are_large(plain_tar: Path) -> None:
    path = compressed_copy(plain_tar, "gzip", "x.tgz")
    with TarballLayer(path).compressed() as stream:
        sizes = [len(chunk) for chunk in stream]
    assert sum(sizes) == path.stat().st_size
    assert all(size >= 1 << 20 for size in sizes[:-1])


def test_read_by_tarfile_after_recompression(plain_tar: Path) -> None:
    blob = read_all(TarballLayer(plain_tar, compression="zstd", level=3))
    with tarfile.open(fileobj=io.BytesIO(unzstd(blob))) as tar:
        assert "./dir/text.txt" in tar.getnames()


def test_an_early_close_gives_no_digests(plain_tar: Path) -> None:
    layer = TarballLayer(compressed_copy(plain_tar, "gzip", "x.tgz"))
    stream = layer.compressed()
    next(stream)
    stream.close()
    assert list(stream) == []
    assert stream.digests is None and layer.known() is None
