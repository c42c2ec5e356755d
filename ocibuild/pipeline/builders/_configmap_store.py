"""The ``configmap`` context store: the build context in a ConfigMap, for clusters without
object storage.

The gzip tar goes into the ConfigMap's ``binaryData`` under ``context.tar.gz``; the build pod
mounts the ConfigMap and the executor reads ``tar:///workspace-context/context.tar.gz``. The
API server refuses a ConfigMap whose ``data`` and ``binaryData`` hold more than 1 MiB
(1,048,576 bytes, counted decoded: ``MaxSecretSize`` in Kubernetes' ConfigMap validation), so
that is the bound here, checked before anything is sent; the base64 request body (about
1.4 MB) stays below etcd's default 1.5 MiB request limit. A larger context needs ``s3`` or
``pvc``.
"""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from typing import Any, BinaryIO

from .._errors import PipelineError
from .._protocols import ExecutorContext
from ..deployers._kube import KubeAccess
from ..deployers._workload import MANAGED_BY, Resource

__all__ = ["CONFIGMAP_LIMIT", "CONFIG_MAP", "ConfigMapContextStore", "ContextTooLargeError"]

_log = logging.getLogger("ocibuild.builders")

CONFIGMAP_LIMIT = 1024 * 1024  # bytes of data + binaryData the API server accepts
CONFIG_MAP = Resource("v1", "ConfigMap", "configmaps")
_KEY = "context.tar.gz"
_MOUNT = "/workspace-context"
_SCHEME = "configmap://"
_NAME = re.compile(r"[^a-z0-9-]+")


class ContextTooLargeError(PipelineError):
    """The build context is larger than the context store can hold."""


class ConfigMapContextStore:
    """Build contexts in ConfigMaps of ``namespace`` (default: the kubeconfig context's, as
    the cluster builder's Job), named ``name_prefix`` and the key. Up to 1 MiB of gzip tar."""

    def __init__(
        self,
        namespace: str | None = None,
        *,
        name_prefix: str = "ocibuild-context-",
        config_file: str | None = None,
        context: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.name_prefix = name_prefix
        self.access = KubeAccess(config_file, context)

    def __repr__(self) -> str:
        return f"ConfigMapContextStore(namespace={self.namespace!r})"

    def put(self, context: Path | BinaryIO, key: str) -> str:
        """Create the ConfigMap holding the tarball; ``configmap://NAMESPACE/NAME``."""
        data = _read(context, CONFIGMAP_LIMIT)
        namespace = self.access.namespace(self.namespace)
        name = _config_map_name(self.name_prefix + key)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
            "binaryData": {_KEY: base64.b64encode(data).decode("ascii")},
            "immutable": True,
        }
        CONFIG_MAP.create(self.access, namespace, body)
        _log.info("build context: %d bytes in ConfigMap %s/%s", len(data), namespace, name)
        return f"{_SCHEME}{namespace}/{name}"

    def delete(self, url: str) -> None:
        """Delete the ConfigMap; gone already is fine."""
        namespace, name = _parse(url)
        CONFIG_MAP.delete(self.access, namespace, name, "Background")

    def executor_context(self, url: str) -> ExecutorContext:
        """The ConfigMap mounted read-only at ``/workspace-context``, the tar in it."""
        _namespace, name = _parse(url)
        return ExecutorContext(
            url=f"tar://{_MOUNT}/{_KEY}",
            volumes=({"name": "build-context", "configMap": {"name": name}},),
            volume_mounts=({"name": "build-context", "mountPath": _MOUNT, "readOnly": True},),
        )


def _read(context: Path | BinaryIO, limit: int) -> bytes:
    if isinstance(context, Path):
        size = context.stat().st_size
        if size > limit:
            raise _too_large(size)
        return context.read_bytes()
    data = context.read(limit + 1)
    if len(data) > limit:
        raise _too_large(None)
    return data


def _too_large(size: int | None) -> ContextTooLargeError:
    what = f"{size:,} bytes" if size is not None else "more than that"
    return ContextTooLargeError(
        f"the build context is {what} of gzip tar, and a ConfigMap holds at most "
        f"{CONFIGMAP_LIMIT:,}: use context_source='s3' (bucket=...) or 'pvc' (pvc_name=...), "
        "or leave large files out with .dockerignore"
    )


def _config_map_name(text: str) -> str:
    name = _NAME.sub("-", text.lower()).strip("-")[:253].rstrip("-")
    return name or "ocibuild-context"


def _parse(url: str) -> tuple[str, str]:
    namespace, _, name = url.removeprefix(_SCHEME).partition("/")
    if not url.startswith(_SCHEME) or not namespace or not name or "/" in name:
        raise PipelineError(f"{url!r} is not a configmap context (configmap://NAMESPACE/NAME)")
    return namespace, name
