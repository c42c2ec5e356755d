"""Dependency layers: real wheels for linux/amd64, a separate layer before the code, reused."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import pytest

from ocibuild import DependencyError
from ocibuild.oci import Platform
from ocibuild.pipeline._requirements import Requirements
from ocibuild.pipeline.builders import AppendBuilder, BuildResult
from ocibuild.pipeline.builders._deps import (
    PythonTarget,
    cache_key,
    pip_platform_tags,
    python_version_from_env,
)
from ocibuild.preprocessors import PythonPreprocessor
from tests.pipeline._support import child_env, ocibuild_cli, unpack
from tests.pipeline.conftest import PythonBases
from tests.support import BaseImage, Registry, skopeo_copy, skopeo_inspect

TRAIN = """\
import numpy
import six
print("numpy", numpy.__version__, "sum", int(numpy.arange(5).sum()), "six", six.__version__)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "requirements.txt").write_text("six\nnumpy\n")
    return root


def build_project(
    project: Path, base: str, dest: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> BuildResult:
    monkeypatch.chdir(project)
    # requirements.txt among the input files is picked up, as Fairing's docker builder did.
    pre = PythonPreprocessor(input_files=["train.py", "requirements.txt"], executable="train.py")
    return AppendBuilder(base_image=base, preprocessor=pre, to=dest, cache_dir=cache_dir).build()


def layer_paths(layout: Path, digest: str) -> list[str]:
    blob = layout / "blobs" / "sha256" / digest.split(":")[1]
    with tarfile.open(fileobj=io.BytesIO(blob.read_bytes()), mode="r:gz") as tar:
        return tar.getnames()


def test_dependency_layer_is_separate_and_reused(
    project: Path,
    tmp_path: Path,
    python_bases: PythonBases,
    registry: Registry,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ocibuild.deps")
    first = build_project(
        project, python_bases.registry, f"{registry.host}/deps/app:1", cache_dir, monkeypatch
    )
    assert "dependency layer: running pip for linux/amd64, CPython 3.11" in caplog.text
    entries = list((cache_dir / "deps").iterdir())
    assert len(entries) == 1
    pip_log = entries[0] / "pip.log"
    pip_log_stat = pip_log.stat()
    assert "Successfully installed" in pip_log.read_text()

    manifest = json.loads(skopeo_inspect(f"docker://{registry.host}/deps/app:1", raw=True))
    config = skopeo_inspect(f"docker://{registry.host}/deps/app:1", config=True)
    history = [h["created_by"] for h in config["history"] if not h.get("empty_layer")]
    assert history[-2:] == [
        "ocibuild: pip install (dependencies)",
        "ocibuild: python train.py (code)",
    ]
    env = config["config"]["Env"]
    assert "PYTHONPATH=/opt/ocibuild/runtime:/opt/ocibuild/site-packages" in env
    assert "PATH=/opt/ocibuild/site-packages/bin:/usr/local/bin:/usr/bin:/bin" in env
    deps_digest, code_digest = (layer["digest"] for layer in manifest["layers"][-2:])

    layout = tmp_path / "copy"
    skopeo_copy(f"docker://{registry.host}/deps/app:1", f"oci:{layout}:1")
    deps_paths = layer_paths(layout, deps_digest)
    assert all(
        p.startswith("opt/ocibuild/site-packages") or "opt/ocibuild".startswith(p)
        for p in deps_paths
    )
    assert "opt/ocibuild/site-packages/numpy/__init__.py" in deps_paths
    assert "opt/ocibuild/site-packages/six.py" in deps_paths
    assert any(p.endswith(".so") for p in deps_paths)  # a real binary wheel
    assert not any(p.endswith(".pyc") for p in deps_paths)  # --no-compile: reproducible
    assert "app/train.py" in layer_paths(layout, code_digest)

    image = unpack(first.image, tmp_path / "unpacked")
    ran = image.run()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("numpy ") and ran.stdout.endswith(" sum 10 six 1.17.0\n")
    # numpy's console scripts point at the image's python3, not at this machine's.
    f2py = image.rootfs / "opt/ocibuild/site-packages/bin/f2py"
    assert f2py.read_text().splitlines()[0] == "#!/usr/bin/env python3"

    # A code change: pip does not run again, the dependency layer is the same blob.
    caplog.clear()
    (project / "train.py").write_text(TRAIN + "print('changed')\n")
    second = build_project(
        project, python_bases.registry, f"{registry.host}/deps/app:2", cache_dir, monkeypatch
    )
    assert "running pip" not in caplog.text
    assert "dependency layer: reusing" in caplog.text
    assert pip_log.stat().st_mtime_ns == pip_log_stat.st_mtime_ns
    assert list((cache_dir / "deps").iterdir()) == entries
    manifest2 = json.loads(skopeo_inspect(f"docker://{registry.host}/deps/app:2", raw=True))
    assert manifest2["layers"][-2]["digest"] == deps_digest
    assert manifest2["layers"][-1]["digest"] != code_digest
    assert second.write is not None
    outcomes = {b.descriptor.digest.encoded: b.outcome for b in second.write.blobs}
    assert outcomes[deps_digest.split(":")[1]] == "exists"  # not uploaded again


def test_no_wheel_names_the_package(
    project: Path,
    tmp_path: Path,
    python_bases: PythonBases,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (project / "requirements.txt").write_text("six\ndocopt==0.6.2\n")  # docopt ships no wheel
    with pytest.raises(DependencyError) as err:
        build_project(
            project, python_bases.local, f"oci:{tmp_path / 'out'}:1", cache_dir, monkeypatch
        )
    message = str(err.value)
    assert "no wheel of docopt==0.6.2 for linux/amd64, CPython 3.11" in message
    assert 'build with the docker builder (builder="docker")' in message
    assert "\n" not in message
    assert [p.name for p in (cache_dir / "deps").iterdir()] == []  # nothing half-installed
    assert not (tmp_path / "out").exists()

    proc = ocibuild_cli(
        "build",
        "train.py",
        "-r",
        "requirements.txt",
        "--base",
        python_bases.local,
        "--to",
        f"oci:{tmp_path / 'out'}:1",
        env=child_env(OCIBUILD_CACHE_DIR=str(cache_dir)),
        cwd=project,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("ocibuild: error: no wheel of docopt==0.6.2")


def test_python_version_is_required(
    project: Path,
    tmp_path: Path,
    base_layout: BaseImage,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(DependencyError, match=r"no PYTHON_VERSION .* pass python_version="):
        build_project(project, base_layout.ref, f"oci:{tmp_path / 'out'}:1", cache_dir, monkeypatch)


def test_requirement_sources(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("six==1.17.0\n")
    (tmp_path / "requirements.txt").write_text("-r base.txt\nnumpy\n")
    from_file = Requirements.coerce(tmp_path / "requirements.txt")
    assert from_file.path == tmp_path / "requirements.txt"
    assert "six==1.17.0" in from_file.fingerprint_text()  # an included file counts
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ["six>=1", "numpy"]\n'
    )
    assert Requirements.coerce(str(tmp_path / "pyproject.toml")).lines == ("six>=1", "numpy")
    assert Requirements.coerce(["six", " ", "numpy"]).lines == ("six", "numpy")
    assert Requirements.coerce(["# nothing"]).is_empty()
    with pytest.raises(DependencyError):
        Requirements.coerce(42)

    target = PythonTarget(Platform("linux", "amd64"), "3.11")
    key = cache_key(from_file, target, ())
    (tmp_path / "base.txt").write_text("six==1.16.0\n")
    assert cache_key(Requirements.coerce(tmp_path / "requirements.txt"), target, ()) != key
    assert cache_key(from_file, PythonTarget(Platform("linux", "arm64"), "3.11"), ()) != key


def test_platform_tags_and_versions() -> None:
    amd64 = pip_platform_tags(Platform("linux", "amd64"))
    assert {
        "manylinux1_x86_64",
        "manylinux2014_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux_2_28_x86_64",
        "linux_x86_64",
    } <= set(amd64)
    arm64 = pip_platform_tags(Platform("linux", "arm64", "v8"))
    assert "manylinux2014_aarch64" in arm64 and "manylinux_2_28_aarch64" in arm64
    with pytest.raises(DependencyError, match="windows/amd64"):
        pip_platform_tags(Platform("windows", "amd64"))
    assert python_version_from_env({"PYTHON_VERSION": "3.12.4"}) == "3.12"
    assert python_version_from_env({"PATH": "/bin"}) is None
