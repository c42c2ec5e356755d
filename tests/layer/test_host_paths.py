"""SRC paths mean what the kernel means: ``link/..`` is the parent of the link's target.

Every test compares with what ``ls`` (which asks the kernel) shows for the same spelling, in
a tree where the lexical reading (``link/..`` = the directory holding the link) names other,
existing files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ocibuild._errors import SourceError
from ocibuild.layer import FileTreeLayer
from ocibuild.layer._tree import Source, host_path, walk


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``proj/link`` -> ``elsewhere/deep/target``; ``proj`` has its own files to be mistaken."""
    deep = tmp_path / "elsewhere" / "deep"
    (deep / "target").mkdir(parents=True)
    (deep / "target" / "t").write_bytes(b"in target")
    (deep / "sibling.txt").write_bytes(b"beside the target")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "own.txt").write_bytes(b"beside the link")
    (proj / "sibling.txt").write_bytes(b"the lexical reading")
    (proj / "link").symlink_to("../elsewhere/deep/target")
    monkeypatch.chdir(proj)
    return proj


def ls(path: str) -> list[str]:
    done = subprocess.run(["ls", "-A", path], capture_output=True, text=True, check=True)
    return sorted(done.stdout.split())


def test_dotdot_after_a_link_is_the_parent_of_its_target(proj: Path) -> None:
    got = walk([Source.parse("link/..:/app")])
    top = sorted(e.path.removeprefix("app/") for e in got if e.path.count("/") == 1)
    assert top == ls("link/..") == ["sibling.txt", "target"]
    files = {e.path: Path(e.source).read_bytes() for e in got if e.source}
    assert files["app/sibling.txt"] == b"beside the target"


def test_default_dest_is_the_name_of_the_resolved_directory(proj: Path) -> None:
    assert Source.parse("link/..").dest == "/deep"
    assert Source.parse("link").dest == "/link"  # a link source keeps its own name


def test_a_file_reached_through_dotdot_after_a_link(proj: Path) -> None:
    (entry,) = [e for e in walk([Source.parse("link/../sibling.txt:/s")]) if e.kind == "file"]
    assert Path(entry.source or "").read_bytes() == b"beside the target"
    assert host_path("link/../sibling.txt") == str(proj.parent / "elsewhere/deep/sibling.txt")


def test_a_source_that_is_a_link_is_still_walked_through_its_name(proj: Path) -> None:
    got = {e.path: e for e in walk([Source.parse("link:/d")])}
    assert got["d/t"].source == str(proj / "link" / "t")
    assert host_path("link") == str(proj / "link")


@pytest.mark.parametrize(
    ("spec", "why"),
    [("missing/..", "does not exist"), ("own.txt/..", "Not a directory")],
)
def test_dotdot_after_what_is_no_directory_fails_as_ls_does(
    proj: Path, spec: str, why: str
) -> None:
    done = subprocess.run(["ls", spec], capture_output=True, text=True)
    assert done.returncode != 0  # the lexical reading would be '.', which exists
    with pytest.raises(SourceError, match=why):
        walk([Source.parse(spec)])


def test_filetree_layer_packs_the_kernels_directory(proj: Path) -> None:
    layer = FileTreeLayer(["link/..:/app"])
    assert sorted(e.path for e in layer.entries) == [
        "app",
        "app/sibling.txt",
        "app/target",
        "app/target/t",
    ]


def test_append_cli_packs_the_kernels_directory(
    proj: Path, tmp_path: Path, cache_dir: Path
) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "ocibuild", "append", "--to", f"oci:{out}:x", "link/..:/app"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    index = json.loads((out / "index.json").read_text())
    manifest = json.loads((out / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    layer = out / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    with tarfile.open(layer) as tar:
        names = sorted(m.name for m in tar.getmembers())
        data = tar.extractfile("app/sibling.txt").read()  # type: ignore[union-attr]
    assert names == ["app", "app/sibling.txt", "app/target", "app/target/t"]
    assert data == b"beside the target"
