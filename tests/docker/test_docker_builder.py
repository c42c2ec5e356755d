"""The docker builder against real engines: dockerd's legacy builder and BuildKit, podman's
service; build args, target and labels; a failing step; a push with ocibuild's credentials."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import logging
import os
import pty
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ocibuild
from ocibuild import config
from ocibuild.pipeline.builders import DockerBuilder, DockerBuildError
from ocibuild.preprocessors import PythonPreprocessor
from ocibuild.transports.registry import RegistryOptions
from tests.docker._pybase_fixtures import python_base, python_base_in_registry
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import BaseImage, BaseInRegistry, Registry, skopeo_copy
from tests.support._engines import RunningEngine

pytestmark = pytest.mark.xdist_group("docker")
__all__ = ["python_base", "python_base_in_registry"]  # fixtures, taken by import


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print('trained')\n")
    (root / "pkg" / "data.txt").write_text("data\n")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "secret.cfg").write_text("key=1\n")
    (root / "secret.cfg").chmod(0o600)
    monkeypatch.chdir(root)
    return root


def preprocessor() -> PythonPreprocessor:
    return PythonPreprocessor(
        input_files=["train.py", "pkg", "run.sh", "secret.cfg"], executable="train.py"
    )


def inspect(engine: RunningEngine, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(engine.command("image", "inspect", name).stdout)
    return found[0]


def shell(engine: RunningEngine, image: str, script: str) -> str:
    """``script`` run by the image's busybox sh, without its entrypoint, with no network."""
    argv = ("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", script)
    return engine.command(*argv).stdout


def tags(registry: Registry, repository: str, auth: tuple[str, str] | None = None) -> list[str]:
    answer = httpx.get(f"{registry.url}/v2/{repository}/tags/list", auth=auth)
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return list(answer.json().get("tags") or [])


@pytest.mark.parametrize("buildkit", [False, True], ids=["legacy", "buildkit"])
def test_generated_dockerfile_builds_in_dockerd(
    buildkit: bool,
    project: Path,
    dockerd: RunningEngine,
    base_in_registry: BaseInRegistry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    name = f"ocibuild-test/generated-{'bk' if buildkit else 'legacy'}"
    builder = DockerBuilder(
        base_image=base_in_registry.docker,
        preprocessor=preprocessor(),
        to=f"docker-daemon:{name}:1",
        buildkit=buildkit,
    )
    with caplog.at_level(logging.INFO, logger="ocibuild.builders"):
        result = builder.build()
    image_id = dockerd.image_id(f"{name}:1")
    assert result.image == f"docker-daemon:{name}:1@{image_id}"
    assert str(result.digest) == image_id and not result.pushed
    steps = [r.getMessage() for r in caplog.records if r.name == "ocibuild.builders"]
    assert any("COPY files/ /" in step for step in steps)
    assert any("] FROM " in step and "@sha256:" in step for step in steps)  # pinned

    listing = shell(dockerd, f"{name}:1", "ls -l /app; cat /app/pkg/data.txt; env")
    modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines() if " " in line}
    assert modes["run.sh"] == "-rwxr-xr-x"
    assert modes["secret.cfg"] == "-rw-------"
    assert modes["train.py"] == "-rw-r--r--"
    assert "data\n" in listing
    assert "OCIBUILD_RUNTIME=1" in listing and "FAIRING_RUNTIME=1" in listing
    config_ = inspect(dockerd, f"{name}:1")["Config"]
    assert config_["Entrypoint"] == ["python", "train.py"] and not config_["Cmd"]
    assert config_["WorkingDir"] == "/app"
    spec = builder.generate_pod_spec()
    assert spec["containers"][0]["image"] == result.image
    assert spec["containers"][0]["command"] == ["python", "train.py"]


def test_build_args_target_and_labels(
    tmp_path: Path, dockerd: RunningEngine, base_in_registry: BaseInRegistry
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_in_registry.docker} AS first\n"
        "ARG GREETING=unset\n"
        'RUN echo "$GREETING" > /greeting\n'
        'CMD ["cat /greeting"]\n'  # the base's entrypoint is sh -c
        "FROM first AS second\n"
        "RUN echo second > /greeting\n"
    )
    builder = DockerBuilder(
        dockerfile=context / "Dockerfile",
        to="docker-daemon:ocibuild-test/args:1",
        build_args={"GREETING": "hello from a build arg"},
        target="first",
        labels={"team": "ml", "ocibuild.test": "labels"},
        network="none",  # BuildKit runs RUN steps on the bridge, which this dockerd has not
        docker_host=dockerd.host,
    )
    result = builder.build()
    image = result.image.split("@")[0].removeprefix("docker-daemon:")
    assert dockerd.run(image) == "hello from a build arg\n"  # the target stage, with the ARG
    labels = inspect(dockerd, image)["Config"]["Labels"]
    assert labels["team"] == "ml" and labels["ocibuild.test"] == "labels"
    # Without a preprocessor, the pipeline runs what the image runs.
    command = builder.generate_pod_spec()["containers"][0]["command"]
    assert command == ["/bin/sh", "-c", "cat /greeting"]


@pytest.mark.parametrize("buildkit", [False, True], ids=["legacy", "buildkit"])
def test_failing_step_is_one_line_and_moves_nothing(
    buildkit: bool,
    tmp_path: Path,
    dockerd: RunningEngine,
    registry: Registry,
    base_in_registry: BaseInRegistry,
) -> None:
    repository = f"fail/{'bk' if buildkit else 'legacy'}"
    context = tmp_path / "ctx"
    context.mkdir()
    good = context / "good.Dockerfile"
    good.write_text(f"FROM {base_in_registry.docker}\nRUN echo fine > /fine\n")
    before = DockerBuilder(
        dockerfile=good,
        to=f"{registry.host}/{repository}:1",
        push=False,
        network="none",
        docker_host=dockerd.host,
    ).build()
    (context / "Dockerfile").write_text(
        f"FROM {base_in_registry.docker}\n"
        "RUN echo fine > /fine\n"
        "RUN echo first line; X=cause; echo the $X of it >&2; exit 3\n"
        "RUN echo never\n"
    )
    builder = DockerBuilder(
        dockerfile=context / "Dockerfile",
        to=f"{registry.host}/{repository}:1",
        buildkit=buildkit,
        network="none",
        docker_host=dockerd.host,
    )
    with pytest.raises(DockerBuildError) as raised:
        builder.build()
    message = str(raised.value)
    assert "\n" not in message
    assert "RUN echo first line; X=cause; echo the $X of it >&2; exit 3" in message
    assert "the cause of it" in message.split("last output:")[1]
    assert "exit code: 3" in message or "non-zero code: 3" in message
    assert tags(registry, repository) == []  # nothing pushed
    assert dockerd.image_id(f"{registry.host}/{repository}:1") == str(before.digest)  # no tag moved

    if not buildkit:
        env = child_env(DOCKER_HOST=dockerd.host)
        proc = ocibuild_cli(
            "build", str(context), "--builder", "docker", "--dockerfile",
            str(context / "Dockerfile"), "--network", "none",
            "--to", f"{registry.host}/{repository}:2", env=env,
        )  # fmt: skip
        assert proc.returncode == 1
        assert proc.stderr.startswith("ocibuild: error: the build failed at step [3/4] RUN echo")
        assert proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_push_with_ocibuild_credentials_never_shown(
    tmp_path: Path,
    project: Path,
    dockerd: RunningEngine,
    basic_registry: Registry,
    base_layout: BaseImage,
    local_base: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user, password = basic_registry.username or "", basic_registry.password or ""
    # The base sits behind the same auth: the build's pull needs X-Registry-Config too.
    base = f"{basic_registry.host}/private/base:1"
    skopeo_copy(base_layout.ref, f"docker://{base}", creds=basic_registry.creds, format="v2s2")
    # What `ocibuild login` would have stored; DOCKER_CONFIG points ocibuild (only) at it.
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {basic_registry.host: {"auth": pair}}})
    )
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)

    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(ocibuild.OCIBuildError) as refused:  # no credentials: one-line refusal
        DockerBuilder(
            base_image=local_base,
            preprocessor=preprocessor(),
            to=f"{basic_registry.host}/team/anonymous:1",
            registry_options=RegistryOptions(auth_file=str(empty)),
        ).build()
    assert "could not push" in str(refused.value) and "\n" not in str(refused.value)
    assert tags(basic_registry, "team/anonymous", (user, password)) == []

    env = child_env(DOCKER_HOST=dockerd.host, DOCKER_CONFIG=str(docker_config), OCIBUILD_DEBUG="1")
    proc = ocibuild_cli(
        "build", "train.py", "--input", "run.sh", "--builder", "docker", "--base", base,
        "--to", f"{basic_registry.host}/team/job:1", env=env, cwd=project,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    reference = proc.stdout.strip()
    assert reference.startswith(f"{basic_registry.host}/team/job:1@sha256:")
    assert f"] FROM {base}@sha256:" in proc.stderr  # pinned through the registry's auth
    digest = reference.split("@")[1]
    assert tags(basic_registry, "team/job", (user, password)) == ["1"]
    manifest = httpx.get(
        f"{basic_registry.url}/v2/team/job/manifests/{digest}",
        auth=(user, password),
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200  # the registry has the digest the result names

    secrets = [password, pair, base64.urlsafe_b64encode(password.encode()).decode().rstrip("=")]
    shown = proc.stdout + proc.stderr + caplog.text + str(refused.value)
    shown += dockerd.log_path.read_text(errors="replace")  # and the engine logged none either
    assert "X-Registry" not in shown
    for secret in secrets:
        assert secret not in shown


@pytest.fixture
def local_base(dockerd: RunningEngine, base_in_registry: BaseInRegistry) -> str:
    """The busybox base in dockerd under a local tag (no registry needed to build on it)."""
    name = "ocibuild-test/local-base:1"
    dockerd.command("pull", base_in_registry.docker)
    dockerd.command("tag", base_in_registry.docker, name)
    return name


def test_podman_builds_the_same_dockerfile(
    project: Path, podman: RunningEngine, base_in_registry: BaseInRegistry
) -> None:
    (project / "Dockerfile").write_text(
        f"FROM {base_in_registry.docker}\nRUN echo built in podman > /built\nCOPY . /app/\n"
    )
    builder = DockerBuilder(
        dockerfile=project / "Dockerfile",
        to="docker-daemon:ocibuild-test/podman:1",
        network="none",
        docker_host=podman.host,
    )
    result = builder.build()
    assert result.image.startswith("docker-daemon:ocibuild-test/podman:1@sha256:")
    out = shell(podman, "ocibuild-test/podman:1", "cat /built; ls -l /app")
    assert out.startswith("built in podman\n")
    lines = out.splitlines()
    assert any(line.startswith("-rwxr-xr-x") and line.endswith("run.sh") for line in lines)

    generated = DockerBuilder(
        base_image=base_in_registry.docker,
        preprocessor=preprocessor(),
        push=False,
        image_name="ocibuild-test/podman-generated",
        docker_host=podman.host,
    ).build()
    name = generated.image.split("@")[0].removeprefix("docker-daemon:")
    assert shell(podman, name, "cat /app/pkg/data.txt") == "data\n"


def test_selectable_by_name(
    project: Path, dockerd: RunningEngine, local_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    config.reset()
    try:
        config.set_preprocessor("python", input_files=["train.py"])
        config.set_builder("docker", base_image="docker-daemon:" + local_base, push=False)
        image = config.build()
    finally:
        config.reset()
    assert image.startswith("docker-daemon:ocibuild-job:")
    result = ocibuild.run(
        "train.py", builder="docker", deployer="local", base_image=local_base, push=False
    )
    assert result.image.startswith("docker-daemon:ocibuild-job:")
    assert result.handle.wait().phase == "succeeded"


def cli_on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """``ocibuild ARGS`` with stderr on a pseudo-terminal: exit status, stdout, stderr."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ocibuild", *args],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=env,
            cwd=cwd,
            timeout=300,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    return proc.returncode, proc.stdout.decode(), b"".join(chunks).decode().replace("\r\n", "\n")


def test_steps_on_a_terminal_and_quiet_with_json(
    project: Path, dockerd: RunningEngine, local_base: str
) -> None:
    env = child_env(DOCKER_HOST=dockerd.host)
    args = ["build", "train.py", "--builder", "docker", "--base", f"docker-daemon:{local_base}"]
    args += ["--to", "docker-daemon:ocibuild-test/terminal:1"]
    status, out, err = cli_on_a_terminal(args, env, project)
    assert status == 0, err
    steps = [line for line in err.splitlines() if line.startswith("ocibuild: info: ")]
    assert any("] COPY files/ /" in line for line in steps), err
    assert any("] FROM " in line for line in steps)
    assert out.startswith("docker-daemon:ocibuild-test/terminal:1@sha256:")
    status, out, err = cli_on_a_terminal([*args, "--json"], env, project)
    assert status == 0, err
    assert err == "" and out.startswith("docker-daemon:ocibuild-test/terminal:1@sha256:")


def tiny_wheel(directory: Path) -> Path:
    """A pure-Python wheel of ``tinydep`` 1.0, written by hand (no build tool, no index)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tinydep-1.0-py3-none-any.whl"
    files = {
        "tinydep/__init__.py": "ANSWER = 'tinydep answers'\n",
        "tinydep-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr("tinydep-1.0.dist-info/RECORD", "".join(f"{n},,\n" for n in files))
    return path


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """``directory`` over HTTP on loopback; the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("buildkit", [False, True], ids=["legacy", "buildkit"])
def test_requirements_are_installed_by_pip_in_the_image(
    buildkit: bool,
    tmp_path: Path,
    project: Path,
    dockerd: RunningEngine,
    python_base_in_registry: str,
) -> None:
    tiny_wheel(tmp_path / "wheels")
    (project / "train.py").write_text("import tinydep\nprint(tinydep.ANSWER)\n")
    with serve(tmp_path / "wheels") as index:
        # The RUN step reaches this machine's loopback (network host), and nothing else.
        (project / "requirements.txt").write_text(f"--no-index\n--find-links {index}\ntinydep\n")
        result = DockerBuilder(
            base_image=python_base_in_registry.split("@")[0],
            preprocessor=PythonPreprocessor(
                input_files=["train.py", "requirements.txt"], executable="train.py"
            ),
            to=f"docker-daemon:ocibuild-test/deps-{'bk' if buildkit else 'legacy'}:1",
            buildkit=buildkit,
            network="host",
            docker_host=dockerd.host,
        ).build()
    image = result.image.split("@")[0].removeprefix("docker-daemon:")
    assert dockerd.run(image) == "tinydep answers\n"
    installed = dockerd.command(
        "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c",
        "import tinydep; print(tinydep.__file__)",
    ).stdout  # fmt: skip
    assert installed == "/opt/ocibuild/site-packages/tinydep/__init__.py\n"
