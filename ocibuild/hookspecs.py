"""The hooks an ocibuild plugin implements (pluggy project ``ocibuild``).

See :mod:`ocibuild.pipeline._hookspecs` for the whole contract; in short, a plugin is a module
(or object) with functions named like the specs, decorated with :data:`hookimpl`, and published
under the entry-point group ``ocibuild``::

    # pyproject.toml of the plugin distribution
    [project.entry-points.ocibuild]
    myplugin = "ocibuild_myplugin"

    # ocibuild_myplugin.py
    from ocibuild.hookspecs import hookimpl

    @hookimpl
    def ocibuild_deployers():
        return {"mydeployer": MyDeployer}

Name hooks return a mapping of name -> factory; what a factory makes must follow its kind's
protocol in :mod:`ocibuild.pipeline` (``Preprocessor``, ``Builder``, ``Deployer``,
``ContextStore``, ``PodSpecMutator``). ``ocibuild_transports`` returns prefix -> ``Transport``,
``ocibuild_credential_sources`` name -> ``CredentialSource`` (registry credentials).
A name provided by two plugins is an error naming both. Lifecycle hooks observe a run; their
return values are ignored, and an exception they raise stops the run.
"""

from ._public import publish
from .pipeline._hookspecs import (
    PROJECT,
    BuilderFactory,
    ContextStoreFactory,
    CredentialSource,
    DeployerFactory,
    PodSpecMutatorFactory,
    PreprocessorFactory,
    hookimpl,
    hookspec,
    ocibuild_after_build,
    ocibuild_after_push,
    ocibuild_before_deploy,
    ocibuild_builders,
    ocibuild_context_stores,
    ocibuild_credential_sources,
    ocibuild_deployers,
    ocibuild_pod_spec_mutators,
    ocibuild_preprocessors,
    ocibuild_transports,
)

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

publish(__name__, globals(), __all__)
