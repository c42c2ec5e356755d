"""Text that no JSON document can hold is refused when it is set on an image, not when the
manifest is written after the layers were pushed (surrogate escapes come from file names and
arguments that are not UTF-8)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocibuild._errors import InvalidOptionError
from ocibuild.image import Image, write
from ocibuild.layer import FileTreeLayer
from ocibuild.oci import Platform

BAD = os.fsdecode(b"caf\xe9")  # 'caf\udce9': Latin-1 bytes read as a file name


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"org.example.note": BAD}, r"annotation 'org\.example\.note' value 'caf\\xe9'"),
        ({BAD: "x"}, r"annotation key 'caf\\xe9'"),
        ({"org.example.n": 1}, "annotation 'org.example.n' value must be a string, not int"),
        ({2: "x"}, "annotation key must be a string, not int"),
    ],
)
def test_with_annotations_refuses_what_json_cannot_hold(
    annotations: dict[Any, Any], message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message) as caught:
        Image.scratch().with_annotations(annotations)
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidOptionError, match=message):
        Image(Image.scratch().config, annotations=annotations)


def test_the_refusal_comes_before_any_blob_is_written(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "f").write_text("x")
    image = Image.scratch().append(FileTreeLayer([f"{tmp_path / 'f'}:/f"]))
    with pytest.raises(InvalidOptionError):
        write(image.with_annotations({"k": BAD}), f"oci:{tmp_path}/out")
    assert not (tmp_path / "out").exists()


def test_with_created_and_with_platform_refuse_it_too() -> None:
    with pytest.raises(InvalidOptionError, match=r"created time 'caf\\xe9'"):
        Image.scratch().with_created(BAD)
    with pytest.raises(InvalidOptionError, match=r"platform architecture 'caf\\xe9'"):
        Image.scratch().with_platform(Platform("linux", BAD))


def test_a_base_path_that_is_not_utf8_is_read_and_never_named(
    tmp_path: Path, cache_dir: Path
) -> None:
    base = tmp_path / BAD
    write(Image.scratch(), f"oci:{base}:b")
    out = tmp_path / "out"
    changed = Image.load(f"oci:{base}:b").with_config(cmd=["true"])
    write(changed, f"oci:{out}:t")
    index = json.loads((out / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs" / "sha256" / digest).read_text())
    assert "annotations" not in manifest  # a local path is no base name
