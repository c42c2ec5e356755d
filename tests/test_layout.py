"""OCI image layouts: what LayoutSink writes, skopeo, umoci and the OCI schemas accept."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from referencing.jsonschema import DRAFT4

from ocibuild._errors import (
    DigestMismatchError,
    InvalidReferenceError,
    NotFoundError,
    SourceError,
    TransportError,
)
from ocibuild.oci import Descriptor, Digest, Index, Manifest, Platform
from ocibuild.oci import media_types as mt
from ocibuild.oci._blobs import BytesStream, VerifyingStream
from ocibuild.transports._layout import REF_NAME, LayoutSink, LayoutSource
from tests._layout_helpers import ChunkStream, one_line, run, skopeo, tar_of

SCHEMAS = Path(__file__).parent / "data" / "oci-schema"
ROOT = Path(__file__).resolve().parent.parent


# --- building small images by hand ----------------------------------------------------------


@dataclass(frozen=True)
class Img:
    """A one-layer image as bytes: the layer blob, its tar, the config and the manifest."""

    layer: bytes
    tar: bytes
    config: bytes
    manifest: bytes

    @property
    def parsed(self) -> Manifest:
        return Manifest.from_json(self.manifest)

    @property
    def digest(self) -> Digest:
        return Digest.of(self.manifest)


def make_image(files: dict[str, bytes], *, arch: str = "amd64", docker: bool = False) -> Img:
    """A gzip-layer image holding ``files``, as OCI (default) or Docker schema 2."""
    tar = tar_of(files)
    layer = gzip.compress(tar, mtime=0)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(tar))]},
            "history": [{"created_by": "test"}],
        }
    ).encode()
    manifest = Manifest(
        Descriptor(mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG, Digest.of(config), len(config)),
        (Descriptor(mt.layer_media_type("gzip", docker=docker), Digest.of(layer), len(layer)),),
        mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
    )
    return Img(layer, tar, config, manifest.to_json())


def write_image(sink: LayoutSink, img: Img, tag: str | None) -> Descriptor:
    """Put an image's blobs (the layer with its digest unknown up front) and manifest; commit."""
    manifest = img.parsed
    assert sink.put_blob(ChunkStream(img.layer, manifest.layers[0].media_type), None) == "written"
    config = BytesStream(img.config, mt.OCI_CONFIG)
    assert sink.put_blob(config, manifest.config) in ("written", "exists")
    desc = sink.put_manifest(img.manifest, manifest.media_type, tag=tag)
    sink.commit()
    return desc


def index_json(layout: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((layout / "index.json").read_bytes())
    return index


def blob_files(layout: Path) -> list[str]:
    return sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())


# --- schema validation ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def validate() -> Any:
    """validate(name, obj): check obj against one of the OCI image-spec JSON schemas."""
    resources = []
    for path in SCHEMAS.glob("*.json"):
        resource = DRAFT4.create_resource(json.loads(path.read_text()))
        for base in (
            "https://opencontainers.org/schema/image/",
            "https://opencontainers.org/schema/",
        ):
            resources.append((base + path.name, resource))
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(resources)

    def check(schema: str, obj: Any) -> None:
        document = json.loads((SCHEMAS / schema).read_text())
        jsonschema.Draft4Validator(document, registry=registry).validate(obj)

    return check


# --- writing: the independent tools accept it -----------------------------------------------


def test_written_layout_validates_against_the_oci_schemas(tmp_path: Path, validate: Any) -> None:
    img = make_image({"hello.txt": b"hello\n"})
    write_image(LayoutSink(tmp_path / "lay", "v1"), img, "v1")
    lay = tmp_path / "lay"
    validate("image-layout-schema.json", json.loads((lay / "oci-layout").read_bytes()))
    validate("image-index-schema.json", index_json(lay))
    validate("image-manifest-schema.json", json.loads(img.manifest))
    validate("config-schema.json", json.loads(img.config))
    with pytest.raises(jsonschema.ValidationError):  # the validator does reject bad content
        validate("image-index-schema.json", {"schemaVersion": 2, "manifests": [{"size": -1}]})
    for name in blob_files(lay):  # every blob hashes to its name
        assert hashlib.sha256((lay / "blobs" / "sha256" / name).read_bytes()).hexdigest() == name


def test_skopeo_inspects_and_copies_the_layout(tmp_path: Path) -> None:
    img = make_image({"app/main.py": b"print('hi')\n"})
    write_image(LayoutSink(tmp_path / "lay"), img, "v1")
    info = json.loads(skopeo("inspect", f"oci:{tmp_path / 'lay'}:v1"))
    assert info["Digest"] == str(img.digest)
    assert info["Layers"] == [str(Digest.of(img.layer))]
    assert skopeo("inspect", "--raw", f"oci:{tmp_path / 'lay'}:v1").encode() == img.manifest
    config = json.loads(skopeo("inspect", "--config", f"oci:{tmp_path / 'lay'}:v1"))
    assert config["rootfs"]["diff_ids"] == [str(Digest.of(img.tar))]

    skopeo("copy", f"oci:{tmp_path / 'lay'}:v1", f"oci:{tmp_path / 'copy'}:w")
    copied = LayoutSource(tmp_path / "copy", "w")
    data, media_type = copied.get_manifest()
    assert (Digest.of(data), media_type) == (img.digest, mt.OCI_MANIFEST)


def test_umoci_unpacks_the_layer(tmp_path: Path) -> None:
    files = {"etc/greeting": b"hello from the layer\n", "bin/tool": b"#!/bin/sh\necho hi\n"}
    write_image(LayoutSink(tmp_path / "lay"), make_image(files), "v1")
    run("umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'lay'}:v1", tmp_path / "bundle")
    rootfs = tmp_path / "bundle" / "rootfs"
    for name, data in files.items():
        assert (rootfs / name).read_bytes() == data


def test_index_children_are_blobs_and_only_the_index_is_tagged(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path / "lay")
    children = []
    for arch in ("amd64", "arm64"):
        img = make_image({"arch": arch.encode()}, arch=arch)
        sink.put_blob(BytesStream(img.layer, mt.OCI_LAYER_GZIP), img.parsed.layers[0])
        sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.parsed.config)
        platform = Platform("linux", arch)
        children.append(
            sink.put_manifest(img.manifest, mt.OCI_MANIFEST, tag=None, platform=platform)
        )
    index = Index(tuple(children)).to_json()
    sink.put_manifest(index, mt.OCI_INDEX, tag="multi")
    sink.commit()

    entries = index_json(tmp_path / "lay")["manifests"]
    assert [(e["mediaType"], e["annotations"][REF_NAME]) for e in entries] == [
        (mt.OCI_INDEX, "multi")
    ]
    source = LayoutSource(tmp_path / "lay", "multi")
    assert source.get_manifest() == (index, mt.OCI_INDEX)
    child = Index.from_json(index).select(Platform("linux", "arm64"))
    assert Manifest.from_json(source.get_child_manifest(child)).layers
    raw = skopeo("inspect", "--raw", f"oci:{tmp_path / 'lay'}:multi")
    assert raw.encode() == index
    amd64 = json.loads(skopeo("inspect", f"oci:{tmp_path / 'lay'}:multi"))
    assert amd64["Architecture"] == "amd64"


# --- tags and index.json entries ------------------------------------------------------------


def test_tags_are_replaced_and_untagged_entries_kept(tmp_path: Path) -> None:
    lay = tmp_path / "lay"
    first, second, third = (make_image({"n": bytes([i])}) for i in range(3))
    write_image(LayoutSink(lay, "a"), first, "a")
    write_image(LayoutSink(lay), third, None)  # untagged
    write_image(LayoutSink(lay, "b"), first, "b")
    write_image(LayoutSink(lay, "a"), second, None)  # no tag at put: the sink's own tag applies

    entries = index_json(lay)["manifests"]
    by_tag = {(e.get("annotations") or {}).get(REF_NAME): e["digest"] for e in entries}
    assert by_tag == {"a": str(second.digest), "b": str(first.digest), None: str(third.digest)}
    assert Digest.of(LayoutSource(lay, "a").get_manifest()[0]) == second.digest
    assert json.loads(skopeo("inspect", f"oci:{lay}:b"))["Digest"] == str(first.digest)


def test_source_without_tag_needs_exactly_one_image(tmp_path: Path) -> None:
    lay = tmp_path / "lay"
    img = make_image({"x": b"1"})
    write_image(LayoutSink(lay), img, "only")
    assert LayoutSource(lay).get_manifest()[0] == img.manifest
    write_image(LayoutSink(lay), make_image({"x": b"2"}), "other")
    with pytest.raises(NotFoundError) as err:
        LayoutSource(lay)
    assert "holds 2 images" in one_line(err) and "only, other" in str(err.value)


def test_missing_tag_lists_the_tags_there_are(tmp_path: Path) -> None:
    write_image(LayoutSink(tmp_path / "lay"), make_image({"x": b"1"}), "v1")
    with pytest.raises(NotFoundError) as err:
        LayoutSource(tmp_path / "lay", "v2")
    assert "no tag 'v2'" in one_line(err) and "(tags: v1)" in str(err.value)


def test_source_reads_and_streams_verified_blobs(tmp_path: Path) -> None:
    img = make_image({"data.bin": os.urandom(3 << 20)})  # random: the gzip blob spans chunks
    write_image(LayoutSink(tmp_path / "lay"), img, "v1")
    source = LayoutSource(tmp_path / "lay", "v1")
    assert source.name == f"oci:{tmp_path / 'lay'}:v1"
    manifest = Manifest.from_json(*source.get_manifest())
    assert source.get_blob(manifest.config) == img.config
    stream = VerifyingStream(source.open_blob(manifest.layers[0]), manifest.layers[0])
    chunks = list(stream)
    assert len(chunks) > 1 and b"".join(chunks) == img.layer
    assert stream.result.digest == manifest.layers[0].digest
    source.close()


def test_bad_tags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidReferenceError) as err:
        LayoutSink(tmp_path / "lay", "bad tag")
    assert "bad tag" in one_line(err)


# --- broken layouts -------------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Img]:
    img = make_image({"f": b"content"})
    write_image(LayoutSink(tmp_path / "lay"), img, "v1")
    return tmp_path / "lay", img


def test_missing_layout_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        LayoutSource(tmp_path / "nothing", "v1")
    assert "does not exist" in one_line(err)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lay: (lay / "oci-layout").unlink(), "oci-layout is missing"),
        (lambda lay: (lay / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}'), "'2.0.0'"),
        (lambda lay: (lay / "oci-layout").write_text("nope"), "not valid JSON"),
        (lambda lay: (lay / "index.json").write_text("{not json"), "not valid JSON"),
        (lambda lay: (lay / "index.json").unlink(), "index.json is missing"),
        (
            lambda lay: (lay / "index.json").write_text('{"manifests": [{"size": 1}]}'),
            "manifests[0] lacks the 'mediaType' field",
        ),
    ],
)
def test_broken_layouts_are_transport_errors(
    layout: tuple[Path, Img], damage: Any, message: str
) -> None:
    lay, _ = layout
    damage(lay)
    with pytest.raises(TransportError) as err:
        LayoutSource(lay, "v1")
    assert message in one_line(err) and str(lay) in str(err.value)


def test_missing_and_corrupt_blobs(layout: tuple[Path, Img]) -> None:
    lay, img = layout
    source = LayoutSource(lay, "v1")
    config_path = lay / "blobs" / "sha256" / img.parsed.config.digest.hex
    config_path.write_bytes(img.config.replace(b"amd64", b"arm64"))
    with pytest.raises(DigestMismatchError) as corrupt:
        source.get_blob(img.parsed.config)
    assert str(config_path) in one_line(corrupt)
    config_path.unlink()
    with pytest.raises(TransportError) as missing:
        source.get_blob(img.parsed.config)
    assert "lacks blob" in one_line(missing)
    with pytest.raises(TransportError):
        source.open_blob(img.parsed.config)
    (lay / "blobs" / "sha256" / img.digest.hex).unlink()
    with pytest.raises(TransportError):
        source.get_manifest()


def test_sink_refuses_a_directory_that_is_not_a_layout(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TransportError) as err:
        LayoutSink(tmp_path, "v1")
    assert "not an OCI layout" in one_line(err)
    with pytest.raises(TransportError):
        LayoutSink(tmp_path / "notes.txt", "v1")
    LayoutSink(tmp_path / "new" / "dir", "v1")  # a missing directory is fine: created on write
    assert not (tmp_path / "new").exists()


# --- failing writes leave nothing behind ----------------------------------------------------


def test_stream_failing_midway_leaves_no_blob(layout: tuple[Path, Img]) -> None:
    lay, _ = layout
    before_index, before_blobs = (lay / "index.json").read_bytes(), blob_files(lay)
    data = os.urandom(1 << 20)
    stream = ChunkStream(data, mt.OCI_LAYER, fail_after=5)
    sink = LayoutSink(lay, "v1")
    with pytest.raises(SourceError):
        sink.put_blob(stream, None)
    sink.abort()
    assert blob_files(lay) == before_blobs  # neither the blob nor a temp file
    assert (lay / "index.json").read_bytes() == before_index


def test_digest_mismatch_leaves_no_blob(layout: tuple[Path, Img]) -> None:
    lay, _ = layout
    before_index, before_blobs = (lay / "index.json").read_bytes(), blob_files(lay)
    data = b"actual content"
    claimed = Descriptor(mt.OCI_LAYER, Digest.of(b"other content"), len(data))
    sink = LayoutSink(lay, "v1")
    with pytest.raises(DigestMismatchError) as err:
        sink.put_blob(ChunkStream(data, mt.OCI_LAYER), claimed)
    assert str(claimed.digest) in one_line(err)
    # A verifying stream fails at its end, before the sink could rename anything.
    with pytest.raises(DigestMismatchError):
        sink.put_blob(VerifyingStream([data], claimed), claimed)
    assert blob_files(lay) == before_blobs
    assert (lay / "index.json").read_bytes() == before_index


def test_commit_refuses_a_manifest_whose_blobs_are_missing(layout: tuple[Path, Img]) -> None:
    lay, _ = layout
    before = (lay / "index.json").read_bytes()
    img = make_image({"new": b"never written"})
    sink = LayoutSink(lay, "v1")
    sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.parsed.config)
    sink.put_manifest(img.manifest, mt.OCI_MANIFEST, tag="v1")
    with pytest.raises(TransportError) as err:
        sink.commit()
    assert str(img.parsed.layers[0].digest) in one_line(err)
    assert (lay / "index.json").read_bytes() == before


def test_existing_blob_is_not_rewritten(layout: tuple[Path, Img]) -> None:
    lay, img = layout
    stream = ChunkStream(img.layer, mt.OCI_LAYER_GZIP)
    sink = LayoutSink(lay, "v1")
    assert sink.has_blob(img.parsed.layers[0])
    assert sink.put_blob(stream, img.parsed.layers[0]) == "exists"
    assert stream.closed and stream.digests is None  # nothing was read
    wrong_size = Descriptor(mt.OCI_LAYER_GZIP, img.parsed.layers[0].digest, 1)
    assert not sink.has_blob(wrong_size)


def test_abort_keeps_index_untouched(layout: tuple[Path, Img]) -> None:
    lay, _ = layout
    before = (lay / "index.json").read_bytes()
    sink = LayoutSink(lay, "v1")
    img = make_image({"g": b"new"})
    sink.put_blob(BytesStream(img.layer, mt.OCI_LAYER_GZIP), img.parsed.layers[0])
    sink.put_blob(BytesStream(img.config, mt.OCI_CONFIG), img.parsed.config)
    sink.put_manifest(img.manifest, mt.OCI_MANIFEST, tag="v1")
    sink.abort()
    sink.commit()  # nothing pending any more
    assert (lay / "index.json").read_bytes() == before


_KILLED_WRITER = """
import os, sys
from ocibuild.transports._layout import LayoutSink
from ocibuild.oci import BlobStream

class Dying(BlobStream):
    def __init__(self):
        self.n = 0
    def __next__(self):
        self.n += 1
        if self.n == 8:
            os._exit(9)  # the process dies with the blob half written
        return b"x" * 65536

sink = LayoutSink(sys.argv[1], "v1")
sink.put_blob(Dying(), None)
"""


def test_a_killed_writer_never_leaves_a_lying_layout(layout: tuple[Path, Img]) -> None:
    lay, img = layout
    before_index, before_blobs = (lay / "index.json").read_bytes(), blob_files(lay)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(lay)], env=env, timeout=60)
    assert proc.returncode == 9
    assert (lay / "index.json").read_bytes() == before_index
    leftovers = sorted(set(blob_files(lay)) - set(before_blobs))
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")  # a temp file, no blob name
    assert LayoutSource(lay, "v1").get_manifest()[0] == img.manifest
    json.loads(skopeo("inspect", f"oci:{lay}:v1"))


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_put_blob_from_four_threads(tmp_path: Path) -> None:
    # An existing layout: blobs land in it as they are written (a new one is staged).
    (tmp_path / "lay").mkdir()
    (tmp_path / "lay" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (tmp_path / "lay" / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    sink = LayoutSink(tmp_path / "lay", "v1")
    assert sink.concurrency >= 4
    blobs = [os.urandom((2 << 20) + i) for i in range(8)]
    outcomes: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(mine: list[bytes]) -> None:
        try:
            start.wait()
            for n, data in enumerate(mine):
                known = n % 2 == 0  # half with the digest known up front, half learnt at the end
                desc = Descriptor(mt.OCI_LAYER, Digest.of(data), len(data)) if known else None
                outcomes.append(sink.put_blob(ChunkStream(data, mt.OCI_LAYER, 1 << 15), desc))
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = []
    for i in range(4):
        threads.append(threading.Thread(target=worker, args=(blobs[i::4],)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    assert not errors and outcomes == ["written"] * 8
    stored = blob_files(tmp_path / "lay")
    assert stored == sorted(Digest.of(b).hex for b in blobs)
    for data in blobs:
        path = tmp_path / "lay" / "blobs" / "sha256" / Digest.of(data).hex
        assert path.read_bytes() == data


# --- what dead and failed writers leave ---------------------------------------------------

_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def _age(path: Path, seconds: float = 7200) -> None:
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


def test_temp_files_of_dead_writers_are_reclaimed_and_live_ones_kept(
    layout: tuple[Path, Img],
) -> None:
    lay, _ = layout
    blobs = lay / "blobs" / "sha256"
    dead, live, fresh = blobs / ".tmp-dead", blobs / ".tmp-live", blobs / ".tmp-fresh"
    for path in (dead, live, fresh):
        path.write_bytes(b"half a blob")
    _age(dead)
    _age(live)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(live)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        write_image(LayoutSink(lay), make_image({"g": b"next"}), "v2")
        assert not dead.exists()  # nobody holds its lock, and it is old: a dead writer's
        assert live.exists()  # its writer is alive (it holds the lock)
        assert fresh.exists()  # too young to judge: it may not be locked yet
    finally:
        holder.kill()
        holder.wait()
    live.unlink()
    fresh.unlink()
    run("umoci", "gc", "--layout", lay)  # umoci refuses stray files; none are left


def test_a_first_write_that_fails_or_dies_leaves_no_layout(tmp_path: Path) -> None:
    target = tmp_path / "new"
    sink = LayoutSink(target, "v1")
    data = b"x" * 100_000
    wrong = Descriptor(mt.OCI_LAYER, Digest.of(b"other"), len(data))
    with pytest.raises(DigestMismatchError):
        sink.put_blob(ChunkStream(data, mt.OCI_LAYER, 4096), wrong)
    sink.put_blob(ChunkStream(data, mt.OCI_LAYER, 4096), None)
    sink.abort()
    assert sorted(os.listdir(tmp_path)) == []  # no skeleton, no staging directory

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], env=env, timeout=60)
    assert proc.returncode == 9
    assert not target.exists()  # a killed first write never shows a layout
    (staged,) = os.listdir(tmp_path)
    assert staged.startswith(".new.tmp-")
    _age(tmp_path / staged)
    write_image(LayoutSink(target), make_image({"f": b"ok"}), "v1")
    assert sorted(os.listdir(tmp_path)) == ["new"]  # the dead writer's staging dir is gone
    json.loads(skopeo("inspect", f"oci:{target}:v1"))


_FIRST_WRITER = """
import sys
from ocibuild import FileTreeLayer, Image, write
image = Image.scratch().append(FileTreeLayer([sys.argv[2] + ":/data"]))
print(write(image, "oci:" + sys.argv[1] + ":" + sys.argv[3]).digest)
"""


def test_concurrent_first_writes_into_a_new_layout_all_land(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OCIBUILD_CACHE_DIR": str(tmp_path / "c")}
    for round_ in range(3):
        target = tmp_path / f"lay{round_}"
        procs = []
        for n in range(6):
            src = tmp_path / f"src{round_}-{n}"
            src.mkdir()
            (src / "f").write_bytes(os.urandom(50_000))
            argv = [sys.executable, "-c", _FIRST_WRITER, str(target), str(src), f"t{n}"]
            procs.append(subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True))
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors
        tags = {e.annotations.get(REF_NAME) for e in LayoutSource(target, "t0")._layout.entries()}
        assert tags == {f"t{n}" for n in range(6)}
        assert [n for n in os.listdir(tmp_path) if n.startswith(f".lay{round_}")] == []
        for n in range(6):
            json.loads(skopeo("inspect", f"oci:{target}:t{n}"))
