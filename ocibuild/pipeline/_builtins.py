"""ocibuild's own preprocessors, builders and deployers, provided through the plugin hooks.

Registered directly by :class:`ocibuild.plugins.Plugins` (not through an entry point), so
``OCIBUILD_DISABLE_PLUGIN_AUTOLOAD`` never removes them. Imports happen inside the hooks, so
loading the plugin manager does not import the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._hookspecs import (
    BuilderFactory,
    ContextStoreFactory,
    DeployerFactory,
    PodSpecMutatorFactory,
    PreprocessorFactory,
    hookimpl,
)

__all__ = [
    "ocibuild_builders",
    "ocibuild_context_stores",
    "ocibuild_deployers",
    "ocibuild_pod_spec_mutators",
    "ocibuild_preprocessors",
]


@hookimpl
def ocibuild_preprocessors() -> Mapping[str, PreprocessorFactory]:
    """``python``, ``notebook``, ``full_notebook``, ``function``."""
    from .preprocessors import (
        FullNotebookPreprocessor,
        FunctionPreprocessor,
        NotebookPreprocessor,
        PythonPreprocessor,
    )

    return {
        "python": PythonPreprocessor,
        "notebook": NotebookPreprocessor,
        "full_notebook": FullNotebookPreprocessor,
        "function": FunctionPreprocessor,
    }


@hookimpl
def ocibuild_builders() -> Mapping[str, BuilderFactory]:
    """``append`` (no daemon), ``docker`` (a Docker-compatible engine builds a Dockerfile)
    and ``cluster`` (Kaniko or BuildKit builds it in a Kubernetes Job)."""
    from .builders import AppendBuilder, ClusterBuilder, DockerBuilder

    return {"append": AppendBuilder, "docker": DockerBuilder, "cluster": ClusterBuilder}


@hookimpl
def ocibuild_context_stores() -> Mapping[str, ContextStoreFactory]:
    """Where a cluster build's context waits for its pod: ``configmap`` (a ConfigMap, up to
    1 MiB), ``s3`` (an S3 or S3-compatible bucket) and ``pvc`` (a PersistentVolumeClaim)."""
    from .builders import ConfigMapContextStore
    from .context_stores import PvcContextStore, S3ContextStore

    return {"configmap": ConfigMapContextStore, "s3": S3ContextStore, "pvc": PvcContextStore}


@hookimpl
def ocibuild_deployers() -> Mapping[str, DeployerFactory]:
    """``job`` (a Kubernetes Job), ``trainjob``, ``pytorchjob``, ``tfjob`` (Kubeflow),
    ``serving`` (a Deployment and a Service), ``kfserving`` (a KServe InferenceService): they
    need a cluster, see the modules of :mod:`ocibuild.pipeline.deployers`; and ``local``."""
    from .deployers import Job, KFServing, LocalDeployer, PyTorchJob, Serving, TFJob, TrainJob

    return {
        "job": Job,
        "trainjob": TrainJob,
        "pytorchjob": PyTorchJob,
        "tfjob": TFJob,
        "serving": Serving,
        "kfserving": KFServing,
        "local": LocalDeployer,
    }


@hookimpl
def ocibuild_pod_spec_mutators() -> Mapping[str, PodSpecMutatorFactory]:
    """Cloud credentials from their usual secrets: ``gcp_credentials``, ``aws_credentials``,
    ``azure_credentials``, each also ``..._if_exists`` (the secret marked optional). The other
    helpers of :mod:`ocibuild.kubernetes.utils` need arguments: pass them as callables."""
    from functools import partial

    from .deployers._credentials import aws_credentials, azure_credentials, gcp_credentials

    factories: dict[str, PodSpecMutatorFactory] = {}
    for factory in (gcp_credentials, aws_credentials, azure_credentials):
        factories[factory.__name__] = factory
        factories[f"{factory.__name__}_if_exists"] = partial(factory, optional=True)
    return factories
