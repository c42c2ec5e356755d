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
``preprocessor=``. What a factory makes must follow its kind's protocol in
:mod:`ocibuild.pipeline` (:class:`Preprocessor`, :class:`Builder`, :class:`Deployer`,
:class:`ContextStore`, :data:`PodSpecMutator`); anything else is a :class:`PluginError`
naming the plugin. A name provided by two plugins is an error naming both. The built-in
names come through these same hooks, from :mod:`ocibuild.pipeline._builtins`.

``ocibuild_transports`` adds image transports: ``{"mem": Transport("mem", open_source,
open_sink)}`` makes ``mem:PATH[:TAG]`` work wherever an image spelling is accepted
(``ocibuild.copy``, ``--base``, ``--to``). Return the same :class:`~ocibuild.transports.Transport`
objects each time (module-level values): the transport table is one per process.

``ocibuild_credential_sources`` adds registry credentials: ``{"google": source}``, where
``source(registry, repository)`` returns a :class:`~ocibuild.registry.Credential` for a
registry it knows (``us-docker.pkg.dev``) and ``None`` for any other. Sources are asked only
when a registry asks for authentication and nothing the user configured (``--username``,
``DOCKER_AUTH_CONFIG``, Docker's and containers' auth files, credential helpers) has an entry
for it; the first source that answers wins.

Lifecycle hooks observe a run; their return values are ignored, and an exception they raise
stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

from ..transports import CredentialSource

if TYPE_CHECKING:
    from ..transports import Transport
    from ._context import BuildContext
    from ._protocols import Builder, ContextStore, Deployer, PodSpecMutator, Preprocessor

__all__ = [
    "PROJECT",
    "BuilderFactory",
    "ContextStoreFactory",
    "CredentialSource",
    "DeployerFactory",
    "PodSpecMutatorFactory",
    "PreprocessorFactory",
    "hookimpl",
    "hookspec",
    "ocibuild_after_build",
    "ocibuild_after_push",
    "ocibuild_before_deploy",
    "ocibuild_builders",
    "ocibuild_context_stores",
    "ocibuild_credential_sources",
    "ocibuild_deployers",
    "ocibuild_pod_spec_mutators",
    "ocibuild_preprocessors",
    "ocibuild_transports",
]

PROJECT = "ocibuild"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# A class is a factory too: ``{"python": PythonPreprocessor}``.
PreprocessorFactory = Callable[..., "Preprocessor"]
BuilderFactory = Callable[..., "Builder"]
DeployerFactory = Callable[..., "Deployer"]
ContextStoreFactory = Callable[..., "ContextStore"]
PodSpecMutatorFactory = Callable[..., "PodSpecMutator"]


@hookspec
def ocibuild_preprocessors() -> Mapping[str, PreprocessorFactory]:
    """Preprocessors by name: ``factory(**kwargs)`` makes a :class:`Preprocessor`."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_builders() -> Mapping[str, BuilderFactory]:
    """Builders by name: ``factory(preprocessor=..., **kwargs)`` makes a :class:`Builder`
    (``build() -> BuildResult``, ``generate_pod_spec(image=None) -> PodSpec``)."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_deployers() -> Mapping[str, DeployerFactory]:
    """Deployers by name: ``factory(**kwargs)`` makes a :class:`Deployer`, whose
    ``deploy(pod_spec, context)`` returns a :class:`DeployHandle`."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_context_stores() -> Mapping[str, ContextStoreFactory]:
    """Context stores by name (where a cluster builder uploads its build context):
    ``factory(**kwargs)`` makes a :class:`ContextStore`."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_pod_spec_mutators() -> Mapping[str, PodSpecMutatorFactory]:
    """Pod spec mutators by name: ``factory(**kwargs)`` makes a callable
    ``(pod_spec, namespace: str | None) -> None`` that edits the pod spec in place."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_transports() -> Mapping[str, Transport]:
    """Image transports by prefix (without the colon): ``{"mem": Transport("mem", ...)}``;
    each key must be its transport's ``kind``."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_credential_sources() -> Mapping[str, CredentialSource]:
    """Registry credential sources by name: ``source(registry, repository)`` returns a
    :class:`~ocibuild.registry.Credential` or ``None``. Asked after everything the user
    configured, in the order the plugins were loaded; a source that raises stops the lookup
    (say what is wrong with the credentials it found; return ``None`` when it has none)."""
    raise NotImplementedError  # a spec: pluggy never calls its body


@hookspec
def ocibuild_after_build(context: BuildContext, image_ref: str) -> None:
    """An image was built from ``context`` and written as ``image_ref`` (pinned by digest)."""


@hookspec
def ocibuild_after_push(reference: str) -> None:
    """An image was pushed to a registry as ``reference`` (pinned by digest)."""


@hookspec
def ocibuild_before_deploy(deployer: Deployer, image_ref: str) -> None:
    """``deployer`` is about to run ``image_ref``."""
