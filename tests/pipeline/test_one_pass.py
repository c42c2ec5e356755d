"""A cold pipeline build reads every file of every layer exactly once.

The default tag must not cost a throwaway build of the layers: the build runs in a subprocess
whose audit hook (``_count_opens.py``) counts each ``open`` of the project's files (the code
layer) and of the installed requirements (the dependency layer). The layer cache's fingerprint
walk only stats, so one open per file is one pass over the layer's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import ocibuild
from ocibuild.pipeline.builders import AppendBuilder, BuildResult
from ocibuild.preprocessors import PythonPreprocessor
from tests.pipeline._support import child_env
from tests.pipeline.conftest import PythonBases
from tests.support import Registry, skopeo_inspect

COUNTER = Path(__file__).with_name("_count_opens.py")

SEED = """\
import os

import ocibuild as fairing


def train():
    print("training")


if os.getenv("FAIRING_RUNTIME"):
    train()
else:
    fairing.config.set_preprocessor("python", executable="train.py",
                                    input_files=["train.py", "data/"],
                                    requirements=["{wheel}"])
    fairing.config.set_builder("append", base_image="{base}", registry="{registry}",
                               image_name="one-pass", push=True)
    fairing.config.run()
"""

PUSHED = re.compile(r"pushed as (\S+)$")


def make_wheel(directory: Path) -> Path:
    """A pure-Python wheel written by hand, so pip installs it without any index."""
    files = {
        "onepass_dep/__init__.py": b"VALUE = 1\n",
        "onepass_dep/data.txt": b"x" * 100_000,
        "onepass_dep-1.0.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: onepass-dep\nVersion: 1.0\n"
        ),
        "onepass_dep-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [f"{name},sha256={_b64_sha256(data)},{len(data)}" for name, data in files.items()]
    record.append("onepass_dep-1.0.dist-info/RECORD,,")
    wheel = directory / "onepass_dep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("onepass_dep-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def _b64_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.fixture
def project(tmp_path: Path, python_bases: PythonBases, registry: Registry) -> Path:
    root = tmp_path.resolve() / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "labels.csv").write_text("a,b\n1,2\n" * 10_000)
    wheel = make_wheel(tmp_path.resolve())
    (root / "train.py").write_text(
        SEED.format(wheel=wheel, base=python_bases.local, registry=f"{registry.host}/team")
    )
    return root


def counted_build(
    project: Path, cache: Path, out: Path, *command: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    (project.parent / "home").mkdir(exist_ok=True)
    env = child_env(
        HOME=str(project.parent / "home"),
        KUBECONFIG=str(project.parent / "no-kubeconfig"),
        OCIBUILD_CACHE_DIR=str(cache),
        COUNT_OPENS_UNDER=f"{project}:{cache / 'deps'}",
        COUNT_OPENS_OUT=str(out),
    )
    proc = subprocess.run(
        [sys.executable, str(COUNTER), *command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    counts: dict[str, int] = json.loads(out.read_text())
    return proc, counts


def installed_files(cache: Path) -> dict[str, Path]:
    """The files pip installed (the dependency layer's content), by path below site-packages."""
    (site,) = cache.glob("deps/*/site-packages")
    return {f"site/{p.relative_to(site)}": p for p in site.rglob("*") if p.is_file()}


@pytest.mark.parametrize("front_door", ["seed script", "ocibuild run --registry"])
def test_cold_build_reads_each_layer_once(
    project: Path, tmp_path: Path, registry: Registry, front_door: str
) -> None:
    cache = tmp_path / "cache"
    if front_door == "seed script":
        command: tuple[str, ...] = ("train.py",)
    else:
        wheel = str(tmp_path.resolve() / "onepass_dep-1.0-py3-none-any.whl")
        (project / "requirements.txt").write_text(wheel + "\n")
        command = ("-m", "ocibuild", "run", "train.py", "--input", "data")
        command += ("--requirements", "requirements.txt", "--base", _base(project))
        command += ("--registry", f"{registry.host}/team", "--image-name", "one-pass")
    proc, counts = counted_build(project, cache, tmp_path / "opens.json", *command)
    # The job deployer finds no cluster: the build and the push are done by then.
    assert proc.returncode == 1, proc.stderr
    pushed = PUSHED.search(proc.stderr.strip().splitlines()[-1])
    assert pushed, proc.stderr
    reference = pushed.group(1)
    assert re.fullmatch(
        rf"{re.escape(registry.host)}/team/one-pass:[0-9a-f]{{16}}@sha256:[0-9a-f]{{64}}",
        reference,
    )
    name, digest = reference.split("@")
    assert skopeo_inspect(f"docker://{name}")["Digest"] == digest
    assert name.endswith(":" + digest.removeprefix("sha256:")[:16])  # the tag names the content

    code = {"train.py": project / "train.py", "data/labels.csv": project / "data/labels.csv"}
    deps = installed_files(cache)
    assert len(deps) >= 4  # the module, its data, METADATA, WHEEL, RECORD, ...
    layer_files = {**code, **deps}
    reads = {name: counts.get(str(path), 0) for name, path in layer_files.items()}
    # An empty file (pip's REQUESTED) has no bytes to read: the tar writer never opens it.
    assert reads == {name: int(path.stat().st_size > 0) for name, path in layer_files.items()}

    # Warm: the layer cache knows both layers and the registry has them, so nothing is read.
    proc, counts = counted_build(project, cache, tmp_path / "opens-warm.json", *command)
    assert proc.stderr.strip().endswith(f"pushed as {reference}"), proc.stderr
    assert {name: counts.get(str(path), 0) for name, path in layer_files.items()} == dict.fromkeys(
        layer_files, 0
    )


def test_default_tag_tags_the_layout_by_digest(
    tmp_path: Path, python_bases: PythonBases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a registry the image goes to a layout in the cache dir, tagged the same way."""
    (tmp_path / "job.py").write_text("print('job')\n")
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"

    def build(**options: Any) -> BuildResult:
        pre = PythonPreprocessor(input_files=["job.py"])
        return AppendBuilder(
            base_image=python_bases.local, preprocessor=pre, push=False, cache_dir=cache, **options
        ).build()

    default = build()
    layout = cache / "images" / "ocibuild-job"
    tag = default.digest.hex[:16]
    assert default.image == f"oci:{layout}:{tag}@{default.digest}"
    assert ocibuild.load(f"oci:{layout}:{tag}").digest == default.digest
    assert not default.pushed

    named = build(tag="v1")
    assert named.image == f"oci:{layout}:v1@{default.digest}"  # same content, same digest
    exact = build(to=f"oci:{tmp_path / 'out'}:given")
    assert exact.image == f"oci:{tmp_path / 'out'}:given@{default.digest}"
    tags = [m["annotations"]["org.opencontainers.image.ref.name"] for m in _index(layout)]
    assert sorted(tags) == sorted([tag, "v1"])


def _index(layout: Path) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = json.loads((layout / "index.json").read_text())["manifests"]
    return manifests


def _base(project: Path) -> str:
    """The base the seed script names (the Python base in a local layout)."""
    match = re.search(r'base_image="([^"]+)"', (project / "train.py").read_text())
    assert match
    return match.group(1)
