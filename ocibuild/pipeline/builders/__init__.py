"""Builders: turn a preprocessor's build context into an image, written and pinned by digest.

Built-in: ``append`` (the daemonless image core) and ``docker`` (a Dockerfile built by a
Docker-compatible engine, for builds that must ``RUN`` something) and ``cluster`` (the
Dockerfile built inside Kubernetes by Kaniko or BuildKit, the context in a context store).
What a builder is (:class:`Builder`, :class:`BuildResult`) lives in :mod:`ocibuild.pipeline`.
"""

from .._protocols import Builder, BuildResult
from ._base import pod_spec_for
from ._configmap_store import ConfigMapContextStore, ContextTooLargeError
from .append import DEFAULT_IMAGE_NAME, AppendBuilder, content_tag, default_base_image
from .cluster import ClusterBuilder, ClusterBuildError
from .docker import DockerBuilder, DockerBuildError

__all__ = [
    "DEFAULT_IMAGE_NAME",
    "AppendBuilder",
    "BuildResult",
    "Builder",
    "ClusterBuildError",
    "ClusterBuilder",
    "ConfigMapContextStore",
    "ContextTooLargeError",
    "DockerBuildError",
    "DockerBuilder",
    "content_tag",
    "default_base_image",
    "pod_spec_for",
]
