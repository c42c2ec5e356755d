"""A small Python base image, assembled by ocibuild itself from this machine's Debian Python.

No Docker Hub: the engine tests need an image with a real interpreter, so this one is made
from Debian's python3.11 on top of the busybox test base: one layer holding the interpreter,
the shared libraries `ldd` names (the dynamic loader included), the standard library without
its tests and build files, and pip and setuptools unpacked from Debian's wheels (so that
`pip install --no-index ./some.tar.gz` builds an sdist offline). `ocibuild append` writes it
as an OCI layout, `ocibuild copy` as a docker-archive that `docker load` takes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._images import BaseImage
from ._tools import run

__all__ = [
    "PYBASE_REPO_TAG",
    "PythonBase",
    "make_python_base",
    "push_python_base",
]

PYTHON = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
WHEELS = Path("/usr/share/python-wheels")  # python3-pip-whl, python3-setuptools-whl
SITE_PACKAGES = "/usr/lib/python3/dist-packages"  # where Debian's site.py looks
PYBASE_TAG = "python"
PYBASE_REPO_TAG = "ocibuild-test/python:3.11"
PATH = "/usr/local/bin:/usr/bin:/bin"
_WHEEL_NAMES = ("pip", "setuptools")
_PIP_SCRIPT = """\
#!/usr/bin/python3.11
import sys
from pip._internal.cli.main import main
sys.exit(main())
"""
# Relative to the standard library. EXTERNALLY-MANAGED would make pip refuse to install
# (PEP 668: Debian keeps pip off its own Python), sitecustomize.py is a link into /etc.
_STDLIB_EXCLUDES = (
    "**/__pycache__",
    "test",
    "**/tests",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "pydoc_data",
    "config-3.11-*",
    "EXTERNALLY-MANAGED",
    "sitecustomize.py",
    "lib-dynload/_test*",
    "lib-dynload/_ctypes_test*",
    "lib-dynload/_xxtestfuzz*",
    "lib-dynload/xxlimited*",
    "lib-dynload/_tkinter*",
    "lib-dynload/nis.*",
)
_DYNLOAD_SKIPPED = re.compile(r"^(_test|_ctypes_test|_xxtestfuzz|xxlimited|_tkinter|nis\.)")
_LDD_LIBRARY = re.compile(r"^\s*(\S+) => (/\S+) \(0x[0-9a-f]+\)$")
_LDD_LOADER = re.compile(r"^\s*(/\S+) \(0x[0-9a-f]+\)$")
_MISSING = (
    f"the Python base image needs Debian's {PYTHON}, its standard library and the pip and "
    "setuptools wheels: run `apt-get install -y python3.11 python3.11-venv python3-pip-whl "
    "python3-setuptools-whl`"
)


@dataclass(frozen=True)
class PythonBase:
    """The Python base as an OCI layout (tag `python`) and as a docker-archive."""

    layout: Path
    archive: Path
    repo_tag: str  # what `docker load` of the archive names it
    python_version: str  # "3.11.2"
    manifest_digest: str
    image_id: str  # the config digest: what an engine calls the image
    layer_bytes: int  # the compressed Python layer
    seconds: float  # to assemble and write both forms

    @property
    def ref(self) -> str:
        """The ocibuild/skopeo spelling of the layout, `oci:PATH:python`."""
        return f"oci:{self.layout}:{PYBASE_TAG}"

    @property
    def archive_ref(self) -> str:
        """The ocibuild/skopeo spelling of the archive, `docker-archive:FILE`."""
        return f"docker-archive:{self.archive}"


def make_python_base(workdir: Path, base: BaseImage, cache_dir: Path) -> PythonBase:
    """Build the Python base on `base` under `workdir`; the layer cache lives in `cache_dir`."""
    if not (PYTHON.is_file() and (STDLIB / "os.py").is_file() and WHEELS.is_dir()):
        raise RuntimeError(_MISSING)
    started = time.monotonic()
    version = _python_version()
    _stage(workdir / "stage")
    # Relative, so that the history (which records the arguments) names no temp dir.
    sources = [f"{STDLIB}:{STDLIB}", f"{PYTHON}:{PYTHON}", *_library_sources(), "stage:/"]
    layout, archive = workdir / "layout", workdir / "python.tar"
    env = {**os.environ, "OCIBUILD_CACHE_DIR": str(cache_dir)}
    excludes = [arg for pattern in _STDLIB_EXCLUDES for arg in ("--exclude", pattern)]
    written = _ocibuild(
        "append",
        "--base",
        base.ref,
        "--to",
        f"oci:{layout}:{PYBASE_TAG}",
        *excludes,
        "--env",
        f"PATH={PATH}",
        "--env",
        f"PYTHON_VERSION={version}",
        "--entrypoint",
        "[]",
        "--cmd",
        '["python3"]',
        "--label",
        "ocibuild.test=python",
        *sources,
        env=env,
        cwd=workdir,
    )
    _ocibuild(
        "copy",
        f"oci:{layout}:{PYBASE_TAG}",
        f"docker-archive:{archive}:{PYBASE_REPO_TAG}",
        env=env,
        cwd=workdir,
    )
    manifest = _read_blob(layout, written["digest"])
    return PythonBase(
        layout=layout,
        archive=archive,
        repo_tag=PYBASE_REPO_TAG,
        python_version=version,
        manifest_digest=written["digest"],
        image_id=manifest["config"]["digest"],
        layer_bytes=manifest["layers"][-1]["size"],
        seconds=time.monotonic() - started,
    )


def push_python_base(base: PythonBase, host: str, cache_dir: Path) -> str:
    """Copy the base to the registry at `host` with ocibuild; the reference pinned by digest."""
    repo = f"{host}/{PYBASE_REPO_TAG}"
    env = {**os.environ, "OCIBUILD_CACHE_DIR": str(cache_dir)}
    written = _ocibuild("copy", base.ref, repo, env=env, cwd=base.layout.parent)
    return f"{repo}@{written['digest']}"


def _python_version() -> str:
    proc = run([PYTHON, "-I", "-c", "import platform; print(platform.python_version())"])
    return proc.stdout.decode().strip()


def _stage(stage: Path) -> None:
    """What the host does not have where the image wants it: links, pip's script, the wheels."""
    bindir = stage / "usr" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "python"):
        (bindir / name).symlink_to("python3.11")
    for name in ("pip", "pip3"):
        (bindir / name).write_text(_PIP_SCRIPT)
        (bindir / name).chmod(0o755)
    site = stage / SITE_PACKAGES.lstrip("/")
    for name in _WHEEL_NAMES:
        (wheel,) = WHEELS.glob(f"{name}-*-py3-none-any.whl")
        with zipfile.ZipFile(wheel) as archive:  # a wheel is unpacked as is: that installs it
            archive.extractall(site)


def _library_sources() -> list[str]:
    """`SRC:DEST` for every shared object the interpreter and its extensions load.

    Each library goes to its real directory under its soname (Debian's /lib is a link to
    /usr/lib, which the busybox base lacks), the loader to the path the ELF header asks for.
    """
    extensions = sorted(
        path
        for path in (STDLIB / "lib-dynload").glob("*.so")
        if not _DYNLOAD_SKIPPED.match(path.name)
    )
    proc = run(["ldd", PYTHON, *extensions])
    sources: dict[str, Path] = {}
    for line in proc.stdout.decode().splitlines():
        if match := _LDD_LIBRARY.match(line):
            name, found = match.group(1), Path(match.group(2))
            dest = f"{found.parent.resolve()}/{name}"
        elif match := _LDD_LOADER.match(line):
            found = Path(match.group(1))
            dest = str(found)
        else:
            continue  # a file's header line, or the vDSO
        sources[dest] = found.resolve()
    return [f"{src}:{dest}" for dest, src in sorted(sources.items())]


def _ocibuild(*args: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "ocibuild", *args, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ocibuild {args[0]} of the Python base failed: {proc.stderr.strip()}")
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def _read_blob(layout: Path, digest: str) -> dict[str, Any]:
    algorithm, _, encoded = digest.partition(":")
    blob: dict[str, Any] = json.loads((layout / "blobs" / algorithm / encoded).read_bytes())
    return blob
