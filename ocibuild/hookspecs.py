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

from ._public import publish
from .pipeline._hookspecs import (
    PROJECT,
    hookimpl,
    hookspec,
    ocibuild_after_build,
    ocibuild_after_push,
    ocibuild_before_deploy,
    ocibuild_builders,
    ocibuild_context_stores,
    ocibuild_deployers,
    ocibuild_pod_spec_mutators,
    ocibuild_preprocessors,
)

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

publish(__name__, globals(), __all__)
