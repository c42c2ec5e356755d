"""The ``pvc`` context store on the kwok test bed: a real API server, a real claim bound to a
hostPath volume, the uploader pod and its execs through the API server's exec websocket.

kwok runs no containers: a ClusterExec runs each exec's command on this host in the volume's
host directory (the uploader pod's workingDir is the claim's mount), so what the store wrote
is read back from that directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ocibuild import InvalidOptionError
from ocibuild.pipeline.context_stores import ContextStoreError, PvcContextStore
from tests.support import KubeCluster, wait_for

pytestmark = pytest.mark.xdist_group("kube")

CLAIM = "build-contexts"


@pytest.fixture
def volume(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A hostPath PersistentVolume bound to the claim ``build-contexts`` in the test's
    namespace, and a ClusterExec that runs that namespace's execs in its host directory."""
    with bound_claim(kube_cluster, kube_namespace, tmp_path / "volume") as host:
        yield host


@contextmanager
def bound_claim(cluster: KubeCluster, namespace: str, host: Path) -> Iterator[Path]:
    """The ``volume`` fixture's claim, PV (in ``host``) and ClusterExec, for other modules."""
    host.mkdir()
    pv = f"ctx-{secrets.token_hex(4)}"
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "hostPath": {"path": str(host)},
                    "claimRef": {"namespace": namespace, "name": CLAIM},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": CLAIM, "namespace": namespace},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "volumeName": pv,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "ClusterExec",
                "metadata": {"name": f"exec-{namespace}"},
                "spec": {
                    "selector": {"matchNamespaces": [namespace]},
                    "execs": [{"local": {"workDir": str(host)}}],
                },
            },
        ]
    )
    wait_for(lambda: _claim_phase(cluster, namespace) == "Bound" or None, 30, "a Bound claim")
    try:
        yield host
    finally:
        cluster.kubectl("delete", "clusterexec", f"exec-{namespace}", "--ignore-not-found")
        cluster.kubectl("delete", "pv", pv, "--wait=false", "--ignore-not-found")


def _claim_phase(cluster: KubeCluster, namespace: str) -> str:
    claim = json.loads(cluster.kubectl("get", "pvc", CLAIM, "-n", namespace, "-o", "json"))
    return str(claim.get("status", {}).get("phase"))


def _uploader_pods(cluster: KubeCluster, namespace: str) -> list[str]:
    pods = json.loads(
        cluster.kubectl(
            "get", "pods", "-n", namespace, "-l", "ocibuild/role=context-upload", "-o", "json"
        )
    )
    return [
        p["metadata"]["name"] for p in pods["items"] if not p["metadata"].get("deletionTimestamp")
    ]


def test_a_context_lands_on_the_claim_and_is_deleted_from_it(
    kube_cluster: KubeCluster, kube_namespace: str, volume: Path, tmp_path: Path
) -> None:
    context = tmp_path / "ctx.tar.gz"
    context.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several websocket frames
    store = PvcContextStore(CLAIM, config_file=kube_cluster.kubeconfig).in_namespace(kube_namespace)

    url = store.put(context, "build-1")

    assert url == f"pvc://{kube_namespace}/{CLAIM}/ocibuild/contexts/build-1.tar.gz"
    landed = volume / "ocibuild" / "contexts" / "build-1.tar.gz"
    assert (
        hashlib.sha256(landed.read_bytes()).digest()
        == hashlib.sha256(context.read_bytes()).digest()
    )
    assert not list(volume.rglob("*.part"))
    assert _uploader_pods(kube_cluster, kube_namespace) == []

    store.delete(url)
    store.delete(url)

    assert not landed.exists()
    assert _uploader_pods(kube_cluster, kube_namespace) == []


def test_the_build_pod_mounts_the_claim_read_only_and_reads_a_tar_url(
    kube_cluster: KubeCluster, kube_namespace: str, volume: Path
) -> None:
    store = PvcContextStore(
        CLAIM, namespace=kube_namespace, config_file=kube_cluster.kubeconfig, prefix="team"
    )
    url = store.put(io.BytesIO(b"a stream, not a file"), "k.tar.gz")
    assert (volume / "team" / "k.tar.gz").read_bytes() == b"a stream, not a file"

    executor = store.executor_context(url)

    assert executor.url == "tar:///ocibuild-context/team/k.tar.gz"
    assert executor.volumes == (
        {
            "name": "ocibuild-context",
            "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True},
        },
    )
    assert executor.volume_mounts == (
        {"name": "ocibuild-context", "mountPath": "/ocibuild-context", "readOnly": True},
    )
    assert executor.fetch_url is None and executor.env == ()


def test_a_missing_claim_is_one_line_and_leaves_no_pod(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    store = PvcContextStore(
        "no-such-claim", namespace=kube_namespace, config_file=kube_cluster.kubeconfig
    )

    with pytest.raises(ContextStoreError) as err:
        store.put(io.BytesIO(b"ctx"), "k")

    assert str(err.value) == (
        f"pvc: PersistentVolumeClaim {kube_namespace}/no-such-claim does not exist: create it "
        "(ReadWriteOnce is enough), or give another pvc_name"
    )
    assert _uploader_pods(kube_cluster, kube_namespace) == []
    store.delete(f"pvc://{kube_namespace}/no-such-claim/ocibuild/contexts/k.tar.gz")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pvc_name": "Not_A_Name"}, r"pvc: pvc_name 'Not_A_Name' is not a Kubernetes name"),
        ({"pvc_name": "ok", "mount_path": "rel"}, r"pvc: mount_path 'rel' must be an absolute"),
        ({"pvc_name": "ok", "prefix": "../up"}, r"pvc: prefix '../up' must be a path without"),
    ],
)
def test_bad_options_are_one_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOptionError, match=f"^{message}"):
        PvcContextStore(**options)


class _Pipe(io.RawIOBase):
    """A stream that cannot seek (its size unknown until read), as a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 64 * 1024))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_stream_of_unknown_size_is_stored_whole_by_the_builtin_pvc_store(
    kube_cluster: KubeCluster, kube_namespace: str, volume: Path
) -> None:
    from ocibuild.pipeline._plugins import lookup
    from ocibuild.pipeline._run import create

    assert lookup("context_store", "pvc") is PvcContextStore
    options = {
        "pvc_name": CLAIM,
        "namespace": kube_namespace,
        "config_file": kube_cluster.kubeconfig,
    }
    store = create("context_store", "pvc", options)
    data = os.urandom(1024 * 1024 + 5)

    url = store.put(_Pipe(data), "piped")  # type: ignore[arg-type]

    assert (volume / "ocibuild" / "contexts" / "piped.tar.gz").read_bytes() == data
    store.delete(url)
    assert not (volume / "ocibuild" / "contexts" / "piped.tar.gz").exists()


def test_an_uploader_that_cannot_start_is_one_line_and_is_deleted(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    # A claim no volume binds: the real scheduler keeps the uploader pod Pending.
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "unbound", "namespace": kube_namespace},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    kube_cluster.apply([claim])
    store = PvcContextStore(
        "unbound", namespace=kube_namespace, config_file=kube_cluster.kubeconfig, timeout=3
    )

    with pytest.raises(ContextStoreError) as err:
        store.put(io.BytesIO(b"ctx"), "k")

    message = str(err.value)
    assert message.startswith(f"pvc: the uploader pod {kube_namespace}/ocibuild-context-upload-")
    assert "did not start within 3 s (Unschedulable: " in message
    assert "\n" not in message
    assert _uploader_pods(kube_cluster, kube_namespace) == []
