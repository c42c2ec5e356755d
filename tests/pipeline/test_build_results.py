"""`ocibuild build --digest-file/--image-refs/--quiet`: the results CI reads, from a build."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipeline._support import child_env, ocibuild_cli
from tests.pipeline.conftest import PythonBases


def test_build_writes_the_digest_and_refs_files(tmp_path: Path, python_bases: PythonBases) -> None:
    script = tmp_path / "main.py"
    script.write_text("print('hi')\n")
    env = child_env(OCIBUILD_CACHE_DIR=str(tmp_path / "cache"))
    layout = tmp_path / "out"
    digest_file, refs = tmp_path / "digest", tmp_path / "refs"
    proc = ocibuild_cli(
        "build", str(script), "--base", python_bases.local, "--to", f"oci:{layout}:app",
        "--digest-file", str(digest_file), "--image-refs", str(refs), "--quiet", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (reference,) = proc.stdout.splitlines()
    digest = digest_file.read_text()
    assert reference == f"oci:{layout}:app@{digest}"
    assert refs.read_text() == reference + "\n"
    index = json.loads((layout / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest]

    both = ocibuild_cli(
        "build", str(script), "--base", python_bases.local, "--to", f"oci:{layout}:x",
        "--quiet", "--json", env=env,
    )  # fmt: skip
    assert both.returncode == 2 and "--quiet and --json" in both.stderr
