"""A Dockerfile whose `RUN` installs a package no wheel exists for: an sdist made in the test.

This is what the append builder cannot do (it refuses a requirement without a wheel for the
image and points at the docker builder): the engine runs pip inside the Python base, which
builds the sdist with setuptools, offline (`--no-index`, the RUN steps on `--network none`).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import Registry
from tests.support._engines import RunningEngine

pytestmark = pytest.mark.xdist_group("docker")

TINY_X = "built from an sdist in the engine"
# No pyproject.toml: pip then runs setup.py with the image's setuptools, where a pyproject
# would have it fetch a build backend from an index it is not given.
SETUP = "from setuptools import setup\nsetup(name={name!r}, version='0.1', py_modules=[{name!r}])\n"
BROKEN_SETUP = "import sys\nsys.exit('broken: this package needs a C compiler')\n"
DOCKERFILE = """\
FROM {base}
WORKDIR /src
COPY {sdist} ./
RUN pip install --no-index ./{sdist}
"""


def make_context(tmp_path: Path, base: str, name: str, setup: str, module: str) -> Path:
    """A build context: the Dockerfile and the sdist it installs."""
    context = tmp_path / "context"
    context.mkdir()
    sdist = write_sdist(context, name, setup, module)
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=base, sdist=sdist))
    return context


def write_sdist(directory: Path, name: str, setup: str, module: str) -> str:
    """`NAME-0.1.tar.gz` as `setup.py sdist` lays it out, written with the stdlib alone."""
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        "setup.py": setup,
        f"{name}.py": module,
    }
    filename = f"{name}-0.1.tar.gz"
    with tarfile.open(directory / filename, "w:gz") as sdist:
        for path, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"{name}-0.1/{path}")
            member.size, member.mode, member.mtime = len(data), 0o644, 1_700_000_000
            sdist.addfile(member, io.BytesIO(data))
    return filename


def build(context: Path, to: str, engine: RunningEngine, tmp_path: Path) -> tuple[int, str, str]:
    """`ocibuild build CONTEXT --builder docker --dockerfile CONTEXT/Dockerfile --to TO`."""
    env = child_env(DOCKER_HOST=engine.host, OCIBUILD_CACHE_DIR=str(tmp_path / "cache"))
    proc = ocibuild_cli(
        "build", str(context), "--builder", "docker", "--dockerfile", str(context / "Dockerfile"),
        "--network", "none", "--to", to, env=env,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def test_a_run_step_installs_an_sdist_and_the_import_works(
    tmp_path: Path, dockerd: RunningEngine, python_base_in_registry: str
) -> None:
    setup, module = SETUP.format(name="tiny"), f"X = {TINY_X!r}\n"
    context = make_context(tmp_path, python_base_in_registry, "tiny", setup, module)
    code, out, err = build(context, "docker-daemon:ocibuild-e2e/tiny:1", dockerd, tmp_path)
    assert code == 0, err
    assert out.strip().startswith("docker-daemon:ocibuild-e2e/tiny:1@sha256:")
    image_id = out.strip().split("@")[1]
    assert dockerd.image_id("ocibuild-e2e/tiny:1") == image_id
    script = "import tiny; print(tiny.X); print(tiny.__file__)"
    assert dockerd.run("ocibuild-e2e/tiny:1", "python", "-c", script).splitlines() == [
        TINY_X,
        "/usr/local/lib/python3.11/dist-packages/tiny.py",  # pip's, not copied by COPY
    ]


def test_an_sdist_that_fails_to_build_is_one_line_naming_the_step(
    tmp_path: Path, dockerd: RunningEngine, registry: Registry, python_base_in_registry: str
) -> None:
    context = make_context(tmp_path, python_base_in_registry, "broken", BROKEN_SETUP, "X = 1\n")
    code, out, err = build(context, f"{registry.host}/e2e/broken:1", dockerd, tmp_path)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith("ocibuild: error: the build failed at step ")
    assert "RUN pip install --no-index ./broken-0.1.tar.gz" in err
    step, _, output = err.partition("last output:")
    assert "Traceback" not in step
    assert "broken: this package needs a C compiler" in output  # what setup.py said, via pip
    answer = httpx.get(f"{registry.url}/v2/e2e/broken/tags/list")
    assert answer.status_code == 404  # nothing pushed: the repository does not exist
