"""Builders: turn a preprocessor's build context into an image, written and pinned by digest.

Built-in: ``append`` (the daemonless image core). ``docker`` and ``cluster`` come later.
"""

from ._base import Builder, BuildResult, pod_spec_for
from .append import DEFAULT_IMAGE_NAME, AppendBuilder, default_base_image

__all__ = [
    "DEFAULT_IMAGE_NAME",
    "AppendBuilder",
    "BuildResult",
    "Builder",
    "default_base_image",
    "pod_spec_for",
]
