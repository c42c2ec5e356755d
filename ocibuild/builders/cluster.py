"""Fairing's cluster builder and its context sources (``kubeflow.fairing.builders.cluster``)::

    from ocibuild.builders.cluster import ClusterBuilder, S3ContextSource

    builder = ClusterBuilder(
        registry="registry.example.com/team",
        preprocessor=preprocessor,
        context_source=S3ContextSource(bucket_name="builds", region="eu-west-1"),
    )

A context source is Fairing's spelling of a context store: each one makes the store of that
name through the plugin manager when the build needs it (``s3`` and ``pvc`` from
:mod:`ocibuild.pipeline.context_stores`, ``configmap`` built in, ``gcs`` from the
``ocibuild-gcp`` plugin), so the stores' own dependencies load only then.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from .._public import publish
from ..pipeline._errors import PipelineError
from ..pipeline._protocols import ContextStore, ExecutorContext
from ..pipeline.builders import ClusterBuilder as _PipelineClusterBuilder
from ..pipeline.builders import ClusterBuildError

__all__ = [
    "ClusterBuildError",
    "ClusterBuilder",
    "ConfigMapContextSource",
    "GCSContextSource",
    "PvcContextSource",
    "S3ContextSource",
]


class ClusterBuilder(_PipelineClusterBuilder):
    """Fairing's ``ClusterBuilder`` (see :class:`ocibuild.pipeline.builders.ClusterBuilder`):
    a ``context_source`` given by name is made through the plugin manager."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from ..pipeline._run import context_store

        kwargs.setdefault("context_store_factory", context_store)
        super().__init__(*args, **kwargs)


class _ContextSource:
    """A context store made by name on first use, with these options."""

    store_name = ""

    def __init__(self, **options: Any) -> None:
        self.options = {k: v for k, v in options.items() if v is not None}
        self._store: ContextStore | None = None

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({options})"

    def for_build(self, defaults: Mapping[str, Any]) -> _ContextSource:
        """This source, its store given the ``defaults`` it takes and this source does not set
        (the cluster builder's namespace and kubeconfig: an in-cluster store follows its Job)."""
        from ..pipeline._plugins import lookup

        if self._store is None:
            try:
                takes = set(inspect.signature(lookup("context_store", self.store_name)).parameters)
            except (TypeError, ValueError):
                takes = set()
            for key, value in defaults.items():
                if key in takes and value is not None:
                    self.options.setdefault(key, value)
        return self

    @property
    def store(self) -> ContextStore:
        """The store this source names (made once)."""
        if self._store is None:
            from ..pipeline._run import create

            self._store = create("context_store", self.store_name, self.options)
        return self._store

    def put(self, context: Path | BinaryIO, key: str) -> str:
        """See :meth:`ocibuild.pipeline.ContextStore.put`."""
        return self.store.put(context, key)

    def delete(self, url: str) -> None:
        """See :meth:`ocibuild.pipeline.ContextStore.delete`."""
        self.store.delete(url)

    def executor_context(self, url: str) -> ExecutorContext:
        """What the build pod needs (the store's own answer when it gives one)."""
        store = self.store
        method = getattr(store, "executor_context", None)
        return method(url) if callable(method) else ExecutorContext(url)


class S3ContextSource(_ContextSource):
    """Fairing's ``S3ContextSource``: the context in an S3 (or S3-compatible) bucket."""

    store_name = "s3"

    def __init__(
        self,
        bucket_name: str,
        region: str | None = None,
        *,
        prefix: str | None = None,
        endpoint_url: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            bucket=bucket_name, region=region, prefix=prefix, endpoint_url=endpoint_url, **options
        )


class GCSContextSource(_ContextSource):
    """Fairing's ``GCSContextSource``: the context in a Cloud Storage bucket (the
    ``ocibuild-gcp`` plugin's ``gcs`` store); the bucket defaults to the project's name, as
    Fairing's did."""

    store_name = "gcs"

    def __init__(
        self, gcp_project: str | None = None, bucket_name: str | None = None, **options: Any
    ) -> None:
        bucket = bucket_name or gcp_project
        if not bucket:
            raise PipelineError("GCSContextSource needs bucket_name= (or gcp_project=)")
        super().__init__(bucket=bucket, project=gcp_project, **options)


class PvcContextSource(_ContextSource):
    """The context on a PersistentVolumeClaim the build pod mounts."""

    store_name = "pvc"

    def __init__(self, pvc_name: str, **options: Any) -> None:
        super().__init__(pvc_name=pvc_name, **options)


class ConfigMapContextSource(_ContextSource):
    """The context in a ConfigMap (up to 1 MiB of gzip tar; no object storage needed)."""

    store_name = "configmap"

    def __init__(self, namespace: str | None = None, **options: Any) -> None:
        super().__init__(namespace=namespace, **options)


publish(__name__, globals(), __all__)
