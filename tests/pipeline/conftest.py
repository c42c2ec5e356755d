"""Fixtures of the pipeline tests: Python-flavoured bases, cache dirs, the test plugin."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocibuild.image._image import Image
from ocibuild.image._write import write
from tests.support import BaseImage, Registry

PLUGIN_SRC = Path(__file__).resolve().parents[1] / "plugins" / "ocibuild-testplugin"


@dataclass(frozen=True)
class PythonBases:
    """The busybox base with a PYTHON_VERSION env, as official python images set it."""

    local: str  # oci:...: PYTHON_VERSION = this interpreter's version
    registry: str  # the same image in the test registry
    other: str  # oci:...: PYTHON_VERSION of another minor version


@pytest.fixture(scope="session")
def python_bases(
    tmp_path_factory: pytest.TempPathFactory, base_layout: BaseImage, registry: Registry
) -> PythonBases:
    """Bases that say their Python version, made from ``base_layout`` by ocibuild's own core."""
    layout = tmp_path_factory.mktemp("python-bases") / "layout"
    base = Image.load(base_layout.ref)
    local = base.with_config(env={"PYTHON_VERSION": platform.python_version()})
    other = base.with_config(env={"PYTHON_VERSION": f"3.{sys.version_info[1] - 2}.4"})
    local_ref = write(local, f"oci:{layout}:local").reference.split("@")[0]
    other_ref = write(other, f"oci:{layout}:other").reference.split("@")[0]
    pushed = write(local, f"{registry.host}/base/python:local").reference
    return PythonBases(local_ref, pushed.split("@")[0], other_ref)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A fresh ocibuild cache dir (layer cache, dependency cache)."""
    path = tmp_path / "cache"
    path.mkdir()
    return path


def pip_install_target(source: Path, target: Path) -> Path:
    """``pip install --target`` of a local distribution (flit_core builds it)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return target


def plugin_copy(
    dest: Path, *, dist: str, module: str, entry_point: str, init_text: str | None = None
) -> Path:
    """A renamed copy of the test plugin distribution (another distribution, same code)."""
    shutil.copytree(PLUGIN_SRC, dest, ignore=shutil.ignore_patterns("__pycache__", "build"))
    (dest / "ocibuild_testplugin").rename(dest / module)
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace('name = "ocibuild-testplugin"', f'name = "{dist}"')
    text = text.replace('testplugin = "ocibuild_testplugin"', f'{entry_point} = "{module}"')
    pyproject.write_text(text)
    if init_text is not None:
        (dest / module / "__init__.py").write_text(init_text)
    return dest


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the test plugin installed by pip (for PYTHONPATH)."""
    return pip_install_target(PLUGIN_SRC, tmp_path_factory.mktemp("plugin-site"))
