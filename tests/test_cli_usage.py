"""Usage errors exit 2 with one line naming the flag; pipeline errors speak flags on the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import BaseInRegistry, Registry, skopeo_inspect
from tests.test_append import ocibuild

USER = "expected USER[:GROUP] (a name or id, and optionally a group)"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "main.py").write_text("print('hi')\n")
    return root


@pytest.mark.parametrize(
    ("flags", "last_line"),
    [
        (
            ["--level", "99"],
            "ocibuild: error: --level: gzip level 99 is out of range; use 0 (stored) to 9 "
            "(smallest)",
        ),
        (
            ["--compression", "zstd", "--level", "0"],
            "ocibuild: error: --level: zstd level 0 is out of range; use 1 (fastest) to 22 "
            "(smallest)",
        ),
        (
            ["--mtime", "bad"],
            "ocibuild: error: --mtime expects seconds since 1970 or 'keep', got 'bad'",
        ),
        (["--user", "a:b:c"], f"ocibuild append: error: argument --user: {USER}, got 'a:b:c'"),
        (["--user", "app:"], f"ocibuild append: error: argument --user: {USER}, got 'app:'"),
        (["--user", ":0"], f"ocibuild append: error: argument --user: {USER}, got ':0'"),
        (
            ["--platform", "linux"],
            "ocibuild append: error: argument --platform: invalid platform 'linux': expected "
            "os/arch[/variant], e.g. linux/amd64",
        ),
        (
            ["--platform", "linux/amd64,arm"],
            "ocibuild append: error: argument --platform: invalid platform 'arm': expected "
            "os/arch[/variant], e.g. linux/amd64",
        ),
        (
            ["--base", "Bad/Base"],
            "ocibuild append: error: argument --base/-b: invalid image reference 'Bad/Base': "
            "repository component 'Base' is invalid (repository names must be lowercase)",
        ),
    ],
)
def test_a_bad_append_option_is_a_usage_error_naming_it(
    tmp_path: Path, app: Path, flags: list[str], last_line: str
) -> None:
    out = tmp_path / "out"
    proc = ocibuild("append", "--to", f"oci:{out}:t", f"{app}:/app", *flags, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == last_line
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "last_line"),
    [
        (
            ["cache", "prune", "--keep", "-1"],
            "ocibuild cache prune: error: argument --keep: expected a whole number, 0 or more, "
            "got '-1'",
        ),
        (
            ["cache", "prune", "--older-than-days", "nan"],
            "ocibuild cache prune: error: argument --older-than-days: expected a number of "
            "days, 0 or more, got 'nan'",
        ),
        (
            ["inspect", "--platform", "linux/amd64,linux/arm64", "oci:/nowhere:x"],
            "ocibuild inspect: error: argument --platform: invalid platform "
            "'linux/amd64,linux/arm64': expected os/arch[/variant], e.g. linux/amd64",
        ),
        (
            ["copy", "--platform", "linux", "oci:/nowhere:x", "oci:/nowhere-else:x"],
            "ocibuild copy: error: argument --platform: invalid platform 'linux': expected "
            "os/arch[/variant], e.g. linux/amd64",
        ),
    ],
)
def test_bad_values_of_other_commands_are_usage_errors(
    args: list[str], last_line: str, cache_dir: Path
) -> None:
    proc = ocibuild(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == last_line


@pytest.mark.parametrize("user", ["app", "1000", "1000:1000", "app:staff"])
def test_user_and_group_spellings_are_taken(tmp_path: Path, app: Path, user: str) -> None:
    ocibuild("append", "--to", f"oci:{tmp_path / 'out'}:t", f"{app}:/app", "--user", user)
    assert skopeo_inspect(f"oci:{tmp_path / 'out'}:t", config=True)["config"]["User"] == user


def test_a_directory_without_one_script_is_told_in_flags(tmp_path: Path, app: Path) -> None:
    (app / "other.py").write_text("print('other')\n")
    proc = ocibuild(
        "build", str(app), "--base", "scratch", "--to", f"oci:{tmp_path}:t", check=False
    )
    assert proc.returncode == 2  # caught before any pull: a usage error
    assert proc.stderr.strip().splitlines() == [
        "ocibuild: error: no executable: the target holds no single top-level .py file; give "
        "--executable FILE (a path in the target directory), or --command with the whole command"
    ]


def test_no_base_annotations_reaches_the_append_builder(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    plain, named = f"{registry.host}/built/plain:1", f"{registry.host}/built/named:1"
    for dest, more in ((plain, ["--no-base-annotations"]), (named, [])):
        ocibuild("build", str(app / "main.py"), "--base", base_in_registry.oci, "--to", dest, *more)
    assert "annotations" not in json.loads(skopeo_inspect(f"docker://{plain}", raw=True))
    annotations = json.loads(skopeo_inspect(f"docker://{named}", raw=True))["annotations"]
    assert annotations["org.opencontainers.image.base.name"] == base_in_registry.oci


def test_the_append_builder_builds_a_platform_list_as_an_index(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    dest = f"{registry.host}/built/multi:1"
    proc = ocibuild(
        "build", str(app / "main.py"), "--base", base_in_registry.multi,
        "--platform", "linux/arm64,linux/amd64", "--to", dest, "--json",
    )  # fmt: skip
    assert json.loads(proc.stdout)["platforms"] == ["linux/arm64", "linux/amd64"]
    index = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64", "amd64"]


def test_no_base_annotations_on_a_builder_without_them_is_a_usage_error(
    tmp_path: Path, app: Path
) -> None:
    proc = ocibuild(
        "build", str(app / "main.py"), "--builder", "docker", "--no-base-annotations",
        "--to", f"oci:{tmp_path}:t", check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "ocibuild: error: --no-base-annotations: the builder 'docker' has no "
            "'base_annotations' option"
        )
    )
