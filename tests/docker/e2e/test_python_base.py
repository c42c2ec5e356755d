"""The Python base the engine tests stand on: what its layer holds, and that an engine runs it."""

from __future__ import annotations

import json
import tarfile

import pytest

from tests.support import skopeo_inspect
from tests.support._engines import RunningEngine
from tests.support._pybase import PYBASE_REPO_TAG, PythonBase

pytestmark = pytest.mark.xdist_group("docker")  # one worker builds the base, once

# Enough to be a base (gzip of the interpreter, its libraries, the stdlib, pip, setuptools),
# small enough that each worker builds it in seconds; Debian's stdlib alone is 54 MB on disk.
MAX_LAYER_BYTES = 24 * 1024 * 1024

IMPORTS = "encodings, json, pickle, ssl, hashlib, sqlite3, ctypes, lzma, bz2, zlib, venv, pip"


def layer_names(base: PythonBase) -> set[str]:
    manifest = json.loads(_blob(base, base.manifest_digest))
    digest = manifest["layers"][-1]["digest"]
    with tarfile.open(base.layout / "blobs" / "sha256" / digest.split(":")[1]) as layer:
        return {"/" + name.rstrip("/") for name in layer.getnames()}


def _blob(base: PythonBase, digest: str) -> bytes:
    return (base.layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def test_the_layer_holds_python_its_libraries_and_pip_without_tests(
    python_base: PythonBase,
) -> None:
    names = layer_names(python_base)
    stdlib = "/usr/lib/python3.11"
    assert {
        "/lib64/ld-linux-x86-64.so.2",  # the loader at the path the ELF header names
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",  # needed by lib-dynload/_ssl, not python3.11
        "/usr/bin/python3.11",
        "/usr/bin/python3",
        "/usr/bin/python",
        "/usr/bin/pip",
        f"{stdlib}/os.py",  # the landmark by which Python finds its prefix
        f"{stdlib}/encodings/__init__.py",
        f"{stdlib}/json/__init__.py",
        f"{stdlib}/pickle.py",
        f"{stdlib}/venv/__init__.py",
        f"{stdlib}/ensurepip/__init__.py",
        f"{stdlib}/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
        "/usr/lib/python3/dist-packages/pip/__init__.py",
        "/usr/lib/python3/dist-packages/setuptools/__init__.py",
    } <= names
    left_out = {
        f"{stdlib}/test",
        f"{stdlib}/EXTERNALLY-MANAGED",  # pip would refuse to install into the image
        f"{stdlib}/config-3.11-x86_64-linux-gnu",
        f"{stdlib}/lib-dynload/_testcapi.cpython-311-x86_64-linux-gnu.so",
    }
    assert not left_out & names
    assert not [name for name in names if "__pycache__" in name]
    assert python_base.layer_bytes < MAX_LAYER_BYTES


def test_config_and_the_archive_agree_with_the_layout(python_base: PythonBase) -> None:
    config = skopeo_inspect(python_base.ref, config=True)["config"]
    assert f"PYTHON_VERSION={python_base.python_version}" in config["Env"]
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in config["Env"]
    assert config["Cmd"] == ["python3"]
    assert "Entrypoint" not in config  # the busybox base's `sh -c` is gone
    assert python_base.python_version.startswith("3.11.")
    archived = json.loads(skopeo_inspect(python_base.archive_ref, raw=True))
    assert archived["config"]["digest"] == python_base.image_id


def test_dockerd_loads_the_archive_and_runs_python_and_pip(
    python_base: PythonBase, dockerd: RunningEngine
) -> None:
    loaded = dockerd.command("load", "-i", str(python_base.archive))
    # The last line: another test of the session may have loaded it already.
    assert loaded.stdout.strip().splitlines()[-1] == f"Loaded image: {PYBASE_REPO_TAG}"
    assert dockerd.image_id(PYBASE_REPO_TAG) == python_base.image_id
    script = f"import platform, {IMPORTS}; print(platform.python_version())"
    assert dockerd.run(PYBASE_REPO_TAG, "python", "-c", script) == f"{python_base.python_version}\n"
    pip = dockerd.run(PYBASE_REPO_TAG, "pip", "--version")
    assert pip.startswith("pip ")
    assert "/usr/lib/python3/dist-packages/pip" in pip
