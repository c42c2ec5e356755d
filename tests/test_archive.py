"""docker-archive tarballs: ArchiveSink output skopeo accepts, ArchiveSource reads what skopeo and
docker write (legacy, Docker 25 OCI form, long names, links), and broken input fails cleanly."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import zstandard

from ocibuild._errors import (
    DigestMismatchError,
    InvalidReferenceError,
    NotFoundError,
    SourceError,
    TransportError,
)
from ocibuild.image import copy
from ocibuild.layer._tar import file_header
from ocibuild.layer._tar_index import numeric_field
from ocibuild.oci import Descriptor, Digest, Index, Manifest
from ocibuild.oci import media_types as mt
from ocibuild.oci._blobs import BytesStream, VerifyingStream
from ocibuild.transports._archive import ArchiveSink, ArchiveSource
from ocibuild.transports._layout import LayoutSink, LayoutSource
from tests._layout_helpers import ChunkStream, one_line, skopeo, tar_of
from tests.test_append import ocibuild

# --- building small images by hand ----------------------------------------------------------


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda tar: gzip.compress(tar, mtime=0),
    "zstd": lambda tar: zstandard.ZstdCompressor().compress(tar),
    "none": lambda tar: tar,
}


class Image:
    """An image as bytes: one layer per (files, compression), a config and an OCI manifest."""

    def __init__(self, *layers: tuple[dict[str, bytes], str], diff_ids: list[str] | None = None):
        self.tars = [tar_of(files) for files, _ in layers]
        self.blobs = [COMPRESS[kind](tar) for tar, (_, kind) in zip(self.tars, layers, strict=True)]
        self.diff_ids = [str(Digest.of(tar)) for tar in self.tars]
        rootfs = {"type": "layers", "diff_ids": self.diff_ids if diff_ids is None else diff_ids}
        self.config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": rootfs}
        ).encode()
        self.layer_descs = tuple(
            Descriptor(mt.layer_media_type(kind), Digest.of(blob), len(blob))
            for blob, (_, kind) in zip(self.blobs, layers, strict=True)
        )
        self.config_desc = Descriptor(mt.OCI_CONFIG, Digest.of(self.config), len(self.config))
        self.manifest = Manifest(self.config_desc, self.layer_descs).to_json()
        # What an archive stores and ArchiveSource presents: the layers as plain tars.
        self.stored = Manifest(
            Descriptor(mt.DOCKER_CONFIG, self.config_desc.digest, self.config_desc.size),
            tuple(Descriptor(mt.DOCKER_LAYER, Digest.of(t), len(t)) for t in self.tars),
            mt.DOCKER_MANIFEST,
        ).to_json()


def write_archive(path: Path, img: Image, ref: str | None = "test/img:v1") -> None:
    """Put an image into an ArchiveSink the way the writer does (layers as tars) and commit."""
    sink = ArchiveSink(path, ref)
    for tar in img.tars:
        assert sink.put_blob(ChunkStream(tar, mt.DOCKER_LAYER), None) in ("written", "exists")
    assert sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.config_desc) == "written"
    sink.put_manifest(img.stored, mt.DOCKER_MANIFEST, tag=None)
    sink.commit()


def write_layout(path: Path, img: Image, tag: str = "v1") -> str:
    """Put an image (its compressed blobs, its OCI manifest) into an OCI layout; its spelling."""
    lay = LayoutSink(path, tag)
    for blob, desc in zip(img.blobs, img.layer_descs, strict=True):
        lay.put_blob(BytesStream(blob, desc.media_type), desc)
    lay.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.config_desc)
    lay.put_manifest(img.manifest, mt.OCI_MANIFEST, tag=tag)
    lay.commit()
    return f"oci:{path}:{tag}"


def tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if data else None)


# --- writing --------------------------------------------------------------------------------


def test_sink_writes_an_archive_skopeo_reads_and_copies(tmp_path: Path) -> None:
    img = Image(({"app/main.py": b"print(1)\n"}, "gzip"), ({"data": os.urandom(3 << 20)}, "gzip"))
    archive = tmp_path / "img.tar"
    write_archive(archive, img)

    members = tar_members(archive)
    entry = json.loads(members["manifest.json"])
    assert entry == [
        {
            "Config": f"blobs/sha256/{img.config_desc.digest.hex}",
            "RepoTags": ["test/img:v1"],
            "Layers": [f"blobs/sha256/{Digest.parse(d).hex}" for d in img.diff_ids],
        }
    ]
    for diff_id, tar in zip(img.diff_ids, img.tars, strict=True):  # layers are stored uncompressed
        assert members[f"blobs/sha256/{Digest.parse(diff_id).hex}"] == tar

    info = json.loads(skopeo("inspect", f"docker-archive:{archive}"))
    assert info["Layers"] == img.diff_ids
    config = json.loads(skopeo("inspect", "--config", f"docker-archive:{archive}"))
    assert config["rootfs"]["diff_ids"] == img.diff_ids

    skopeo("copy", f"docker-archive:{archive}", f"oci:{tmp_path / 'lay'}:t")
    source = LayoutSource(tmp_path / "lay", "t")
    manifest = Manifest.from_json(*source.get_manifest())
    copied = json.loads(source.get_blob(manifest.config))
    assert copied["rootfs"]["diff_ids"] == img.diff_ids
    for desc, tar in zip(manifest.layers, img.tars, strict=True):  # skopeo may compress them
        blob = source.get_blob(desc)
        assert gzip.decompress(blob) == tar if desc.media_type == mt.OCI_LAYER_GZIP else blob == tar


def test_zstd_gzip_and_plain_layers_are_all_stored_uncompressed(tmp_path: Path) -> None:
    img = Image(({"a": b"gzip"}, "gzip"), ({"b": b"zstd"}, "zstd"), ({"c": b"none"}, "none"))
    copy(write_layout(tmp_path / "lay", img), f"docker-archive:{tmp_path / 'img.tar'}")
    members = tar_members(tmp_path / "img.tar")
    assert [members[f"blobs/sha256/{Digest.parse(d).hex}"] for d in img.diff_ids] == img.tars
    info = json.loads(skopeo("inspect", f"docker-archive:{tmp_path / 'img.tar'}"))
    assert info["Layers"] == img.diff_ids


def test_same_content_compressed_twice_is_stored_once(tmp_path: Path) -> None:
    files = {"same": b"identical layer"}
    img = Image((files, "gzip"), (files, "none"))
    copy(write_layout(tmp_path / "lay", img), f"docker-archive:{tmp_path / 'img.tar'}")
    with tarfile.open(tmp_path / "img.tar") as tar:
        assert len(tar.getnames()) == 3  # one layer, the config, manifest.json
    entry = json.loads(tar_members(tmp_path / "img.tar")["manifest.json"])[0]
    assert entry["Layers"][0] == entry["Layers"][1]
    json.loads(skopeo("inspect", f"docker-archive:{tmp_path / 'img.tar'}"))


def test_a_compressed_blob_is_refused_and_cut_out(tmp_path: Path) -> None:
    img = Image(({"x": b"1"}, "gzip"))
    sink = ArchiveSink(tmp_path / "img.tar", "a:b")
    # What a layer's compressed() gives: the gzip blob, its diff_id claimed alongside.
    gz = VerifyingStream([img.blobs[0]], img.layer_descs[0], diff_id=Digest.parse(img.diff_ids[0]))
    with pytest.raises(TransportError) as err:
        sink.put_blob(gz, None)
    assert "plain tars" in one_line(err)
    assert sink.put_blob(ChunkStream(img.tars[0], mt.DOCKER_LAYER), None) == "written"
    sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.config_desc)
    sink.put_manifest(img.stored, mt.DOCKER_MANIFEST, tag=None)
    sink.commit()
    layer_file = f"blobs/sha256/{Digest.parse(img.diff_ids[0]).hex}"
    config_file = f"blobs/sha256/{img.config_desc.digest.hex}"
    assert sorted(tar_members(tmp_path / "img.tar")) == sorted(
        ["manifest.json", config_file, layer_file]
    )


def test_sink_and_source_round_trip(tmp_path: Path) -> None:
    img = Image(({"x": b"1"}, "gzip"), ({"y": b"2"}, "zstd"))
    write_archive(tmp_path / "img.tar", img, "example.com:5000/team/app")
    source = ArchiveSource(tmp_path / "img.tar", "example.com:5000/team/app:latest")
    data, media_type = source.get_manifest()
    manifest = Manifest.from_json(data, media_type)
    assert (data, media_type) == (img.stored, mt.DOCKER_MANIFEST)  # presented as it was put
    assert [str(d.digest) for d in manifest.layers] == img.diff_ids
    assert {d.media_type for d in manifest.layers} == {mt.DOCKER_LAYER}
    assert source.get_blob(manifest.config) == img.config
    for desc, tar in zip(manifest.layers, img.tars, strict=True):
        assert b"".join(VerifyingStream(source.open_blob(desc), desc)) == tar
    source.close()


def test_an_index_cannot_go_into_an_archive(tmp_path: Path) -> None:
    img = Image(({"x": b"1"}, "gzip"))
    sink = ArchiveSink(tmp_path / "img.tar", "a:b")
    sink.put_blob(ChunkStream(img.tars[0], mt.DOCKER_LAYER), None)
    sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.config_desc)
    child = sink.put_manifest(img.stored, mt.DOCKER_MANIFEST, tag=None)
    with pytest.raises(TransportError) as err:
        sink.put_manifest(Index((child,)).to_json(), mt.OCI_INDEX, tag="b")
    assert one_line(err) == "docker-archive holds one image per platform; pick one with --platform"
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_failed_blob_is_cut_out_and_abort_leaves_the_target_alone(tmp_path: Path) -> None:
    target = tmp_path / "img.tar"
    target.write_bytes(b"the previous archive")
    img = Image(({"x": os.urandom(1 << 20)}, "gzip"), ({"y": b"small"}, "gzip"))
    stored = Manifest.from_json(img.stored).layers
    sink = ArchiveSink(target, "a:b")
    sink.put_blob(ChunkStream(img.tars[0], mt.DOCKER_LAYER), None)
    with pytest.raises(SourceError):
        sink.put_blob(ChunkStream(img.tars[1] * 40, mt.DOCKER_LAYER, fail_after=1), None)
    claimed = Descriptor(mt.DOCKER_LAYER, Digest.of(b"something else"), len(img.tars[1]))
    with pytest.raises(DigestMismatchError):
        sink.put_blob(ChunkStream(img.tars[1], mt.DOCKER_LAYER), claimed)
    assert target.read_bytes() == b"the previous archive"

    # The failed members were cut off: finishing the image gives a clean archive.
    sink.put_blob(ChunkStream(img.tars[1], mt.DOCKER_LAYER), stored[1])
    sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.config_desc)
    sink.put_manifest(img.stored, mt.DOCKER_MANIFEST, tag=None)
    sink.commit()
    assert sorted(tar_members(target)) == sorted(
        [
            "manifest.json",
            f"blobs/sha256/{img.config_desc.digest.hex}",
            *(f"blobs/sha256/{Digest.parse(d).hex}" for d in img.diff_ids),
        ]
    )

    again = ArchiveSink(target, "a:b")
    again.put_blob(ChunkStream(img.tars[0], mt.DOCKER_LAYER), None)
    assert len(list(tmp_path.iterdir())) == 2  # the target and the temp file beside it
    again.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["img.tar"]


def test_config_must_match_the_layers(tmp_path: Path) -> None:
    img = Image(({"x": b"1"}, "gzip"), diff_ids=[str(Digest.of(b"not the layer"))])
    sink = ArchiveSink(tmp_path / "img.tar", "a:b")
    sink.put_blob(ChunkStream(img.tars[0], mt.DOCKER_LAYER), None)
    with pytest.raises(TransportError) as missing:
        sink.put_manifest(img.stored, mt.DOCKER_MANIFEST, tag=None)
    assert str(img.config_desc.digest) in one_line(missing)
    sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.config_desc)
    with pytest.raises(TransportError) as err:
        sink.put_manifest(img.stored, mt.DOCKER_MANIFEST, tag=None)
    assert "diff_ids" in one_line(err)
    with pytest.raises(TransportError) as nothing:
        sink.commit()
    assert "no image manifest" in one_line(nothing)
    sink.abort()


def test_sink_checks_target_and_reference(tmp_path: Path) -> None:
    with pytest.raises(TransportError):
        ArchiveSink(tmp_path, "a:b")
    with pytest.raises(TransportError) as err:
        ArchiveSink(tmp_path / "missing" / "img.tar", "a:b")
    assert "does not exist" in one_line(err)
    with pytest.raises(InvalidReferenceError):
        ArchiveSink(tmp_path / "img.tar", f"a@{Digest.of(b'')}")
    with pytest.raises(InvalidReferenceError):
        ArchiveSink(tmp_path / "img.tar", "UPPER:case")
    assert ArchiveSink(tmp_path / "img.tar", "repo").name.endswith(":repo:latest")


def test_big_sizes_use_base256_headers() -> None:
    size = 9 << 30
    header = file_header("blobs/sha256/" + "a" * 64, size)
    info = tarfile.TarInfo.frombuf(header, "utf-8", "strict")
    assert (info.name, info.size, info.mode, info.mtime) == (
        "blobs/sha256/" + "a" * 64,
        size,
        0o644,
        0,
    )
    assert numeric_field(header[124:136]) == size
    assert tarfile.TarInfo.frombuf(file_header("m", 1234), "utf-8", "strict").size == 1234


# --- reading --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def skopeo_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Image]:
    """An archive written by skopeo (legacy layout: <hex>.tar, <id>/layer.tar symlinks)."""
    tmp = tmp_path_factory.mktemp("skopeo")
    img = Image(({"etc/hostname": b"box\n"}, "gzip"), ({"app/run": os.urandom(1 << 20)}, "gzip"))
    skopeo("copy", write_layout(tmp / "lay", img), f"docker-archive:{tmp / 'img.tar'}:foo/bar:t1")
    return tmp / "img.tar", img


def test_source_reads_a_skopeo_archive(skopeo_archive: tuple[Path, Image]) -> None:
    archive, img = skopeo_archive
    for ref in ("foo/bar:t1", "docker.io/foo/bar:t1", "@0", None):
        source = ArchiveSource(archive, ref)
        manifest = Manifest.from_json(*source.get_manifest())
        assert [str(d.digest) for d in manifest.layers] == img.diff_ids
        config = json.loads(source.get_blob(manifest.config))
        assert config["rootfs"]["diff_ids"] == img.diff_ids
        for desc, tar in zip(manifest.layers, img.tars, strict=True):
            assert b"".join(VerifyingStream(source.open_blob(desc), desc)) == tar
        source.close()
    with pytest.raises(NotFoundError) as err:
        ArchiveSource(archive, "foo/bar:t2")
    assert "foo/bar:t1" in one_line(err)
    with pytest.raises(NotFoundError):
        ArchiveSource(archive, "@1")


def test_source_follows_long_names_links_and_detects_compression(tmp_path: Path) -> None:
    """A legacy archive: a GNU long-name layer, a pax long-name layer, a symlink and a hardlink."""
    tars = [tar_of({"one": b"1"}), tar_of({"two": b"2"}), tar_of({"three": b"3"})]
    gz = gzip.compress(tars[1], mtime=0)
    order = [tars[0], tars[1], tars[2], tars[2], tars[0], tars[2]]  # as "Layers" names them
    config = json.dumps(
        {"rootfs": {"type": "layers", "diff_ids": [str(Digest.of(t)) for t in order]}}
    )
    long_dir = "d" * 120
    layers = [
        f"{long_dir}/layer.tar",
        "pax/" + "p" * 110 + ".tar",
        "ids/1/layer.tar",
        "ids/2/layer.tar",
    ]
    manifest = [
        {"Config": "cfg.json", "RepoTags": ["x:1"], "Layers": [*layers, layers[0], layers[2]]}
    ]
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        archive = tmp_path / f"legacy-{fmt}.tar"
        with tarfile.open(archive, "w", format=fmt) as tar:
            add(tar, "manifest.json", json.dumps(manifest).encode())
            add(tar, "./cfg.json", config.encode())
            add(tar, layers[0], tars[0])
            add(tar, layers[1], gz)
            add(tar, "blobs/three.tar", tars[2])
            add(tar, "ids/1/layer.tar", type=tarfile.SYMTYPE, linkname="../../blobs/three.tar")
            add(tar, "ids/2/layer.tar", type=tarfile.LNKTYPE, linkname="blobs/three.tar")
        source = ArchiveSource(archive)
        parsed = Manifest.from_json(*source.get_manifest())
        stored = [tars[0], gz, tars[2], tars[2], tars[0], tars[2]]
        assert [d.digest for d in parsed.layers] == [Digest.of(b) for b in stored]
        assert [d.media_type for d in parsed.layers][:2] == [mt.DOCKER_LAYER, mt.DOCKER_LAYER_GZIP]
        for desc, data in zip(parsed.layers, stored, strict=True):
            assert b"".join(VerifyingStream(source.open_blob(desc), desc)) == data
        assert source.get_blob(parsed.config) == config.encode()
        source.close()


def test_source_reads_the_docker_25_oci_form(tmp_path: Path) -> None:
    """Docker >= 25: an OCI layout plus manifest.json pointing into blobs/sha256/."""
    tars = [tar_of({"hello": b"world"}), tar_of({"bye": b"now"})]
    blobs = [zstandard.ZstdCompressor().compress(tars[0]), gzip.compress(tars[1], mtime=0)]
    config = json.dumps(
        {"rootfs": {"type": "layers", "diff_ids": [str(Digest.of(t)) for t in tars]}}
    )
    paths = [f"blobs/sha256/{Digest.of(b).hex}" for b in (config.encode(), *blobs)]
    manifest = [{"Config": paths[0], "RepoTags": ["img:1"], "Layers": paths[1:]}]
    with tarfile.open(tmp_path / "d25.tar", "w") as tar:
        add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(tar, "index.json", b'{"schemaVersion":2,"manifests":[]}')
        add(tar, "blobs", type=tarfile.DIRTYPE)
        for path, data in zip(paths, (config.encode(), *blobs), strict=True):
            add(tar, path, data)
        add(tar, "manifest.json", json.dumps(manifest).encode())
    source = ArchiveSource(tmp_path / "d25.tar", "img:1")
    data, media_type = source.get_manifest()
    parsed = Manifest.from_json(data, media_type)
    # zstd has no Docker layer type, so the whole manifest is OCI: no mixed families.
    assert (media_type, parsed.config.media_type) == (mt.OCI_MANIFEST, mt.OCI_CONFIG)
    assert [d.media_type for d in parsed.layers] == [mt.OCI_LAYER_ZSTD, mt.OCI_LAYER_GZIP]
    assert [d.digest for d in parsed.layers] == [Digest.of(b) for b in blobs]
    for desc, blob in zip(parsed.layers, blobs, strict=True):
        assert b"".join(VerifyingStream(source.open_blob(desc), desc)) == blob
    source.close()


def test_several_images_need_a_reference(tmp_path: Path) -> None:
    one, two = Image(({"n": b"1"}, "none")), Image(({"n": b"2"}, "none"))
    entries = []
    with tarfile.open(tmp_path / "two.tar", "w") as tar:
        for i, img in enumerate((one, two)):
            add(tar, f"c{i}.json", img.config)
            add(tar, f"l{i}.tar", img.tars[0])
            entries.append(
                {"Config": f"c{i}.json", "RepoTags": [f"r:{i}"], "Layers": [f"l{i}.tar"]}
            )
        add(tar, "manifest.json", json.dumps(entries).encode())
    with pytest.raises(NotFoundError) as err:
        ArchiveSource(tmp_path / "two.tar")
    assert "holds 2 images" in one_line(err) and "r:0, r:1" in str(err.value)
    with closing(ArchiveSource(tmp_path / "two.tar", "r:1")) as source:
        assert source.get_blob(Manifest.from_json(*source.get_manifest()).config) == two.config


# --- broken archives ------------------------------------------------------------------------


@pytest.fixture
def good_archive(tmp_path: Path) -> Path:
    write_archive(tmp_path / "good.tar", Image(({"x": os.urandom(4096)}, "gzip")), "a:b")
    return tmp_path / "good.tar"


def test_missing_archive_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        ArchiveSource(tmp_path / "nope.tar", None)
    assert "does not exist" in one_line(err)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: os.urandom(2048), "not a tar archive"),
        (lambda data: data[:1200], "truncated"),
        (lambda data: gzip.compress(data), "compressed"),
        (lambda data: data[:100] + b"X" + data[101:], "corrupt at byte 0"),
    ],
)
def test_damaged_archives_are_transport_errors(
    good_archive: Path, damage: object, message: str
) -> None:
    good_archive.write_bytes(damage(good_archive.read_bytes()))  # type: ignore[operator]
    with pytest.raises(TransportError) as err:
        ArchiveSource(good_archive, None)
    assert message in one_line(err) and str(good_archive) in str(err.value)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "no manifest.json"),
        (b"[{", "not valid JSON"),
        (b'{"Config": "c"}', "not a list of images"),
        (b'[{"Config": "c.json", "Layers": ["gone.tar"]}]', "lacks gone.tar"),
        (b'[{"Config": "c.json", "Layers": []}]', "0 layers but its config has 1 diff_ids"),
        (b'[{"Layers": []}]', "lacks the 'Config' field"),
    ],
)
def test_bad_manifest_json_is_a_transport_error(
    tmp_path: Path, manifest: bytes | None, message: str
) -> None:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        add(tar, "c.json", json.dumps({"rootfs": {"diff_ids": ["sha256:" + "0" * 64]}}).encode())
        if manifest is not None:
            add(tar, "manifest.json", manifest)
    with pytest.raises(TransportError) as err, closing(ArchiveSource(archive, None)) as source:
        source.get_manifest()
    assert message in one_line(err)


def test_corrupt_member_fails_verification(good_archive: Path) -> None:
    source = ArchiveSource(good_archive, "a:b")
    manifest = Manifest.from_json(*source.get_manifest())
    layer = manifest.layers[0]
    data = bytearray(good_archive.read_bytes())
    offset = data.index(b"".join(source.open_blob(layer))[:64]) + 100
    data[offset] ^= 0xFF
    good_archive.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError), closing(ArchiveSource(good_archive)) as again:
        b"".join(VerifyingStream(again.open_blob(layer), layer))
    with pytest.raises(NotFoundError):
        source.get_blob(Descriptor(mt.OCI_CONFIG, Digest.of(b"unknown"), 7))
    with pytest.raises(NotFoundError):
        source.get_child_manifest(layer)
    source.close()


@pytest.mark.parametrize("form", ["skopeo", "docker-25"])
def test_a_flipped_byte_in_a_layer_is_refused_before_anything_is_written(
    skopeo_archive: tuple[Path, Image], tmp_path: Path, form: str
) -> None:
    """docker save / skopeo name layers by path, not by digest: the config's diff_id is the
    only name their bytes have, so it is checked before the image is used."""
    archive, img = skopeo_archive
    if form == "docker-25":
        archive = tmp_path / "docker25.tar"
        write_archive(archive, img, "foo/bar:t1")
    data = bytearray(archive.read_bytes())
    offset = data.index(img.tars[1][4096:4160])  # inside the second layer's tar
    data[offset] ^= 0x01
    broken = tmp_path / "broken.tar"
    broken.write_bytes(bytes(data))
    proc = ocibuild("copy", f"docker-archive:{broken}", f"oci:{tmp_path / 'out'}:x", check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("ocibuild: error: ") and len(proc.stderr.splitlines()) == 1
    assert "corrupt" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_corrupt_gzip_layer_copied_into_an_archive_is_named(tmp_path: Path) -> None:
    """The blob verifies (its digest is of the corrupt bytes) but does not decompress."""
    good = gzip.compress(tar_of({"app/a": bytes(range(256)) * 8}), mtime=0)
    bad = bytearray(good)
    bad[20] ^= 0xFF
    img = Image(({"app/a": b"x"}, "gzip"))
    lay = LayoutSink(tmp_path / "lay", "v1")
    layer = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(bytes(bad)), len(bad))
    lay.put_blob(BytesStream(bytes(bad), layer.media_type), layer)
    lay.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.config_desc)
    manifest = Manifest(img.config_desc, (layer,), mt.OCI_MANIFEST).to_json()
    lay.put_manifest(manifest, mt.OCI_MANIFEST, tag="v1")
    lay.commit()
    src, dest = f"oci:{tmp_path / 'lay'}:v1", f"docker-archive:{tmp_path / 'o.tar'}"
    proc = ocibuild("copy", src, dest, check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"ocibuild: error: layer {layer.digest} of {src} cannot be ")
    assert line.endswith("; the source is corrupt") and "gzip" in line
    assert not (tmp_path / "o.tar").exists()
