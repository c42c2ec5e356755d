"""Multi-platform bases as crane users expect: a narrowed index says so, and lists of
platforms give an index of exactly those."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ocibuild import Image, InvalidPlatformError, Platform, load
from ocibuild.image import copy, inspect
from tests.support import BaseInRegistry, Registry, skopeo_inspect
from tests.test_append import ocibuild

BOTH = "linux/amd64,linux/arm64"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "main.py").write_text("print('hi')\n")
    return root


def raw_index(ref: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(skopeo_inspect(f"docker://{ref}", raw=True))
    return raw


def test_a_narrowed_index_is_one_warning_line_naming_the_choice(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    dest = f"{registry.host}/narrowed/app:1"
    proc = ocibuild("append", "--base", base_in_registry.multi, "--to", dest, f"{app}:/app")
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, proc.stderr
    (line,) = warnings
    assert line.startswith(f"ocibuild: warning: {base_in_registry.multi} is a multi-platform")
    assert "using linux/amd64 only" in line and "linux/arm64" in line
    assert "--platform all" in line
    assert "manifests" not in raw_index(dest)  # one image, as the warning says


def test_no_warning_when_the_platform_is_asked_for(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    dest = f"{registry.host}/asked/app:1"
    proc = ocibuild(
        "append", "--base", base_in_registry.multi, "--platform", "linux/arm64",
        "--to", dest, f"{app}:/app",
    )  # fmt: skip
    assert "warning" not in proc.stderr


def test_append_with_a_platform_list_writes_an_index_of_those(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    dest = f"{registry.host}/listed/app:1"
    proc = ocibuild(
        "append", "--json", "--base", base_in_registry.multi, "--platform", BOTH,
        "--to", dest, f"{app}:/app",
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert report["platforms"] == ["linux/amd64", "linux/arm64"]
    index = raw_index(dest)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    assert "warning" not in proc.stderr


def test_append_onto_scratch_with_a_list_gives_an_index(tmp_path: Path, app: Path) -> None:
    proc = ocibuild(
        "append", "--json", "--platform", "linux/arm64/v8,linux/amd64",
        "--to", f"oci:{tmp_path / 'out'}:x", f"{app}:/app",
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert report["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert report["platforms"] == ["linux/arm64/v8", "linux/amd64"]


def test_copy_with_a_platform_list_keeps_each_image_byte_for_byte(
    registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    dest = f"{registry.host}/copied/subset:1"
    report = json.loads(
        ocibuild("copy", "--json", "--platform", "linux/arm64,linux/amd64",
                 base_in_registry.multi, dest).stdout
    )  # fmt: skip
    assert report["platforms"] == ["linux/arm64", "linux/amd64"]
    digests = [m["digest"] for m in raw_index(dest)["manifests"]]
    wanted = base_in_registry.platform_digests
    assert digests == [wanted["linux/arm64"], wanted["linux/amd64"]]

    result = copy(base_in_registry.multi, f"{registry.host}/copied/lib:1", platform=BOTH)
    assert result.platforms == ("linux/amd64", "linux/arm64")


def test_a_list_on_a_single_image_base_is_one_line_error(
    base_in_registry: BaseInRegistry, app: Path, tmp_path: Path
) -> None:
    proc = ocibuild(
        "append", "--base", base_in_registry.oci, "--platform", BOTH,
        "--to", f"oci:{tmp_path / 'out'}:x", f"{app}:/app", check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"ocibuild: error: {base_in_registry.oci} is a single linux/amd64 image, not "
        "linux/amd64, linux/arm64; drop --platform or pick a matching base"
    ]
    assert not (tmp_path / "out").exists()


def test_the_library_takes_the_same_spellings_everywhere(
    base_in_registry: BaseInRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    arm = Platform.parse("linux/arm64")
    specs: tuple[list[Platform | str] | str, ...] = (
        ["linux/arm64", Platform.parse("linux/amd64")],
        "linux/arm64,linux/amd64",
    )
    for spec in specs:
        loaded = load(base_in_registry.multi, platform=spec)
        assert [str(i.platform) for i in loaded.images] == ["linux/arm64", "linux/amd64"]
    assert Image.load(base_in_registry.multi, platform=arm).platform == arm
    assert Image.load(base_in_registry.multi, platform="linux/arm64").platform == arm
    assert inspect(base_in_registry.multi, platform=arm).config is not None
    assert len(load(base_in_registry.multi, platform="all").images) == 2

    with caplog.at_level(logging.WARNING, logger="ocibuild"):
        Image.load(base_in_registry.multi)
    assert [r.name for r in caplog.records] == ["ocibuild.image"]

    with pytest.raises(InvalidPlatformError, match="use load"):
        Image.load(base_in_registry.multi, platform=BOTH)
    with pytest.raises(InvalidPlatformError):
        load(base_in_registry.multi, platform=42)  # type: ignore[arg-type]
