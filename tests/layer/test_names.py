"""File names that are not UTF-8, and trees deeper than Python's recursion limit.

Names that are not UTF-8 are stored as their raw bytes in pax path records, as GNU tar
writes them, and GNU tar and umoci give them back byte for byte; the text that goes into JSON
(history, progress) writes such bytes as ``\\xNN``. Options that become config text must be
UTF-8 and are refused up front otherwise.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OCIBUILD = [sys.executable, "-m", "ocibuild"]


def run(*args: str | bytes | Path, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*OCIBUILD, *args], cwd=cwd, capture_output=True, timeout=120)


def layout_image(layout: Path) -> tuple[dict[str, object], list[bytes]]:
    """The config of the single image in ``layout`` and its layer blobs."""
    index = json.loads((layout / "index.json").read_bytes())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
    layers = [(blobs / d["digest"][7:]).read_bytes() for d in manifest["layers"]]
    return config, layers


def unpacked(layout: Path, tmp_path: Path) -> set[bytes]:
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)],
        check=True,
        capture_output=True,
    )
    root = os.fsencode(bundle / "rootfs")
    found = set()
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(top, name), root))
    return found


@pytest.fixture
def odd_tree(tmp_path: Path) -> Path:
    """A source directory, itself named with a byte that is not UTF-8, holding more of them."""
    root = os.fsencode(tmp_path) + b"/src\xff"
    os.makedirs(root + b"/d\xfe")
    with open(root + b"/d\xfe/f\xe9.txt", "wb") as f:
        f.write(b"latin-1 name\n")
    os.symlink(b"f\xe9.txt", root + b"/d\xfe/link")
    return Path(os.fsdecode(root))


def test_names_that_are_not_utf8_are_stored_raw(tmp_path: Path, odd_tree: Path) -> None:
    layout = tmp_path / "out"
    done = run(
        "append", "--base", "scratch", "--to", f"oci:{layout}:v1", f"{odd_tree}:/app", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    config, [layer] = layout_image(layout)
    assert r"src\xff:/app" in config["history"][0]["created_by"]  # type: ignore[index]
    tar = gzip.decompress(layer)
    assert b" path=app/d\xfe/f\xe9.txt\n" in tar
    listed = subprocess.run(["tar", "-tf", "-"], input=tar, capture_output=True, check=True)
    assert listed.stderr == b""  # no warning: GNU tar writes such names the same way
    assert b"app/d\\376/f\\351.txt" in listed.stdout.splitlines()  # tar's escape of the bytes
    assert unpacked(layout, tmp_path) >= {b"app/d\xfe/f\xe9.txt", b"app/d\xfe/link"}
    assert os.readlink(os.fsencode(tmp_path / "bundle/rootfs") + b"/app/d\xfe/link") == b"f\xe9.txt"


def test_a_tarball_path_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t/a").write_text("a")
    tarball = os.fsencode(tmp_path) + b"/layer\xff.tar"
    subprocess.run([b"tar", b"-cf", tarball, b"-C", os.fsencode(tmp_path / "t"), b"a"], check=True)
    layout = tmp_path / "out"
    done = run(
        "append", "--base", "scratch", "--to", f"oci:{layout}:v1", "-f", tarball, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    config, _ = layout_image(layout)
    assert r"layer\xff.tar" in config["history"][0]["created_by"]  # type: ignore[index]


@pytest.mark.parametrize(
    "option",
    [
        [b"--env", b"A=\xff"],
        [b"--label", b"k=\xfe"],
        [b"--annotation", b"k=\xfe"],
        [b"--workdir", b"/w\xff"],
        [b"--cmd", b"run\xff"],
        [b"--entrypoint", b'["x\xff"]'],
    ],
)
def test_options_that_are_not_utf8_are_refused_up_front(
    tmp_path: Path, option: list[bytes]
) -> None:
    (tmp_path / "src").mkdir()
    layout = tmp_path / "out"
    done = run(
        "append", "--base", "scratch", "--to", f"oci:{layout}:v1", *option, "src", cwd=tmp_path
    )
    assert done.returncode == 2
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    assert len(lines) == 1 and "not valid UTF-8" in lines[0], done.stderr
    assert not layout.exists()


def test_a_tree_600_directories_deep(tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    leaf = deep.joinpath(*["d"] * 600)
    leaf.mkdir(parents=True)
    (leaf / "f").write_text("bottom")
    layout = tmp_path / "out"
    done = run("append", "--base", "scratch", "--to", f"oci:{layout}:v1", "deep", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _, [layer] = layout_image(layout)
    listed = subprocess.run(["tar", "-tzf", "-"], input=layer, capture_output=True, check=True)
    assert ("deep/" + "d/" * 600 + "f").encode() in listed.stdout.splitlines()
