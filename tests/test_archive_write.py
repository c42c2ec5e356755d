"""Writing images into docker-archives: each layer goes in as its plain tar (nothing is
compressed only to be undone), the manifest describes the layers as stored, and reading the
archive back gives the digest the write printed. skopeo and umoci read what is written."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
from contextlib import closing
from pathlib import Path

import pytest

from ocibuild._errors import DigestMismatchError
from ocibuild.image import Image, copy, write
from ocibuild.layer import Compression, FileTreeLayer, LayerCache, LayerOptions, TarballLayer
from ocibuild.oci import Descriptor, Digest, Manifest
from ocibuild.oci import media_types as mt
from ocibuild.oci._blobs import BytesStream
from ocibuild.transports._archive import ArchiveSource
from ocibuild.transports._layout import LayoutSink
from tests._layout_helpers import one_line, tar_of
from tests.support import BaseImage, skopeo_copy, skopeo_inspect, umoci_unpack


def ocibuild(*args: str) -> dict[str, object]:
    """Run the real CLI in a child interpreter with ``--json``; its parsed report."""
    proc = subprocess.run(
        [sys.executable, "-m", "ocibuild", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"ocibuild {' '.join(args)} failed:\n{proc.stderr}"
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "pkg").mkdir(parents=True)
    (root / "main.py").write_text("print('hello from the archive')\n")
    (root / "pkg" / "data.bin").write_bytes(os.urandom(300_000))
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    return root


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_writing_an_archive_compresses_nothing(
    tmp_path: Path, app: Path, compression: Compression
) -> None:
    cache = LayerCache(tmp_path / "cache")
    # A compressed layer of an OCI image anywhere else; zstd has no Docker media type at all.
    layer = FileTreeLayer([f"{app}:/app"], LayerOptions(compression=compression), cache=cache)
    out = tmp_path / "out.tar"
    result = write(Image.scratch().append(layer), f"docker-archive:{out}:app:1")
    assert result.media_type == mt.DOCKER_MANIFEST

    [blob] = [b for b in result.blobs if not b.label.startswith("config")]
    assert blob.descriptor.media_type == mt.DOCKER_LAYER
    assert str(blob.descriptor.digest) == blob.diff_id  # the blob is the tar itself
    stored = members(out)[f"blobs/sha256/{blob.descriptor.digest.hex}"]
    assert (Digest.of(stored), len(stored)) == (blob.descriptor.digest, blob.descriptor.size)
    # No compressed stream was ever read to its end: the layer learned no gzip digest, so the
    # layer cache (which remembers every layer built compressed) got no entry either.
    assert layer.known() is None
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_an_archive_reads_back_with_the_digest_its_write_printed(
    tmp_path: Path, app: Path, base_layout: BaseImage, cache_dir: Path
) -> None:
    out = tmp_path / "out.tar"
    written = ocibuild(
        "append", "--base", base_layout.ref, "--to", f"docker-archive:{out}:app:1", f"{app}:/app"
    )
    layers = [b for b in written["blobs"] if b["kind"] == "layer"]  # type: ignore[attr-defined]
    assert len(layers) == 3
    assert all(b["digest"] == b["diffID"] and b["mediaType"] == mt.DOCKER_LAYER for b in layers)

    copied = ocibuild("copy", f"docker-archive:{out}", f"oci:{tmp_path / 'lay'}:t")
    assert copied["digest"] == written["digest"]
    with closing(ArchiveSource(out, "app:1")) as source:
        assert str(Digest.of(source.get_manifest()[0])) == written["digest"]

    # What docker load reads, skopeo reads too; umoci unpacks its copy file by file.
    inspected = skopeo_inspect(f"docker-archive:{out}")
    assert inspected["Layers"] == [b["diffID"] for b in layers]
    assert json.loads(members(out)["manifest.json"])[0]["RepoTags"] == ["app:1"]
    skopeo_copy(f"docker-archive:{out}", f"oci:{tmp_path / 'sk'}:t")
    rootfs = umoci_unpack(tmp_path / "sk", "t", tmp_path / "bundle")
    assert (rootfs / "app/main.py").read_bytes() == (app / "main.py").read_bytes()
    assert (rootfs / "app/pkg/data.bin").read_bytes() == (app / "pkg/data.bin").read_bytes()
    assert os.access(rootfs / "app/run.sh", os.X_OK)
    assert (rootfs / "bin/busybox").exists()


def test_copy_into_an_archive_prints_the_digest_read_back(
    tmp_path: Path, base_layout: BaseImage
) -> None:
    out = tmp_path / "base.tar"
    result = copy(base_layout.ref, f"docker-archive:{out}")
    # The base's gzip layers went in as tars: its manifest cannot be kept, the archive's is told.
    assert str(result.digest) != base_layout.manifest_digest
    with closing(ArchiveSource(out)) as source:
        data, media_type = source.get_manifest()
    assert (Digest.of(data), media_type) == (result.digest, mt.DOCKER_MANIFEST)
    layers = Manifest.from_json(data).layers
    assert [str(d.digest) for d in layers] == base_layout.config["rootfs"]["diff_ids"]
    assert copy(f"docker-archive:{out}", f"oci:{tmp_path / 'lay'}:t").digest == result.digest
    # Archive to archive: the plain layers are checked once and go over as they are.
    again = copy(f"docker-archive:{out}", f"docker-archive:{tmp_path / 'again.tar'}")
    assert again.digest == result.digest
    assert members(tmp_path / "again.tar") == members(out)


def test_a_compressed_tarball_goes_in_as_its_tar(tmp_path: Path) -> None:
    tar = tar_of({"etc/motd": b"hello\n", "srv/data": os.urandom(100_000)})
    (tmp_path / "layer.tar.gz").write_bytes(gzip.compress(tar, mtime=0))
    out = tmp_path / "out.tar"
    image = Image.scratch().append(TarballLayer(tmp_path / "layer.tar.gz"))
    result = write(image, f"docker-archive:{out}")
    [blob] = [b for b in result.blobs if not b.label.startswith("config")]
    assert (blob.descriptor.digest, blob.descriptor.size) == (Digest.of(tar), len(tar))
    assert members(out)[f"blobs/sha256/{Digest.of(tar).encoded}"] == tar


def test_a_base_layer_that_is_not_its_diff_id_writes_nothing(tmp_path: Path) -> None:
    tar = tar_of({"etc/motd": b"hello\n"})
    blob = gzip.compress(tar, mtime=0)
    lie = Digest.of(b"some other tar")
    config = json.dumps(
        {"os": "linux", "architecture": "amd64", "rootfs": {"diff_ids": [str(lie)]}}
    )
    layer = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(blob), len(blob))
    config_desc = BytesStream(config.encode(), mt.OCI_CONFIG).descriptor
    lay = LayoutSink(tmp_path / "lay", "v1")
    lay.put_blob(BytesStream(blob, layer.media_type), layer)
    lay.put_blob(BytesStream(config.encode(), mt.OCI_CONFIG), config_desc)
    lay.put_manifest(Manifest(config_desc, (layer,)).to_json(), mt.OCI_MANIFEST, tag="v1")
    lay.commit()

    out = tmp_path / "out.tar"
    with pytest.raises(DigestMismatchError) as err:
        copy(f"oci:{tmp_path / 'lay'}:v1", f"docker-archive:{out}")
    message = one_line(err)
    assert f"layer tar {lie}" in message and f"has digest {Digest.of(tar)}" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lay"]  # no archive, no temp file
