"""The docker CLI against the tests' private engine."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from typing import Protocol

from tests.support import run

__all__ = ["Engine", "docker", "docker_run"]


class Engine(Protocol):
    """What the e2e tests need of an engine fixture: the address to dial."""

    @property
    def host(self) -> str: ...  # "unix:///tmp/.../docker.sock"


def docker(engine: Engine, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`docker -H HOST ARGS`; raises with its stderr when it fails."""
    env = {**os.environ, "DOCKER_CONFIG": _client_config()}
    proc = run(["docker", "-H", engine.host, *args], env=env, timeout=timeout)
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def docker_run(engine: Engine, image: str, *command: str) -> subprocess.CompletedProcess[str]:
    """`docker run --rm --network none IMAGE COMMAND`: the container reaches nothing."""
    return docker(engine, "run", "--rm", "--network", "none", image, *command)


@functools.cache
def _client_config() -> str:
    # An empty client config: the machine's ~/.docker (contexts, credentials) stays out of it.
    directory = tempfile.mkdtemp(prefix="ocibuild-tests-docker-cli-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory
