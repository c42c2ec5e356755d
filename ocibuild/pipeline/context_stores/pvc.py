"""The context store ``pvc``: build contexts as files on a PersistentVolumeClaim.

For clusters without object storage. Nothing outside the cluster can write to a claim, so
:meth:`PvcContextStore.put` starts a short-lived uploader pod (``image``, a small one with a
shell, ``cat``, ``mv`` and ``sha256sum``: busybox) that mounts the claim at ``mount_path``,
streams the tarball into it on the stdin of an exec (``sh -c 'cat > "$0"' PATH``, through the
API server's exec websocket), checks what landed with a second exec (``wc -c`` and
``sha256sum``), and deletes the pod. The build pod mounts the claim read-only and reads
``tar:///MOUNT/PREFIX/KEY.tar.gz``.

The write reads exactly the context's size (``head -c SIZE``) instead of waiting for the end
of stdin: closing an exec's stdin needs the v5 exec protocol (Kubernetes 1.30+), and kwok's
exec never passes the close on. So the size must be known first: a file's or a seekable
stream's is; any other stream is copied to a temporary file first.

The claim must exist. With ``ReadWriteOnce`` the uploader and the build pod share the claim
one after the other: the uploader is deleted before :meth:`put` returns, but the volume may
take a moment to detach from its node.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from ..._errors import DigestMismatchError, InvalidOptionError
from .._errors import ContextStoreError
from .._protocols import ExecutorContext, VolumeMount
from ._common import normal_prefix, opened, read_exact

__all__ = ["DEFAULT_IMAGE", "DEFAULT_MOUNT", "DEFAULT_PREFIX", "PvcContextStore", "parse_pvc_url"]

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "busybox:1.37"
DEFAULT_MOUNT = "/ocibuild-context"
DEFAULT_PREFIX = "ocibuild/contexts/"
CHUNK = 1024 * 1024  # bytes per websocket frame
VOLUME = "ocibuild-context"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# Written to a temporary name and moved, so a cut upload never looks like a context.
_WRITE = 'mkdir -p "$(dirname "$0")" && head -c "$1" > "$0.part" && mv -f "$0.part" "$0"'
_CHECK = 'wc -c < "$0" && sha256sum "$0"'


class PvcContextStore:
    """Build contexts on the claim ``pvc_name`` in ``namespace`` (default: the cluster
    builder's, else the kubeconfig's), under ``prefix`` (default ``ocibuild/contexts/``).

    ``image``: the uploader pod's (default :data:`DEFAULT_IMAGE`). ``mount_path``: where the
    uploader and the build pod mount the claim. ``config_file`` and ``context``: the
    kubeconfig and its context. ``timeout``: seconds the uploader pod may take to start.
    """

    name = "pvc"

    def __init__(
        self,
        pvc_name: str,
        *,
        namespace: str | None = None,
        prefix: str | None = None,
        image: str = DEFAULT_IMAGE,
        mount_path: str = DEFAULT_MOUNT,
        config_file: str | Path | None = None,
        context: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.pvc_name = _check_name("pvc_name", pvc_name)
        self.namespace = _check_name("namespace", namespace) if namespace else None
        self.prefix = normal_prefix("pvc", prefix, DEFAULT_PREFIX)
        if not isinstance(mount_path, str) or not mount_path.startswith("/") or ".." in mount_path:
            raise InvalidOptionError(f"pvc: mount_path {mount_path!r} must be an absolute path")
        self.mount_path = mount_path.rstrip("/") or "/"
        self.image = image
        self.config_file = config_file
        self.context = context
        self.timeout = float(timeout)
        self._access: Any = None

    def __repr__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"PvcContextStore(pvc={where}{self.pvc_name!r}, prefix={self.prefix!r})"

    def in_namespace(self, namespace: str) -> PvcContextStore:
        """This store in ``namespace`` (the build's), unless it names its own."""
        if self.namespace is not None:
            return self
        moved = copy.copy(self)
        moved.namespace = _check_name("namespace", namespace)
        return moved

    # -- the ContextStore protocol ---------------------------------------------------

    def put(self, context: Path | BinaryIO, key: str) -> str:
        """Write the tarball (a file, or a binary stream read to its end) to
        ``PREFIX + key + .tar.gz`` on the claim; return ``pvc://NAMESPACE/CLAIM/PATH``."""
        path = self._path(key)
        namespace = self._namespace()
        url = f"pvc://{namespace}/{self.pvc_name}/{path}"
        self._check_claim(namespace)
        with opened("pvc", context) as source, _Uploader(self, namespace) as pod:
            size, sha256 = pod.write(path, source)
            stored = pod.run(["sh", "-c", _CHECK, path], f"checking {url}")
            stored_size, _, rest = stored.strip().partition("\n")
            stored_sha = rest.split(" ")[0] if rest else ""
            if stored_size.strip() != str(size) or stored_sha != sha256:
                pod.run(["rm", "-f", path], f"deleting {url}")
                raise DigestMismatchError(
                    f"pvc: {url} holds {stored_size.strip() or '?'} bytes with sha256 "
                    f"{stored_sha or '?'}, not the {size} bytes with sha256 {sha256} that were "
                    "sent; the file was deleted, put the context again"
                )
        log.info("stored the build context as %s (%d bytes)", url, size)
        return url

    def delete(self, url: str) -> None:
        """Remove the file at ``url``; one already gone (or a claim gone) is fine."""
        namespace, claim, path = parse_pvc_url(url)
        store = self
        if claim != self.pvc_name:  # a URL another store of this cluster wrote
            store = copy.copy(self)
            store.pvc_name = claim
        if store._claim(namespace) is None:
            return
        with _Uploader(store, namespace) as pod:
            pod.run(["rm", "-f", path], f"deleting {url}")

    # -- ExecutorContextStore --------------------------------------------------------

    def executor_context(self, url: str) -> ExecutorContext:
        """The claim mounted read-only at ``mount_path``; Kaniko's ``tar://`` context."""
        _, claim, path = parse_pvc_url(url)
        volume = {"name": VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        mount: VolumeMount = {"name": VOLUME, "mountPath": self.mount_path, "readOnly": True}
        return ExecutorContext(
            f"tar://{self.mount_path.rstrip('/')}/{path}", volumes=(volume,), volume_mounts=(mount,)
        )

    # -- steps -----------------------------------------------------------------------

    @property
    def access(self) -> Any:
        """The cluster (a :class:`~ocibuild.pipeline.deployers._kube.KubeAccess`)."""
        if self._access is None:
            from ..deployers._kube import KubeAccess

            self._access = KubeAccess(config_file=self.config_file, context=self.context)
        return self._access

    def _namespace(self) -> str:
        return str(self.access.namespace(self.namespace))

    def _path(self, key: str) -> str:
        name = key if key.endswith(".tar.gz") else f"{key}.tar.gz"
        if not key or "/" in key or key.startswith("."):
            raise InvalidOptionError(
                f"pvc: key {key!r} must be a file name (no '/', no leading '.')"
            )
        return self.prefix + name

    def _claim(self, namespace: str) -> Any:
        core = self.access.core()
        return self.access.call(
            f"pvc: reading PersistentVolumeClaim {namespace}/{self.pvc_name}",
            core.method("read", "persistentvolumeclaims"),
            self.pvc_name,
            namespace,
            missing_ok=True,
        )

    def _check_claim(self, namespace: str) -> None:
        claim = self._claim(namespace)
        if claim is None:
            raise ContextStoreError(
                f"pvc: PersistentVolumeClaim {namespace}/{self.pvc_name} does not exist: create "
                "it (ReadWriteOnce is enough), or give another pvc_name",
                store="pvc",
                code="NotFound",
            )
        phase = (claim.get("status") or {}).get("phase")
        if phase == "Lost":
            raise ContextStoreError(
                f"pvc: PersistentVolumeClaim {namespace}/{self.pvc_name} lost its volume",
                store="pvc",
                code="Lost",
            )


class _Uploader:
    """The uploader pod of one put or delete: created on enter, deleted on exit."""

    def __init__(self, store: PvcContextStore, namespace: str) -> None:
        self.store, self.namespace = store, namespace
        self.name = ""

    def __enter__(self) -> _Uploader:
        access, store = self.store.access, self.store
        pod = _uploader_pod(store)
        made = access.call(
            f"pvc: creating the uploader pod in {self.namespace}",
            access.core().method("create", "pods"),
            self.namespace,
            pod,
        )
        self.name = made["metadata"]["name"]
        try:
            self._wait_running()
        except BaseException:
            self._delete()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._delete()

    def write(self, path: str, source: BinaryIO) -> tuple[int, str]:
        """Stream ``source`` into ``path`` on the claim; its size and sha256, as sent."""
        with _sized(source) as (body, size):
            digest, sent = hashlib.sha256(), 0
            ws = self._exec(["sh", "-c", _WRITE, path, str(size)], stdin=True)
            try:
                while sent < size and (chunk := read_exact(body, min(CHUNK, size - sent))):
                    digest.update(chunk)
                    sent += len(chunk)
                    ws.write_stdin(chunk)
                    ws.update(timeout=0)  # take what the pod said, so its buffers stay small
                if sent < size or body.read(1):
                    raise ContextStoreError(
                        f"pvc: the build context changed size while it was sent ({size} bytes "
                        "expected): put it again",
                        store="pvc",
                    )
                self._finish(ws, f"writing {path} on {self.store.pvc_name}")
            finally:
                ws.close()
        return size, digest.hexdigest()

    def run(self, command: list[str], doing: str) -> str:
        """Run ``command`` in the pod; its stdout, or a ContextStoreError with its stderr."""
        ws = self._exec(command, stdin=False)
        try:
            return self._finish(ws, doing)
        finally:
            ws.close()

    def _exec(self, command: list[str], *, stdin: bool) -> Any:
        """An exec of ``command`` in the pod, as the client's websocket (binary frames)."""
        # The client's websocket call, without its CoreV1Api: importing that class builds
        # hundreds of models (seconds on a small machine) for one URL.
        from kubernetes.stream.ws_client import websocket_call

        api = self.store.access.api
        query = [("command", part) for part in command] + [
            ("container", "upload"),
            ("stdin", str(stdin).lower()),
            ("stdout", "true"),
            ("stderr", "true"),
            ("tty", "false"),
        ]
        _, url, headers, _, _ = api.param_serialize(
            method="GET",
            resource_path="/api/v1/namespaces/{namespace}/pods/{name}/exec",
            path_params={"namespace": self.namespace, "name": self.name},
            query_params=query,
            header_params={},
            auth_settings=["BearerToken"],
        )
        return websocket_call(  # type: ignore[no-untyped-call]
            api.configuration, "GET", url, headers=headers, _preload_content=False, binary=True
        )

    def _finish(self, ws: Any, doing: str) -> str:
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + max(self.store.timeout, 60.0)
        while time.monotonic() < deadline:
            open_ = ws.is_open()
            if open_:
                ws.update(timeout=1)
            out += ws.read_stdout(timeout=0) or b""
            err += ws.read_stderr(timeout=0) or b""
            if not open_:
                break
        try:
            code = ws.returncode
        except (TypeError, KeyError, ValueError, IndexError):  # no status: the stream was cut
            code = None
        if code != 0:
            said = " ".join(err.decode(errors="replace").split())[:300] or f"exit code {code}"
            command = f"{self.namespace}/{self.name}"
            raise ContextStoreError(f"pvc: {doing} failed in pod {command}: {said}", store="pvc")
        return out.decode(errors="replace")

    def _wait_running(self) -> None:
        access = self.store.access
        read = access.core().method("read", "pods")
        deadline = time.monotonic() + self.store.timeout
        reason = "Pending"
        while time.monotonic() < deadline:
            pod = access.call(
                f"pvc: reading pod {self.namespace}/{self.name}", read, self.name, self.namespace
            )
            status = pod.get("status") or {}
            if status.get("phase") == "Running":
                return
            if status.get("phase") in ("Failed", "Succeeded"):
                reason = str(status["phase"])
                break
            reason = _pending_reason(status) or reason
            time.sleep(0.2)
        raise ContextStoreError(
            f"pvc: the uploader pod {self.namespace}/{self.name} (image {self.store.image}) did "
            f"not start within {self.store.timeout:.0f} s ({reason}); is the claim "
            f"{self.store.pvc_name} mountable and the image pullable?",
            store="pvc",
            code=reason,
        )

    def _delete(self) -> None:
        if not self.name:
            return
        access = self.store.access
        access.call(
            f"pvc: deleting the uploader pod {self.namespace}/{self.name}",
            access.core().method("delete", "pods"),
            self.name,
            self.namespace,
            {"gracePeriodSeconds": 0},
            missing_ok=True,
        )


@contextmanager
def _sized(source: BinaryIO) -> Iterator[tuple[BinaryIO, int]]:
    """``source`` and the bytes left in it: a file's or seekable stream's size, else those of
    a temporary copy (then read instead of ``source``)."""
    try:
        start = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(start)
    except (OSError, AttributeError, ValueError):
        with tempfile.TemporaryFile(prefix="ocibuild-context-") as copy_:
            shutil.copyfileobj(source, copy_, CHUNK)
            size = copy_.tell()
            copy_.seek(0)
            yield copy_, size
        return
    yield source, end - start


def _uploader_pod(store: PvcContextStore) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "ocibuild", "ocibuild/role": "context-upload"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "ocibuild-context-upload-", "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            # A pod left behind by a killed client ends on its own.
            "activeDeadlineSeconds": 3600,
            "containers": [
                {
                    "name": "upload",
                    "image": store.image,
                    "command": ["sleep", "3600"],
                    "workingDir": store.mount_path,
                    "volumeMounts": [{"name": VOLUME, "mountPath": store.mount_path}],
                }
            ],
            "volumes": [{"name": VOLUME, "persistentVolumeClaim": {"claimName": store.pvc_name}}],
        },
    }


def _pending_reason(status: dict[str, Any]) -> str | None:
    for container in status.get("containerStatuses") or ():
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    for condition in status.get("conditions") or ():
        if condition.get("status") == "False" and condition.get("reason"):
            message = " ".join(str(condition.get("message", "")).split())[:200]
            return f"{condition['reason']}: {message}" if message else str(condition["reason"])
    return None


def parse_pvc_url(url: str) -> tuple[str, str, str]:
    """``pvc://NAMESPACE/CLAIM/PATH`` -> (namespace, claim, path)."""
    parts = (
        url[len("pvc://") :].split("/", 2)
        if isinstance(url, str) and url.startswith("pvc://")
        else []
    )
    if len(parts) != 3 or not all(parts) or ".." in parts[2].split("/"):
        raise InvalidOptionError(f"pvc: {url!r} is not a pvc://NAMESPACE/CLAIM/PATH URL")
    return _check_name("namespace", parts[0]), _check_name("pvc_name", parts[1]), parts[2]


def _check_name(option: str, name: str) -> str:
    if not isinstance(name, str) or len(name) > 253 or not _NAME.fullmatch(name):
        raise InvalidOptionError(
            f"pvc: {option} {name!r} is not a Kubernetes name (lowercase letters, digits, '-' "
            "and '.')"
        )
    return name
