"""Fixtures shared by the whole suite; the machinery lives in tests/support/.

Session fixtures are per xdist worker: each worker runs its own registries on its own ports.
A missing tool makes a fixture fail with the apt package to install; nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from tests.support import (
    BaseImage,
    BaseInRegistry,
    DockerArchive,
    FaultProxy,
    MotoServer,
    OCISchema,
    Registry,
    TokenServer,
    make_base_in_registry,
    make_base_layout,
    make_busybox_rootfs,
    make_docker_archive,
    make_tls_files,
    new_credentials,
    start_moto_server,
    start_registry,
)

# Hypothesis keeps what it learns (failing cases, constants) outside the repository.
_CACHE_HOME = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
_HYPOTHESIS_HOME = os.environ.get("OCIBUILD_HYPOTHESIS_HOME") or os.path.join(
    _CACHE_HOME, "ocibuild-tests", "hypothesis"
)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
settings.register_profile(
    "ocibuild", database=DirectoryBasedExampleDatabase(os.path.join(_HYPOTHESIS_HOME, "examples"))
)
settings.load_profile("ocibuild")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ocibuild cache (children inherit it): never the user's."""
    path = tmp_path / "cache"
    monkeypatch.setenv("OCIBUILD_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 on loopback, for the whole session; see the ``s3_server`` fixture."""
    with start_moto_server(tmp_path_factory.mktemp("moto")) as running:
        yield running


@pytest.fixture
def s3_server(moto_server: MotoServer) -> MotoServer:
    """moto's S3, emptied (and not checking credentials) for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP registry without auth."""
    with start_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP registry with htpasswd Basic auth (`.username`, `.password`)."""
    workdir = tmp_path_factory.mktemp("basic-registry")
    with start_registry(workdir, credentials=new_credentials()) as running:
        yield running


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An HTTPS registry whose certificate a test CA signed (`.ca_file`, `.cert_dir`)."""
    workdir = tmp_path_factory.mktemp("tls-registry")
    with start_registry(workdir, tls=make_tls_files(workdir / "tls")) as running:
        yield running


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP registry with token auth (`.token_server`, `.token_requests`)."""
    workdir = tmp_path_factory.mktemp("token-registry")
    with (
        TokenServer(workdir / "token-server") as token_server,
        start_registry(workdir, token_server=token_server) as running,
    ):
        yield running


@pytest.fixture
def make_fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    """A factory of fault proxies to an upstream URL; all are stopped after the test."""
    proxies: list[FaultProxy] = []

    def make(upstream_url: str) -> FaultProxy:
        proxy = FaultProxy(upstream_url)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture(scope="session")
def oci_schema() -> OCISchema:
    """Validators for manifests, indexes, configs and whole OCI layouts."""
    return OCISchema()


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal rootfs: static busybox and a few applet links, /etc/passwd."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox-rootfs"))


@pytest.fixture(scope="session")
def base_layout(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> BaseImage:
    """A two-layer gzip base image built by umoci alone, in an OCI layout."""
    return make_base_layout(tmp_path_factory.mktemp("base-layout"), busybox_rootfs)


@pytest.fixture(scope="session")
def base_in_registry(
    tmp_path_factory: pytest.TempPathFactory, base_layout: BaseImage, registry: Registry
) -> BaseInRegistry:
    """The base image in `registry` as base/oci:1, base/docker:1 (v2s2) and base/multi:1."""
    workdir = tmp_path_factory.mktemp("base-in-registry")
    return make_base_in_registry(base_layout, registry.host, workdir)


@pytest.fixture(scope="session")
def docker_archive_base(
    tmp_path_factory: pytest.TempPathFactory, base_layout: BaseImage
) -> DockerArchive:
    """The base image as a docker-archive tarball (tagged base:1)."""
    path = tmp_path_factory.mktemp("docker-archive") / "base.tar"
    return make_docker_archive(base_layout, path)
