"""File-tree layers: the tar reads back as the tree, reproducibly, with in-memory files."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from ocibuild._errors import SourceError
from ocibuild.layer import FileTreeLayer, Layer, LayerOptions
from ocibuild.oci._mediatypes import DOCKER_LAYER, DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_ZSTD


def make_tree(root: Path) -> dict[str, bytes]:
    """A small tree with text, binary, empty and executable files, a symlink and a hardlink."""
    files = {
        "app/main.py": b"print('hello')\n" * 100,
        "app/pkg/__init__.py": b"",
        "app/pkg/data.bin": os.urandom(300_000),
        "app/run.sh": b"#!/bin/sh\nexec python main.py\n",
        "app/" + "long-name-" * 12 + ".txt": b"long name\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "app/run.sh").chmod(0o755)
    (root / "app/link").symlink_to("main.py")
    os.link(root / "app/main.py", root / "app/pkg/main-again.py")
    return files


def blob_of(layer: FileTreeLayer) -> bytes:
    with layer.compressed() as stream:
        return b"".join(stream)


def read_member(tar: tarfile.TarFile, name: str | tarfile.TarInfo) -> bytes:
    member = tar.extractfile(name)
    assert member is not None
    return member.read()


def tar_of(layer: FileTreeLayer, blob: bytes) -> tarfile.TarFile:
    kind = layer.options.compression
    if kind == "gzip":
        raw = gzip.decompress(blob)
    elif kind == "zstd":
        raw = zstandard.ZstdDecompressor().stream_reader(blob).read()
    else:
        raw = blob
    return tarfile.open(fileobj=io.BytesIO(raw))


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_the_layer_reads_back_as_the_tree(tmp_path: Path, kind: str) -> None:
    files = make_tree(tmp_path / "src")
    layer = FileTreeLayer([f"{tmp_path / 'src'}:/"], LayerOptions(compression=kind))  # type: ignore[arg-type]
    assert isinstance(layer, Layer)
    blob = blob_of(layer)
    tar = tar_of(layer, blob)
    members = {m.name: m for m in tar.getmembers()}
    for rel, data in files.items():
        member = members[rel]
        assert member.isfile() and member.size == len(data)
        assert read_member(tar, member) == data
        assert (member.mtime, member.uid, member.gid, member.uname) == (0, 0, 0, "")
    assert members["app/run.sh"].mode == 0o755
    assert members["app/main.py"].mode == 0o644
    assert members["app/link"].issym() and members["app/link"].linkname == "main.py"
    again = members["app/pkg/main-again.py"]
    assert again.islnk() and again.linkname == "app/main.py"
    assert members["app"].isdir() and members["app/pkg"].isdir()
    assert set(members) == set(files) | {"app", "app/pkg", "app/link", "app/pkg/main-again.py"}
    digests = layer.known()
    assert digests is not None
    assert digests.digest.hex == hashlib.sha256(blob).hexdigest()
    assert digests.size == len(blob)
    assert digests.diff_id.hex == hashlib.sha256(b"".join(layer.uncompressed())).hexdigest()


def test_gzip_layer_passes_gzip_t(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    blob = blob_of(FileTreeLayer([str(tmp_path / "src")]))
    (tmp_path / "layer.tgz").write_bytes(blob)
    subprocess.run(["gzip", "-t", str(tmp_path / "layer.tgz")], check=True)
    listing = subprocess.run(
        ["tar", "-tzf", str(tmp_path / "layer.tgz")], check=True, capture_output=True, text=True
    )
    assert "src/app/main.py" in listing.stdout.splitlines()


def test_same_tree_same_digests_even_after_touch_or_copy(tmp_path: Path) -> None:
    make_tree(tmp_path / "one")
    first = FileTreeLayer([f"{tmp_path / 'one'}:/app"])
    blob_of(first)
    again = FileTreeLayer([f"{tmp_path / 'one'}:/app"])
    blob_of(again)
    for path in (tmp_path / "one").rglob("*"):
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
    touched = FileTreeLayer([f"{tmp_path / 'one'}:/app"])
    blob_of(touched)
    shutil.copytree(tmp_path / "one", tmp_path / "two", symlinks=True)
    copied = FileTreeLayer([f"{tmp_path / 'two'}:/app"])
    blob_of(copied)
    assert first.known() == again.known() == touched.known()
    # copytree does not keep the hardlink, so the copy differs in exactly that
    assert copied.known() != first.known()
    os.unlink(tmp_path / "one/app/pkg/main-again.py")
    os.unlink(tmp_path / "two/app/pkg/main-again.py")
    blobs = {blob_of(FileTreeLayer([f"{tmp_path / d}:/app"])) for d in ("one", "two")}
    assert len(blobs) == 1


def test_real_mtimes_are_kept_when_asked(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    os.utime(tmp_path / "f", (1_234_567_890, 1_234_567_890))
    layer = FileTreeLayer([f"{tmp_path / 'f'}:/f"], LayerOptions(mtime=None))
    assert tar_of(layer, blob_of(layer)).getmember("f").mtime == 1_234_567_890
    fixed = FileTreeLayer([f"{tmp_path / 'f'}:/f"], LayerOptions(mtime=42))
    assert tar_of(fixed, blob_of(fixed)).getmember("f").mtime == 42


def test_source_date_epoch_sets_the_default_mtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert LayerOptions().mtime == 1_700_000_000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        LayerOptions()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert LayerOptions().mtime == 0


def test_keep_owner(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    os.chown(tmp_path / "f", 1234, 5678)
    layer = FileTreeLayer([f"{tmp_path / 'f'}:/f"], LayerOptions(keep_owner=True))
    member = tar_of(layer, blob_of(layer)).getmember("f")
    assert (member.uid, member.gid) == (1234, 5678)


def test_media_types() -> None:
    assert FileTreeLayer([]).media_type == OCI_LAYER_GZIP
    assert FileTreeLayer([], LayerOptions(compression="zstd")).media_type == OCI_LAYER_ZSTD
    assert FileTreeLayer([], LayerOptions(docker_media_types=True)).media_type == DOCKER_LAYER_GZIP
    docker_plain = LayerOptions(compression="none", docker_media_types=True)
    assert FileTreeLayer([], docker_plain).media_type == DOCKER_LAYER


def test_bad_options_fail_when_made() -> None:
    with pytest.raises(ValueError, match="zstd"):
        LayerOptions(compression="zstd", docker_media_types=True)
    with pytest.raises(ValueError, match="out of range"):
        LayerOptions(compression="gzip", level=11)
    with pytest.raises(ValueError, match="negative"):
        LayerOptions(mtime=-1)


def test_excludes_and_ignore_file_are_applied(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    (tmp_path / "ignore").write_text("**/*.bin\n")
    options = LayerOptions(excludes=("app/run.sh",), ignore_file=str(tmp_path / "ignore"))
    layer = FileTreeLayer([f"{tmp_path / 'src'}:/"], options)
    names = {entry.path for entry in layer.entries}
    assert "app/run.sh" not in names and "app/pkg/data.bin" not in names
    assert "app/main.py" in names


def test_a_missing_source_surfaces_at_first_use(tmp_path: Path) -> None:
    layer = FileTreeLayer([str(tmp_path / "nope")])  # no error yet
    assert "nope" in layer.description
    with pytest.raises(SourceError, match="does not exist"):
        layer.compressed()


def test_in_memory_files_join_the_tree(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    layer = FileTreeLayer(
        [f"{tmp_path / 'src'}:/"],
        extra_files={
            "/app/run.sh": (b"print('generated')\n", 0o600),
            "/srv/gen/entry.sh": (b"#!/bin/sh\n", 0o755),
            "/app/zz.txt": (b"", 0o644),
        },
    )
    tar = tar_of(layer, blob_of(layer))
    assert read_member(tar, "app/run.sh") == b"print('generated')\n"
    assert tar.getmember("app/run.sh").mode == 0o600
    assert read_member(tar, "srv/gen/entry.sh") == b"#!/bin/sh\n"
    assert tar.getmember("srv/gen").isdir() and tar.getmember("srv").mode == 0o755
    assert tar.getmember("app/zz.txt").size == 0
    names = tar.getnames()
    assert names.index("srv") < names.index("srv/gen") < names.index("srv/gen/entry.sh")
    assert read_member(tar, "app/pkg/data.bin") == (tmp_path / "src/app/pkg/data.bin").read_bytes()


def test_in_memory_files_alone(tmp_path: Path) -> None:
    layer = FileTreeLayer([], extra_files={"a/b.txt": (b"B" * 5000, 0o644)})
    tar = tar_of(layer, blob_of(layer))
    assert tar.getnames() == ["a", "a/b.txt"]
    assert read_member(tar, "a/b.txt") == b"B" * 5000


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/app/pkg", "would replace a directory"),
        ("/app/main.py/x", "to be a directory"),
        ("/../etc/passwd", "inside the image"),
        ("/", "inside the image"),
        ("/app/main.py", "hard-link"),
    ],
)
def test_in_memory_file_conflicts(tmp_path: Path, path: str, message: str) -> None:
    make_tree(tmp_path / "src")
    with pytest.raises(SourceError, match=message):
        layer = FileTreeLayer([f"{tmp_path / 'src'}:/"], extra_files={path: (b"x", 0o644)})
        layer.entries  # noqa: B018


def test_known_is_none_until_built(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    layer = FileTreeLayer([str(tmp_path / "f")])
    assert layer.known() is None
    stream = layer.compressed()
    next(stream)
    assert layer.known() is None
    stream.close()
    blob_of(layer)
    assert layer.known() is not None
