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

from typing import TYPE_CHECKING, Any

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
from .transports._hooks import set_plugin_sources, set_prefix_resolver

if TYPE_CHECKING:
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
    from .transports import CredentialSource
    from .transports.docker import EngineError

# The rest of the API loads on first use (PEP 562), so `import ocibuild` and `ocibuild --help`
# cost the errors and the version, not the image core, the layer pipeline or the HTTP stack.
_LAZY = {
    **dict.fromkeys(["Image", "Loaded", "WriteResult", "copy", "load", "write"], "image"),
    **dict.fromkeys(["FileTreeLayer", "LayerCache", "LayerOptions", "TarballLayer"], "layer"),
    **dict.fromkeys(
        [
            "ContainerConfig",
            "Descriptor",
            "Digest",
            "ImageConfig",
            "Index",
            "Layer",
            "LayerDigests",
            "Manifest",
            "Platform",
            "Reference",
        ],
        "oci",
    ),
    "EngineError": "transports.docker._errors",
    "run": "pipeline._run",
}

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
    import importlib

    if name == "config":
        return importlib.import_module("ocibuild.config")
    if name not in _LAZY:
        raise AttributeError(f"module 'ocibuild' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ocibuild.{_LAZY[name]}"), name)
    publish(__name__, {name: value}, [name])
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
publish(__name__, globals(), [n for n in __all__ if n in globals()])
