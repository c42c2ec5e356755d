"""ocibuild: build OCI images from files and Python code without a Docker daemon, and run them.

The image core::

    import ocibuild
    image = ocibuild.Image.load("oci:base:latest")          # or "registry.local/python:3.11"
    image = image.append(ocibuild.FileTreeLayer(["./src:/app"]))
    image = image.with_config(cmd=["python", "/app/main.py"])
    result = ocibuild.write(image, "oci:out:app")            # or "registry.local/team/app:1"

The Fairing-style pipeline: ``from ocibuild import config`` (or ``import ocibuild as fairing``
and use ``fairing.config``), and ``ocibuild.run(...)``.
"""

from __future__ import annotations

from typing import Any

from ._errors import (
    AuthenticationError,
    CacheError,
    CredentialError,
    DigestMismatchError,
    InvalidDigestError,
    InvalidOptionError,
    InvalidPlatformError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    OCIBuildError,
    RegistryError,
    RetryBudgetExceededError,
    SourceError,
    TarballError,
    TransportError,
)
from ._public import publish
from ._version import __version__
from .image import Image, Loaded, WriteResult, copy, load, write
from .layer import FileTreeLayer, LayerCache, LayerOptions, TarballLayer
from .oci import (
    ContainerConfig,
    Descriptor,
    Digest,
    ImageConfig,
    Index,
    Layer,
    LayerDigests,
    Manifest,
    Platform,
    Reference,
)
from .pipeline._errors import (
    DependencyError,
    DeployError,
    DeployTimeoutError,
    DockerBuildError,
    JobFailedError,
    NoClusterError,
    PipelineError,
    PluginError,
    PodPendingError,
    WorkloadFailedError,
)
from .transports import CredentialSource, set_plugin_sources, set_prefix_resolver
from .transports.docker._errors import EngineError

__all__ = [
    "AuthenticationError",
    "CacheError",
    "ContainerConfig",
    "CredentialError",
    "DependencyError",
    "DeployError",
    "DeployTimeoutError",
    "Descriptor",
    "Digest",
    "DigestMismatchError",
    "EngineError",
    "FileTreeLayer",
    "Image",
    "ImageConfig",
    "Index",
    "InvalidDigestError",
    "InvalidOptionError",
    "InvalidPlatformError",
    "InvalidReferenceError",
    "DockerBuildError",
    "JobFailedError",
    "Layer",
    "LayerCache",
    "LayerDigests",
    "LayerOptions",
    "Loaded",
    "Manifest",
    "ManifestError",
    "NoClusterError",
    "NotFoundError",
    "OCIBuildError",
    "PipelineError",
    "Platform",
    "PluginError",
    "PodPendingError",
    "Reference",
    "RegistryError",
    "RetryBudgetExceededError",
    "SourceError",
    "TarballError",
    "TarballLayer",
    "TransportError",
    "WorkloadFailedError",
    "WriteResult",
    "__version__",
    "config",
    "copy",
    "load",
    "run",
    "write",
]


def __getattr__(name: str) -> Any:
    # The pipeline front doors load on first use, so `import ocibuild` stays light.
    if name == "config":
        import importlib

        return importlib.import_module("ocibuild.config")
    if name == "run":
        from .pipeline._run import run

        publish(__name__, {"run": run}, ["run"])
        return run
    raise AttributeError(f"module 'ocibuild' has no attribute {name!r}")


def _plugin_transport(kind: str) -> bool:
    """Whether a plugin provides the transport ``kind``. The plugins load on the first spelling
    whose prefix nobody registered, not at import: pluggy and the entry-point scan cost time."""
    from .pipeline._plugins import get_plugins

    return kind in get_plugins().transports()


def _plugin_credential_sources() -> list[CredentialSource]:
    """The plugins' registry credential sources; the plugins load on the first registry that
    asks for credentials nothing configured has (an anonymous registry never loads them)."""
    from .pipeline._plugins import get_plugins

    return get_plugins().credential_sources()


set_prefix_resolver(_plugin_transport)
set_plugin_sources(_plugin_credential_sources)
publish(__name__, globals(), [n for n in __all__ if n not in ("config", "run")])
