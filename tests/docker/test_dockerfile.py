"""The Dockerfile path without an engine: the generated Dockerfile, the user's own with its
.dockerignore, and the build context tar (reproducible, streamed), through the docker builder's
dry run and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from ocibuild import PipelineError
from ocibuild.pipeline._context import BuildContext
from ocibuild.pipeline._requirements import Requirements
from ocibuild.pipeline.builders import DockerBuilder
from ocibuild.pipeline.builders._dockerfile import (
    base_images,
    dockerfile_context,
    generated_context,
    requirement_files,
)
from ocibuild.preprocessors import PythonPreprocessor
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import BaseInRegistry

PINNED = "127.0.0.1:5000/base@sha256:" + "ab" * 32
NO_ENGINE = "unix:///nonexistent/ocibuild-test/docker.sock"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("import pkg\nprint('trained')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "secret.cfg").write_text("key=1\n")
    (root / "secret.cfg").chmod(0o600)
    (root / "requirements.txt").write_text("six==1.16.0\n")
    return root


def preprocessed(project: Path, monkeypatch: pytest.MonkeyPatch) -> BuildContext:
    monkeypatch.chdir(project)
    pre = PythonPreprocessor(
        input_files=["train.py", "pkg", "run.sh", "secret.cfg", "requirements.txt"],
        executable="train.py",
        env={"MODE": 'fast "$x"'},
    )
    return pre.preprocess()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def read_member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        file = tar.extractfile(name)
        assert file is not None
        return file.read()


def test_generated_dockerfile_steps_in_order(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = preprocessed(project, monkeypatch)
    text = generated_context(context, PINNED).text
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        f"FROM {PINNED}",
        "WORKDIR /app",
        "ENV OCIBUILD_RUNTIME=1 FAIRING_RUNTIME=1",
        "ENV PYTHONPATH=/opt/ocibuild/runtime:/opt/ocibuild/site-packages"
        "${PYTHONPATH:+:$PYTHONPATH}",
        "ENV PATH=/opt/ocibuild/site-packages/bin:$PATH",
        'ENV MODE="fast \\"\\$x\\""',
        "COPY requirements/ /opt/ocibuild/requirements/",
        'RUN ["python", "-m", "pip", "install", "--no-cache-dir", "--target", '
        '"/opt/ocibuild/site-packages", "-r", "/opt/ocibuild/requirements/requirements.txt"]',
        "COPY files/ /",
        'ENTRYPOINT ["python", "train.py"]',
    ]


def test_same_context_same_bytes(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = generated_context(preprocessed(project, monkeypatch), PINNED)
    first_tar = b"".join(first.stream())
    # The same files elsewhere, with other mtimes: the Dockerfile and the tar do not change.
    copy = tmp_path / "elsewhere" / "project"
    shutil.copytree(project, copy)
    for path in copy.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    second = generated_context(preprocessed(copy, monkeypatch), PINNED)
    assert second.text.encode() == first.text.encode()
    assert b"".join(second.stream()) == first_tar
    assert {m.mtime for m in members(first_tar).values()} == {0}
    assert {(m.uid, m.gid) for m in members(first_tar).values()} == {(0, 0)}
    # A code change changes the context, not the Dockerfile.
    (copy / "train.py").write_text("print('changed')\n")
    third = generated_context(preprocessed(copy, monkeypatch), PINNED)
    assert third.text == first.text
    assert b"".join(third.stream()) != first_tar


def test_files_keep_their_modes_at_their_paths(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = generated_context(preprocessed(project, monkeypatch), PINNED)
    data = b"".join(made.stream())
    found = members(data)
    assert found["files/app/run.sh"].mode == 0o755
    assert found["files/app/secret.cfg"].mode == 0o600
    assert found["files/app/train.py"].mode == 0o644
    assert found["files/app/pkg"].isdir()
    assert read_member(data, "files/app/train.py") == (project / "train.py").read_bytes()
    assert read_member(data, "Dockerfile") == made.text.encode()
    assert read_member(data, "requirements/requirements.txt") == b"six==1.16.0\n"
    runtime = [name for name in found if name.startswith("files/opt/ocibuild/runtime/")]
    assert "files/opt/ocibuild/runtime/ocibuild/__init__.py" in runtime
    assert made.file_list() == [m + ("/" if found[m].isdir() else "") for m in found]


def test_command_in_exec_form() -> None:
    command = ("/usr/bin/python3.11", "-c", "print(\"it's\", 'a $HOME')", "--flag=a b")
    context = BuildContext({}, command, env={})
    text = generated_context(context, PINNED).text
    assert not [line for line in text.splitlines() if line.startswith(("COPY", "RUN"))]
    entrypoint = text.splitlines()[-1]
    assert entrypoint.startswith("ENTRYPOINT [")
    assert tuple(json.loads(entrypoint.removeprefix("ENTRYPOINT "))) == command


def test_requirements_use_the_commands_python_and_their_includes(tmp_path: Path) -> None:
    (tmp_path / "constraints.txt").write_text("six<2\n")
    (tmp_path / "project").mkdir()
    main = tmp_path / "project" / "requirements.txt"
    main.write_text("-r ../base.txt\n-c ../constraints.txt\nrequests\n")
    (tmp_path / "base.txt").write_text("six\n--requirement=constraints.txt\n")
    files = requirement_files(Requirements.from_file(main))
    assert files == {
        "requirements.txt": b"-r 1-base.txt\n-c 2-constraints.txt\nrequests\n",
        "1-base.txt": b"six\n--requirement=2-constraints.txt\n",
        "2-constraints.txt": b"six<2\n",
    }
    context = BuildContext(
        {}, ("python3.11", "main.py"), requirements=Requirements(("six",), "a list")
    )
    text = generated_context(context, PINNED).text
    assert 'RUN ["python3.11", "-m", "pip"' in text


def test_a_line_break_in_the_env_is_refused() -> None:
    context = BuildContext({}, ("python", "a.py"), env={"A": "one\ntwo"})
    with pytest.raises(PipelineError, match="line break"):
        generated_context(context, PINNED)


def test_own_dockerfile_with_dockerignore(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "build" / "keep").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print(1)\n")
    (root / "src" / "app.pyc").write_text("x")
    (root / "build" / "out.o").write_text("o")
    (root / "build" / "keep" / "me.txt").write_text("kept")
    (root / "secret.txt").write_text("s")
    (root / "Dockerfile").write_text("FROM base\nCOPY . /app\n")
    (root / ".dockerignore").write_text(
        "# comments are skipped\nsecret.txt\nbuild\n!build/keep\n**/*.pyc\nDockerfile\n"
    )
    made = dockerfile_context(root / "Dockerfile")
    names = made.file_list()
    assert "secret.txt" not in names and "src/app.pyc" not in names
    assert "build/out.o" not in names
    assert "build/keep/me.txt" in names and "src/app.py" in names
    # Docker sends the Dockerfile even when .dockerignore leaves it out.
    assert made.dockerfile == "Dockerfile" and "Dockerfile" in names
    assert read_member(b"".join(made.stream()), "Dockerfile") == b"FROM base\nCOPY . /app\n"

    # <Dockerfile>.dockerignore beside a Dockerfile outside the context applies to it.
    other = tmp_path / "docker" / "app.Dockerfile"
    other.parent.mkdir()
    other.write_text("FROM base\n")
    (tmp_path / "docker" / "app.Dockerfile.dockerignore").write_text("src\n")
    made = dockerfile_context(other, root)
    assert made.dockerfile == ".dockerfile.ocibuild"
    assert ".dockerfile.ocibuild" in made.file_list()
    assert not any(name.startswith("src") for name in made.file_list())
    assert "secret.txt" in made.file_list()


def test_context_tar_is_streamed(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    big = os.urandom(1 << 20) * 6
    (root / "data.bin").write_bytes(big)
    (root / "Dockerfile").write_text("FROM base\n")
    stream = dockerfile_context(root / "Dockerfile").stream()
    sizes, hasher = [], hashlib.sha256()
    for chunk in stream:  # chunks come as they are read, none holding the whole file
        sizes.append(len(chunk))
        hasher.update(chunk)
    assert len(sizes) >= 6 and max(sizes) <= (1 << 20) + 4096
    expected = b"".join(dockerfile_context(root / "Dockerfile").stream())
    assert hasher.hexdigest() == hashlib.sha256(expected).hexdigest()
    assert read_member(expected, "data.bin") == big


def test_from_lines_name_the_registries_for_credentials() -> None:
    text = (
        "# syntax comment\nARG V=1\nFROM --platform=linux/amd64 reg.example:5000/a/b:1 AS build\n"
        "FROM build\nFROM python:3.11 \\\n  AS two\nFROM ${BASE}\nFROM scratch\n"
    )
    assert base_images(text) == ["reg.example:5000/a/b:1", "python:3.11"]


def test_dry_run_pins_the_base_from_the_registry(
    project: Path, base_in_registry: BaseInRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)  # a dry run needs no engine
    out = io.StringIO()
    builder = DockerBuilder(
        base_image=base_in_registry.docker,
        preprocessor=PythonPreprocessor(input_files=["train.py"]),
        to="docker-daemon:job:1",
        dry_run=True,
        output=out,
    )
    result = builder.build()
    repo = base_in_registry.docker.rsplit(":", 1)[0]
    assert out.getvalue().splitlines()[1] == (f"FROM {repo}:1@{base_in_registry.docker_digest}")
    assert "files/app/train.py" in out.getvalue().splitlines()
    assert not result.pushed and result.image == "docker-daemon:job:1"
    docker_context = builder.docker_context
    assert docker_context is not None
    tar = b"".join(docker_context.stream())
    assert str(result.digest) == "sha256:" + hashlib.sha256(tar).hexdigest()


def test_bases_the_engine_cannot_take(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    pre = PythonPreprocessor(input_files=["train.py"])
    kept = io.StringIO()
    DockerBuilder(
        base_image="docker-daemon:local/base:7",
        preprocessor=pre,
        push=False,
        dry_run=True,
        output=kept,
    ).build()
    assert "FROM local/base:7\n" in kept.getvalue()
    with pytest.raises(PipelineError, match="must be in a registry or in the engine"):
        DockerBuilder(
            base_image=f"oci:{project}:1", preprocessor=pre, push=False, dry_run=True
        ).build()
    with pytest.raises(PipelineError, match="needs registry="):
        DockerBuilder(preprocessor=pre)


def test_cli_dry_run_prints_dockerfile_and_files(project: Path, tmp_path: Path) -> None:
    (project / "Dockerfile").write_text("FROM base\nCOPY . /app\n")
    (project / ".dockerignore").write_text("secret.cfg\n")
    env = child_env(DOCKER_HOST=NO_ENGINE)
    proc = ocibuild_cli(
        "build",
        str(project),
        "--builder",
        "docker",
        "--dockerfile",
        str(project / "Dockerfile"),
        "--dry-run",
        "--to",
        "docker-daemon:job:1",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["FROM base", "COPY . /app"]
    assert "train.py" in lines and "pkg/__init__.py" in lines and "secret.cfg" not in lines

    proc = ocibuild_cli(
        "build",
        str(project / "train.py"),
        "--builder",
        "docker",
        "--dry-run",
        "--base",
        PINNED,
        "--to",
        "docker-daemon:job:1",
        env=env,
        cwd=project,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1] == f"FROM {PINNED}"
    assert "files/app/train.py" in proc.stdout.splitlines()


def test_cli_flags_only_for_a_builder_that_takes_them(project: Path, tmp_path: Path) -> None:
    env = child_env()
    for flags, option in (
        (["--build-arg", "A=1"], "build_args"),
        (["--dry-run"], "dry_run"),
        (["--pull"], "pull"),
    ):
        proc = ocibuild_cli(
            "build", str(project / "train.py"), *flags, "--to", f"oci:{tmp_path}/x:1", env=env
        )
        assert proc.returncode == 2, proc.stderr
        assert f"the builder 'append' has no {option!r} option" in proc.stderr
    proc = ocibuild_cli(
        "build",
        str(project / "train.py"),
        "--builder",
        "docker",
        "--compression",
        "zstd",
        "--to",
        "docker-daemon:x:1",
        env=child_env(DOCKER_HOST=NO_ENGINE),
    )
    assert proc.returncode == 2
    assert "--compression: the builder 'docker' has no 'layer_options' option" in proc.stderr
    proc = ocibuild_cli(
        "build",
        str(project / "train.py"),
        "--builder",
        "docker",
        "--base",
        PINNED,
        "--to",
        "docker-daemon:x:1",
        env=child_env(DOCKER_HOST=NO_ENGINE),
        cwd=project,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "nonexistent/ocibuild-test/docker.sock" in proc.stderr
