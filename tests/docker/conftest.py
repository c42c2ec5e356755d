"""The engine test bed: a private dockerd and a podman ``system service`` per test session
(per xdist worker), each on its own socket with its own vfs storage.

Tests that use an engine carry ``@pytest.mark.xdist_group("docker")`` so that ``--dist
loadgroup`` keeps them on one worker and its engines. A missing binary fails; nothing skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Registry
from tests.support._engines import RunningEngine, start_dockerd, start_podman


@pytest.fixture(scope="session")
def dockerd() -> Iterator[RunningEngine]:
    """A dockerd (`.host` its DOCKER_HOST, `.env` for its CLI, `.run(image, *args)`)."""
    with start_dockerd() as engine:
        yield engine


@pytest.fixture(scope="session")
def podman(registry: Registry) -> Iterator[RunningEngine]:
    """podman's Docker-compatible service; the plain test registry is insecure to it."""
    with start_podman([registry.host]) as engine:
        yield engine


@pytest.fixture(params=["dockerd", "podman"])
def engine(request: pytest.FixtureRequest) -> RunningEngine:
    """Each engine in turn, for what must hold on both."""
    running: RunningEngine = request.getfixturevalue(request.param)
    return running
