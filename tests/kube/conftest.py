"""The Kubernetes test bed: one kwok cluster per test session (per xdist worker).

Tests that need it carry ``@pytest.mark.xdist_group("kube")`` so that ``--dist loadgroup``
keeps them on one worker and one cluster. Missing binaries fail the fixture; nothing skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.support import (
    KubeCluster,
    KubeflowStack,
    find_kube_bin,
    find_kubeflow_dir,
    install_kubeflow,
    start_kube_cluster,
)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A control plane with the real Job controller and scheduler, two kwok nodes."""
    bin_dir = find_kube_bin()
    with start_kube_cluster(bin_dir, tmp_path_factory.mktemp("kwok")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kube_client(kube_cluster: KubeCluster) -> Iterator[client.ApiClient]:
    """The official Python client, logged in as the cluster's admin."""
    # The client's config module carries no annotations, its API classes do.
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kube_cluster.kubeconfig)
    )
    with api:
        yield api


@pytest.fixture(scope="session")
def kubeflow(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeflowStack]:
    """The Kubeflow CRDs and controllers (JobSet, Trainer v2, Training Operator v1) and the
    KServe stand-in on the session's cluster; only the tests that ask for it pay its start."""
    kubeflow_dir = find_kubeflow_dir()
    with install_kubeflow(kube_cluster, kubeflow_dir, tmp_path_factory.mktemp("kubeflow")) as stack:
        yield stack


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    name = kube_cluster.new_namespace()
    yield name
    kube_cluster.delete_namespace(name)
