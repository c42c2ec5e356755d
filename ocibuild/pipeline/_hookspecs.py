"""The hooks an ocibuild plugin implements (pluggy project ``ocibuild``).

A plugin is a module (or object) with functions named like the specs below, decorated with
:data:`hookimpl`, and published under the entry-point group ``ocibuild``::

    # pyproject.toml of the plugin distribution
    [project.entry-points.ocibuild]
    myplugin = "ocibuild_myplugin"

    # ocibuild_myplugin.py
    from ocibuild.hookspecs import hookimpl

    @hookimpl
    def ocibuild_deployers():
        return {"mydeployer": MyDeployer}

Name hooks return a mapping of name -> factory. A factory is called with the keyword
arguments the user gave (``config.set_deployer("mydeployer", **kwargs)``); builders also get
``preprocessor=``. What a factory returns must follow the protocols in
:mod:`ocibuild.preprocessors` (``preprocess() -> BuildContext``), :mod:`ocibuild.builders`
(``build() -> BuildResult``, ``generate_pod_spec()``) and :mod:`ocibuild.deployers`
(``deploy(pod_spec, context)``). A name provided by two plugins is an error naming both.
The built-in names come through these same hooks, from :mod:`ocibuild._builtins`.

Lifecycle hooks observe a run; their return values are ignored, and an exception they raise
stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .preprocessors import BuildContext

__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "ocibuild_after_build",
    "ocibuild_after_push",
    "ocibuild_before_deploy",
    "ocibuild_builders",
    "ocibuild_context_stores",
    "ocibuild_deployers",
    "ocibuild_pod_spec_mutators",
    "ocibuild_preprocessors",
]

PROJECT = "ocibuild"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Factory = Callable[..., Any]


@hookspec
def ocibuild_preprocessors() -> Mapping[str, Factory]:
    """Preprocessors by name: ``factory(**kwargs)`` returns an object with ``preprocess()``."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_builders() -> Mapping[str, Factory]:
    """Builders by name: ``factory(preprocessor=..., **kwargs)`` returns an object with
    ``build() -> BuildResult`` and ``generate_pod_spec(image=None) -> dict``."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_deployers() -> Mapping[str, Factory]:
    """Deployers by name: ``factory(**kwargs)`` returns an object with
    ``deploy(pod_spec, context)`` returning a handle."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_context_stores() -> Mapping[str, Factory]:
    """Context stores by name (where a cluster builder uploads its build context):
    ``factory(**kwargs)`` returns an object the cluster builder uses."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_pod_spec_mutators() -> Mapping[str, Factory]:
    """Pod spec mutators by name: ``factory(**kwargs)`` returns a callable
    ``(pod_spec: dict, namespace: str | None) -> None`` that edits the PodSpec in place."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_after_build(context: BuildContext, image_ref: str) -> None:
    """An image was built from ``context`` and written as ``image_ref`` (pinned by digest)."""


@hookspec
def ocibuild_after_push(reference: str) -> None:
    """An image was pushed to a registry as ``reference`` (pinned by digest)."""


@hookspec
def ocibuild_before_deploy(deployer: Any, image_ref: str) -> None:
    """``deployer`` is about to run ``image_ref``."""
