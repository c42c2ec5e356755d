"""Hostile ``index.json``, ``oci-layout`` and docker-archive ``manifest.json`` files, and
documents too large to read whole: each is one ``TransportError`` line naming the file and the
field, never a traceback, ``MemoryError`` or ``RecursionError``; nothing large is read."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from ocibuild._errors import TransportError
from ocibuild.cli._main import main
from ocibuild.image import Image, write
from ocibuild.layer import FileTreeLayer
from ocibuild.oci import media_types as mt
from ocibuild.transports._archive import ArchiveSource
from ocibuild.transports._layout import LayoutSink, LayoutSource

DIGEST = "sha256:" + "a" * 64
DEEP = b'{"manifests": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
BIG = 9 << 20  # past the 8 MiB read whole
ENTRY = {"mediaType": mt.OCI_MANIFEST, "digest": DIGEST, "size": 10}


@pytest.fixture
def layout(tmp_path: Path, cache_dir: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    image = Image.scratch().append(FileTreeLayer([f"{tmp_path / 'src'}:/app"]))
    write(image, f"oci:{tmp_path}/lay")
    return tmp_path / "lay"


def index_with(**fields: Any) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("index.json", index_with(manifests=["x"]), "manifests[0] must be a descriptor object"),
        ("index.json", index_with(manifests={"a": ENTRY}), "field 'manifests' must be a list"),
        (
            "index.json",
            index_with(manifests=[{**ENTRY, "size": 10**18}]),
            "manifests[0] field 'size' must be a whole number",
        ),
        (
            "index.json",
            index_with(manifests=[{**ENTRY, "size": -1}]),
            "manifests[0] field 'size' must be a whole number",
        ),
        (
            "index.json",
            index_with(manifests=[{**ENTRY, "annotations": {"a": 1}}]),
            "manifests[0] field 'annotations' must be an object of strings",
        ),
        (
            "index.json",
            index_with(manifests=[], annotations=["a"]),
            "field 'annotations' must be an object of strings",
        ),
        (
            "index.json",
            index_with(manifests=[{**ENTRY, "platform": {"os": 1}}]),
            "manifests[0].platform",
        ),
        ("index.json", index_with(manifests=[{**ENTRY, "digest": "x"}]), "manifests[0]: invalid"),
        ("index.json", b"[]", "is not a JSON object"),
        ("index.json", DEEP, "nests JSON too deeply"),
        ("index.json", b" " * BIG + b"{}", "larger than 8 MiB"),
        ("oci-layout", b'{"imageLayoutVersion": 1}', "'imageLayoutVersion' must be a string"),
        ("oci-layout", b'"1.0.0"', "is not a JSON object"),
    ],
)
def test_hostile_layout_files(
    layout: Path, name: str, data: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (layout / name).write_bytes(data)
    for opening in (LayoutSource, LayoutSink):
        with pytest.raises(TransportError) as caught:
            opening(layout)
        text = str(caught.value)
        assert "\n" not in text and message in text and str(layout / name) in text, text
    assert main(["inspect", f"oci:{layout}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_layout_blob_too_large_to_read_whole_is_not_read(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    blob = layout / "blobs" / "sha256" / entry["digest"].split(":")[1]
    blob.write_bytes(blob.read_bytes() + b" " * BIG)  # as large as the entry says
    entry["size"] = blob.stat().st_size
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(TransportError, match="may be at most 8 MiB"):
        LayoutSource(layout).get_manifest()


def archive(path: Path, manifest: bytes, config: bytes | None = None) -> Path:
    config = config or json.dumps({"rootfs": {"type": "layers", "diff_ids": []}}).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("c.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def entry_with(**fields: Any) -> bytes:
    return json.dumps([{"Config": "c.json", "RepoTags": ["a:b"], "Layers": [], **fields}]).encode()


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (entry_with(Layers=[1]), "manifest.json[0] in {} field 'Layers' must be a list of strings"),
        (entry_with(Layers="l.tar"), "field 'Layers' must be a list of strings"),
        (entry_with(RepoTags="a:b"), "field 'RepoTags' must be a list of strings"),
        (entry_with(RepoTags=[None]), "field 'RepoTags' must be a list of strings"),
        (entry_with(Config=["c.json"]), "field 'Config' must be a string"),
        (b"[" * 100_000 + b"]" * 100_000, "nests JSON too deeply"),
        (b'{"Config": "c.json"}', "is not a list of images"),
        (b" " * BIG + entry_with(), "manifest.json and configs are read whole"),
    ],
)
def test_hostile_manifest_json(tmp_path: Path, manifest: bytes, message: str) -> None:
    path = archive(tmp_path / "a.tar", manifest)
    with pytest.raises(TransportError) as caught:
        ArchiveSource(path).get_manifest()
    text = str(caught.value)
    assert "\n" not in text and message.format(path) in text and str(path) in text, text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (b" " * BIG + b"{}", "c.json in docker-archive {} is 9437186 bytes"),
        (b'{"rootfs": {"diff_ids": "sha256:x"}}', "field 'diff_ids' must be a list of strings"),
        (b"[" * 100_000 + b"]" * 100_000, "nests JSON too deeply"),
    ],
)
def test_hostile_archive_configs(tmp_path: Path, config: bytes, message: str) -> None:
    path = archive(tmp_path / "a.tar", entry_with(), config)
    with pytest.raises(TransportError) as caught:
        ArchiveSource(path).get_manifest()
    text = str(caught.value)
    assert "\n" not in text and message.format(path) in text, text
