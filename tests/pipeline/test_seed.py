"""The seed example: Fairing code with only the import changed, against the test registry.

It pushes the image, then the default ``job`` deployer finds no Kubernetes configuration and
stops with NoClusterError naming the pushed image. The image is checked with skopeo and umoci,
and its command runs the same file inside the image's world (``FAIRING_RUNTIME=1``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline._support import child_env, ocibuild_cli, unpack
from tests.support import BaseInRegistry, Registry, skopeo_inspect

SEED = """\
import os

import ocibuild as fairing   # was: from kubeflow import fairing


def train():
    print("training with", fairing.__version__, "in", os.getcwd())


if os.getenv("FAIRING_RUNTIME"):
    train()
else:
    fairing.config.set_preprocessor("python", executable="train.py",
                                    input_files=["train.py", "data/"])
    fairing.config.set_builder("append", base_image="{base}", registry="{registry}",
                               image_name="seed-job", push=True)
    fairing.config.run()
"""

NO_CLUSTER = re.compile(
    r"^ocibuild\.NoClusterError: no Kubernetes configuration or cluster was found "
    r"\(looked at .*\); the image was pushed as (\S+)$"
)


@pytest.fixture
def seed_dir(tmp_path: Path, base_in_registry: BaseInRegistry, registry: Registry) -> Path:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "labels.csv").write_text("a,b\n1,2\n")
    (project / "train.py").write_text(
        SEED.format(base=base_in_registry.oci, registry=f"{registry.host}/team")
    )
    return project


def no_kube_env(tmp_path: Path) -> dict[str, str]:
    """HOME and KUBECONFIG at empty directories: no Kubernetes configuration anywhere."""
    home, kube = tmp_path / "home", tmp_path / "kubeconfig-dir"
    home.mkdir(parents=True)
    kube.mkdir(parents=True)
    return child_env(
        HOME=str(home), KUBECONFIG=str(kube), OCIBUILD_CACHE_DIR=str(tmp_path / "cache")
    )


def test_seed_script_pushes_then_reports_no_cluster(
    seed_dir: Path, tmp_path: Path, registry: Registry
) -> None:
    proc = subprocess.run(
        [sys.executable, "train.py"],
        cwd=seed_dir,
        env=no_kube_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    match = NO_CLUSTER.match(last)
    assert match, last
    pushed = match.group(1)
    assert pushed.startswith(f"{registry.host}/team/seed-job:")
    assert re.search(r"@sha256:[0-9a-f]{64}$", pushed)

    name, digest = pushed.split("@")
    inspected = skopeo_inspect(f"docker://{name}")
    assert inspected["Digest"] == digest
    config = skopeo_inspect(f"docker://{name}", config=True)["config"]
    assert config["Entrypoint"] == ["python", "train.py"]
    assert config["WorkingDir"] == "/app"
    assert {"OCIBUILD_RUNTIME=1", "FAIRING_RUNTIME=1", "PYTHONPATH=/opt/ocibuild/runtime"} <= set(
        config["Env"]
    )

    image = unpack(pushed, tmp_path / "unpacked")
    app = image.files("/app")
    assert app == {
        "/app/train.py": (seed_dir / "train.py").read_bytes(),
        "/app/data/labels.csv": b"a,b\n1,2\n",
    }
    assert (image.rootfs / "bin" / "busybox").is_file()  # the base is underneath
    shim = image.files("/opt/ocibuild/runtime")
    assert set(shim) == {
        "/opt/ocibuild/runtime/ocibuild/__init__.py",
        "/opt/ocibuild/runtime/ocibuild/config.py",
        "/opt/ocibuild/runtime/ocibuild/_runtime/__init__.py",
        "/opt/ocibuild/runtime/ocibuild/_runtime/notebook.py",
        "/opt/ocibuild/runtime/ocibuild/_runtime/function.py",
    }

    ran = image.run()
    assert ran.returncode == 0, ran.stderr
    # The stand-in ocibuild answered inside the image, and train() ran instead of config.run().
    assert ran.stdout == f"training with 0+runtime in {image.rootfs / 'app'}\n"


def tag_of(ref: str) -> str:
    return ref.split("@")[0].rsplit(":", 1)[1]


def test_same_content_gets_the_same_tag(seed_dir: Path, tmp_path: Path) -> None:
    refs = []
    for attempt in range(2):
        proc = subprocess.run(
            [sys.executable, "train.py"],
            cwd=seed_dir,
            env=no_kube_env(tmp_path / str(attempt)),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        match = NO_CLUSTER.match(proc.stderr.strip().splitlines()[-1])
        assert match, proc.stderr
        refs.append(match.group(1))
    assert refs[0] == refs[1]
    (seed_dir / "data" / "labels.csv").write_text("a,b\n1,3\n")
    proc = subprocess.run(
        [sys.executable, "train.py"],
        cwd=seed_dir,
        env=no_kube_env(tmp_path / "2"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    match = NO_CLUSTER.match(proc.stderr.strip().splitlines()[-1])
    assert match, proc.stderr
    assert tag_of(match.group(1)) != tag_of(refs[0])  # new content, new tag


def test_cli_run_shows_one_line(
    seed_dir: Path, tmp_path: Path, base_in_registry: BaseInRegistry, registry: Registry
) -> None:
    proc = ocibuild_cli(
        "run",
        "train.py",
        "--input",
        "data",
        "--base",
        base_in_registry.oci,
        "--registry",
        f"{registry.host}/cli",
        env=no_kube_env(tmp_path),
        cwd=seed_dir,
    )
    assert proc.returncode == 1
    pushed = proc.stdout.strip()
    assert re.fullmatch(
        rf"{re.escape(registry.host)}/cli/ocibuild-job:[0-9a-f]{{16}}"
        r"@sha256:[0-9a-f]{64}",
        pushed,
    )
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ocibuild: error: no Kubernetes configuration or cluster was found")
    assert lines[0].endswith(f"the image was pushed as {pushed}")
    assert skopeo_inspect(f"docker://{pushed.split('@')[0]}")["Digest"] == pushed.split("@")[1]
