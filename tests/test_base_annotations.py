"""Digests that depend only on content: which bases are named, how, and when bytes are kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ocibuild.image import Image, load, write
from ocibuild.image._image import base_name
from ocibuild.transports import Location
from tests.support import BaseImage, BaseInRegistry, Registry, skopeo_inspect
from tests.test_append import ocibuild

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "main.py").write_text("print('hi')\n")
    return root


def append(base: str, dest: str, app: Path, *more: str) -> dict[str, Any]:
    proc = ocibuild("append", "--json", "--base", base, "--to", dest, f"{app}:/app", *more)
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def manifest_at(ref: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(skopeo_inspect(f"docker://{ref}", raw=True))
    return raw


def test_both_pinned_spellings_of_a_base_give_one_digest(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    repo = f"{registry.host}/base/oci"
    digest = base_in_registry.oci_digest
    bare = append(f"{repo}@{digest}", f"{registry.host}/pinned/bare:1", app)
    tagged = append(f"{repo}:1@{digest}", f"{registry.host}/pinned/tagged:1", app)

    assert bare["digest"] == tagged["digest"]
    annotations = manifest_at(f"{registry.host}/pinned/tagged:1")["annotations"]
    # The digest chose the content; the tag beside it was never asked, so it is not named.
    assert annotations == {BASE_NAME: f"{repo}@{digest}", BASE_DIGEST: digest}


def test_a_tagged_registry_base_is_named_fully_qualified(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    dest = f"{registry.host}/named/app:1"
    append(f"docker://{base_in_registry.oci}", dest, app)
    annotations = manifest_at(dest)["annotations"]
    assert annotations == {
        BASE_NAME: base_in_registry.oci,
        BASE_DIGEST: base_in_registry.oci_digest,
    }


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("python:3.12", "docker.io/library/python:3.12"),
        ("python", "docker.io/library/python:latest"),
        ("index.docker.io/team/app:1", "docker.io/team/app:1"),
        (f"team/app:1@sha256:{'a' * 64}", f"docker.io/team/app@sha256:{'a' * 64}"),
        (f"reg.example:5000/app@sha256:{'b' * 64}", f"reg.example:5000/app@sha256:{'b' * 64}"),
        ("oci:/home/me/base:1", None),
        ("docker-archive:/tmp/base.tar", None),
        ("docker-daemon:base:1", None),
    ],
)
def test_base_names_are_fully_qualified_registry_references(spelling: str, name: str) -> None:
    assert base_name(Location.parse(spelling)) == name


def test_a_layout_base_gives_the_same_digest_wherever_it_lies(
    tmp_path: Path, base_layout: BaseImage, app: Path, cache_dir: Path
) -> None:
    here, there = tmp_path / "here", tmp_path / "elsewhere" / "deeper"
    shutil.copytree(base_layout.path, here)
    shutil.copytree(base_layout.path, there)
    first = append(f"oci:{here}:{base_layout.tag}", f"oci:{tmp_path / 'a'}:app", app)
    second = append(f"oci:{there}:{base_layout.tag}", f"oci:{tmp_path / 'b'}:app", app)
    assert first["digest"] == second["digest"]


def test_no_base_annotations_leaves_them_out(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    plain = f"{registry.host}/plain/app:1"
    named = f"{registry.host}/plain/app:2"
    without = append(base_in_registry.oci, plain, app, "--no-base-annotations")
    with_them = append(base_in_registry.oci, named, app)
    assert "annotations" not in manifest_at(plain)
    assert without["digest"] != with_them["digest"]

    image = Image.load(base_in_registry.oci).with_config(cmd=["true"])
    result = write(image, f"oci:{app.parent / 'lib'}:x", base_annotations=False)
    assert result.digest != write(image, f"oci:{app.parent / 'lib2'}:x").digest


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_an_image_written_unchanged_keeps_its_manifest_bytes(
    registry: Registry, base_in_registry: BaseInRegistry, kind: str, tmp_path: Path
) -> None:
    source = getattr(base_in_registry, kind)
    original = skopeo_inspect(f"docker://{source}", raw=True)
    image = Image.load(source)
    assert image.is_unchanged

    to_registry = write(image, f"{registry.host}/unchanged/{kind}:1")
    to_layout = write(image, f"oci:{tmp_path}:{kind}")

    assert str(to_registry.digest) == getattr(base_in_registry, f"{kind}_digest")
    assert to_layout.digest == to_registry.digest
    written = skopeo_inspect(f"docker://{registry.host}/unchanged/{kind}:1", raw=True)
    assert written == original


def test_a_changed_image_is_no_longer_written_as_its_origin(
    base_in_registry: BaseInRegistry, tmp_path: Path
) -> None:
    image = Image.load(base_in_registry.oci)
    for changed in (
        image.with_config(env={"A": "1"}),
        image.with_annotations({"k": "v"}),
        image.with_created("2001-02-03T04:05:06Z"),
    ):
        assert not changed.is_unchanged
        result = write(changed, f"oci:{tmp_path}:x")
        assert str(result.digest) != base_in_registry.oci_digest


def test_a_layout_manifest_with_its_own_annotations_is_kept_too(tmp_path: Path) -> None:
    first = write(Image.scratch().with_annotations({"team": "ml"}), f"oci:{tmp_path / 'a'}:x")
    again = write(load(f"oci:{tmp_path / 'a'}:x").images[0], f"oci:{tmp_path / 'b'}:x")
    assert again.digest == first.digest
