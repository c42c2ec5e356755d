"""The seed's training script, built by `append` and by `docker`, really runs in the engine.

Both builders get the same project directory; both images run with `docker run --network
none` against the private dockerd, and print what `train()` prints: the `FAIRING_RUNTIME`
branch ran inside the container, with the image's stand-in `ocibuild` (version `0+runtime`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline._support import child_env, ocibuild_cli
from tests.pipeline.test_seed import NO_CLUSTER, SEED
from tests.support import Registry
from tests.support._engines import RunningEngine

pytestmark = pytest.mark.xdist_group("docker")

TRAINED = "training with 0+runtime in /app\n"
# Each file the image holds under /app and the runtime, with the sha256 of its bytes.
TREE = """\
import hashlib, os
for top in ("/app", "/opt/ocibuild/runtime"):
    for root, dirs, files in sorted(os.walk(top)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                print(path, oct(os.stat(path).st_mode), hashlib.sha256(f.read()).hexdigest())
"""
PINNED = re.compile(r"^(\S+):([0-9a-zA-Z_.-]+)@sha256:[0-9a-f]{64}$")


def make_project(project: Path, base: str, registry: str) -> Path:
    (project / "data").mkdir(parents=True)
    (project / "data" / "labels.csv").write_text("a,b\n1,2\n")
    (project / "train.py").write_text(SEED.format(base=base, registry=registry))
    return project


def tree(engine: RunningEngine, image: str) -> str:
    """The image's files under /app and the runtime, listed by its own Python."""
    argv = ("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", TREE)
    return engine.command(*argv).stdout


def user_env(tmp_path: Path, engine: RunningEngine) -> dict[str, str]:
    """No Kubernetes, no docker credentials, the private engine as DOCKER_HOST."""
    for name in ("home", "kube", "docker-config"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    return child_env(
        HOME=str(tmp_path / "home"),
        KUBECONFIG=str(tmp_path / "kube"),
        DOCKER_CONFIG=str(tmp_path / "docker-config"),
        DOCKER_HOST=engine.host,
        OCIBUILD_CACHE_DIR=str(tmp_path / "cache"),
    )


def test_both_builders_make_images_that_print_the_same_in_the_engine(
    tmp_path: Path, dockerd: RunningEngine, registry: Registry, python_base_in_registry: str
) -> None:
    base = python_base_in_registry.split("@")[0]  # by tag: the docker builder pins it itself
    project = make_project(tmp_path / "project", base, f"{registry.host}/team")
    env = user_env(tmp_path, dockerd)
    ran, trees = {}, {}
    for builder in ("append", "docker"):
        to = f"{registry.host}/e2e/seed-{builder}:1"
        built = ocibuild_cli(
            "build",
            "train.py",
            "--input",
            "data",
            "--builder",
            builder,
            "--base",
            base,
            "--to",
            to,
            env=env,
            cwd=project,
        )
        assert built.returncode == 0, built.stderr
        pushed = built.stdout.strip()
        assert PINNED.match(pushed), pushed
        assert pushed.startswith(to + "@")
        ran[builder] = dockerd.run(pushed)
        trees[builder] = tree(dockerd, pushed)
    assert ran == {"append": TRAINED, "docker": TRAINED}
    assert trees["append"] == trees["docker"]
    assert "/app/train.py 0o100644" in trees["docker"]
    assert "/opt/ocibuild/runtime/ocibuild/__init__.py" in trees["docker"]


def test_the_seed_ported_to_the_docker_builder_runs_as_fairing_users_run_it(
    tmp_path: Path, dockerd: RunningEngine, registry: Registry, python_base_in_registry: str
) -> None:
    base = python_base_in_registry.split("@")[0]
    project = make_project(tmp_path / "project", base, f"{registry.host}/team")
    train = project / "train.py"
    train.write_text(train.read_text().replace('set_builder("append"', 'set_builder("docker"'))
    assert 'set_builder("docker"' in train.read_text()
    proc = subprocess.run(
        [sys.executable, "train.py"],
        cwd=project,
        env=user_env(tmp_path, dockerd),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Built and pushed by the engine; then the default `job` deployer finds no cluster.
    assert proc.returncode == 1, proc.stderr
    match = NO_CLUSTER.match(proc.stderr.strip().splitlines()[-1])
    assert match, proc.stderr
    pushed = match.group(1)
    assert pushed.startswith(f"{registry.host}/team/seed-job:")
    assert PINNED.match(pushed), pushed
    assert dockerd.run(pushed) == TRAINED
