"""Fuzzing the transports' own JSON files: a real layout's ``index.json`` and ``oci-layout``,
and a real docker-archive's ``manifest.json`` and config, each damaged one field at a time
(or replaced by any JSON, or by bytes). Opening, loading and copying the image must work or
raise one ``OCIBuildError`` line (:func:`parses_or_refuses`).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import example, given

from ocibuild.image import Image, load, write
from ocibuild.layer import FileTreeLayer
from ocibuild.transports._layout import LayoutSink
from tests.fuzz._fuzz import FUZZ, parses_or_refuses
from tests.fuzz.test_documents_fuzz import documents

DEEP = b"[" * 100_000 + b"]" * 100_000
# Placeholders the strategies are built with (before any fixture runs): each case swaps in
# the real digests and sizes, so damaged documents reach past them into the image.
_ENTRY: dict[str, Any] = {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + "b" * 64,
    "size": 400,
    "annotations": {"org.opencontainers.image.ref.name": "t"},
}
_DIFF = "sha256:" + "c" * 64


class Originals:
    """A real layout and a real docker-archive of one small image, and their JSON files."""

    def __init__(self, root: Path) -> None:
        (root / "src").mkdir()
        (root / "src" / "f").write_text("fuzz")
        image = Image.scratch().append(FileTreeLayer([f"{root / 'src'}:/app"]))
        self.layout = root / "layout"
        write(image, f"oci:{self.layout}:t")
        self.archive = root / "image.tar"
        write(image, f"docker-archive:{self.archive}:fuzz:t")
        self.index = json.loads((self.layout / "index.json").read_bytes())
        self.header = json.loads((self.layout / "oci-layout").read_bytes())
        with tarfile.open(self.archive) as tar:
            self.members = {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
            }
        self.manifest_json = json.loads(self.members["manifest.json"])
        self.config_name = self.manifest_json[0]["Config"]
        self.config = json.loads(self.members[self.config_name])
        self.work = root / "work"


@pytest.fixture(scope="module")
def originals() -> Iterator[Originals]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Originals(Path(tmp))


def _use(spec: str, out: Path) -> None:
    """Load what ``spec`` names and copy its first image into a fresh layout."""
    loaded = load(spec)
    shutil.rmtree(out, ignore_errors=True)
    write(loaded.images[0], f"oci:{out}")


def _layout_with(originals: Originals, name: str, data: bytes) -> Path:
    lay = originals.work / "layout"
    shutil.rmtree(lay, ignore_errors=True)
    shutil.copytree(originals.layout, lay)
    (lay / name).write_bytes(data)
    return lay


def _archive_with(originals: Originals, name: str, data: bytes) -> Path:
    originals.work.mkdir(exist_ok=True)
    path = originals.work / "image.tar"
    with tarfile.open(path, "w") as tar:
        for member, content in {**originals.members, name: data}.items():
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def _check_layout(originals: Originals, name: str, data: bytes) -> None:
    lay = _layout_with(originals, name, data)
    parses_or_refuses(lambda: _use(f"oci:{lay}", originals.work / "copy"))
    parses_or_refuses(lambda: LayoutSink(lay, "again"))


def _check_archive(originals: Originals, name: str, data: bytes) -> None:
    path = _archive_with(originals, name, data)
    parses_or_refuses(lambda: _use(f"docker-archive:{path}", originals.work / "copy"))


def index_documents() -> Any:
    return documents({"schemaVersion": 2, "manifests": [_ENTRY]})


@FUZZ
@given(data=index_documents())
@example(data=json.dumps({"manifests": ["x"]}).encode())
@example(data=json.dumps({"manifests": {"a": _ENTRY}}).encode())
@example(data=json.dumps({"manifests": [{**_ENTRY, "size": 10**18}]}).encode())
@example(data=json.dumps({"manifests": [{**_ENTRY, "annotations": {"a": 1}}]}).encode())
@example(data=b'{"manifests": ' + DEEP + b"}")
def test_damaged_index_json(originals: Originals, data: bytes) -> None:
    _check_layout(originals, "index.json", _real_entry(originals, data))


def _real_entry(originals: Originals, data: bytes) -> bytes:
    """``data`` with the placeholder entry's digest and size made the real manifest's, so the
    damaged documents reach past the entry into the manifest and its blobs."""
    real = originals.index["manifests"][0]
    return data.replace(_ENTRY["digest"].encode(), real["digest"].encode()).replace(
        b'"size": 400', f'"size": {real["size"]}'.encode()
    )


@FUZZ
@given(data=documents({"imageLayoutVersion": "1.0.0"}))
@example(data=b'{"imageLayoutVersion": 1}')
def test_damaged_oci_layout(originals: Originals, data: bytes) -> None:
    _check_layout(originals, "oci-layout", data)


@FUZZ
@given(data=documents(cast(Any, [{"Config": "c", "RepoTags": ["fuzz:t"], "Layers": ["l"]}])))
@example(data=json.dumps([{"Config": "c", "Layers": [1]}]).encode())
@example(data=json.dumps([{"Config": "c", "Layers": [], "RepoTags": "fuzz:t"}]).encode())
@example(data=DEEP)
def test_damaged_manifest_json(originals: Originals, data: bytes) -> None:
    entry = originals.manifest_json[0]
    real = data.replace(b'"c"', json.dumps(entry["Config"]).encode()).replace(
        b'["l"]', json.dumps(entry["Layers"]).encode()
    )
    _check_archive(originals, "manifest.json", real)


@FUZZ
@given(data=documents({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": [_DIFF]}}))
@example(data=json.dumps({"rootfs": {"diff_ids": "sha256:x"}}).encode())
@example(data=DEEP)
def test_damaged_archive_config(originals: Originals, data: bytes) -> None:
    real = data.replace(_DIFF.encode(), originals.config["rootfs"]["diff_ids"][0].encode())
    _check_archive(originals, originals.config_name, real)
