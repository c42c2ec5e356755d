"""Builders: turn a preprocessor's build context into an image, written and pinned by digest.

Built-in: ``append`` (the daemonless image core). ``docker`` and ``cluster`` come later. What a
builder is (:class:`Builder`, :class:`BuildResult`) lives in :mod:`ocibuild.pipeline`.
"""

from .._protocols import Builder, BuildResult
from ._base import pod_spec_for
from .append import DEFAULT_IMAGE_NAME, AppendBuilder, content_tag, default_base_image

__all__ = [
    "DEFAULT_IMAGE_NAME",
    "AppendBuilder",
    "BuildResult",
    "Builder",
    "content_tag",
    "default_base_image",
    "pod_spec_for",
]
