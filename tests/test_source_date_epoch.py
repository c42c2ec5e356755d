"""SOURCE_DATE_EPOCH through the real CLI: one reading for layer mtimes and the config's
``created`` time, and a value neither can hold is one line of error with nothing written."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ocibuild.oci._epoch import MAX_EPOCH


def ocibuild(*args: str, epoch: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": epoch},
        timeout=300,
    )


def layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.txt").write_text("hello\n")
    return tmp_path / "src"


@pytest.mark.parametrize("epoch", ["garbage", "99999999999999", "-1", "²"])
@pytest.mark.parametrize(
    "command",
    [
        ["append", "--to", "oci:{out}:t", "{src}:/app"],
        ["append", "--to", "docker-archive:{out}", "{src}:/app"],
        ["copy", "scratch", "oci:{out}:t"],  # only the config's created time reads it
    ],
)
def test_a_bad_value_is_one_line_and_writes_nothing(
    tmp_path: Path, src: Path, cache_dir: Path, epoch: str, command: list[str]
) -> None:
    out = tmp_path / "out"
    proc = ocibuild(*[a.format(out=out, src=src) for a in command], epoch=epoch)
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("ocibuild: error: SOURCE_DATE_EPOCH=") and "unset it" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no temp file


@pytest.mark.parametrize(
    ("epoch", "created"),
    [("1700000000", "2023-11-14T22:13:20Z"), (str(MAX_EPOCH), "2242-03-16T12:56:31Z")],
)
def test_layers_and_config_read_the_same_time(
    tmp_path: Path, src: Path, cache_dir: Path, epoch: str, created: str
) -> None:
    out = tmp_path / "out"
    proc = ocibuild("append", "--json", "--to", f"oci:{out}:t", f"{src}:/app", epoch=epoch)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    manifest = json.loads(layout_blob(out, report["digest"]))
    config = json.loads(layout_blob(out, manifest["config"]["digest"]))
    assert config["created"] == created
    assert {h["created"] for h in config["history"]} == {created}
    layer = gzip.decompress(layout_blob(out, manifest["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        assert {m.mtime for m in tar} == {int(epoch)}
