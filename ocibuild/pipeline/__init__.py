"""The pipeline: preprocessor -> builder -> deployer, plugins, and the in-image runtime.

Everything here is found by name through the plugin manager (:mod:`ocibuild.plugins`); the
built-ins register through the same hooks as third-party plugins. The contracts a plugin's
components follow are exported here (see :mod:`ocibuild.pipeline._protocols`). Importing this
package stays light: the preprocessors, builders and deployers are imported when they are
used, and nothing here imports pluggy or the HTTP stack.
"""

from typing import TYPE_CHECKING, Any

from .._public import publish

if TYPE_CHECKING:
    from ._protocols import (
        Builder,
        BuildResult,
        Container,
        ContextStore,
        Deployer,
        DeployHandle,
        DeployPhase,
        DeployStatus,
        DryRun,
        EnvVar,
        ExecutorContext,
        ExecutorContextStore,
        PodSpec,
        PodSpecMutator,
        Preprocessor,
        ResourceRequirements,
        VolumeMount,
    )

__all__ = [
    "BuildResult",
    "Builder",
    "Container",
    "ContextStore",
    "DeployHandle",
    "DeployPhase",
    "DeployStatus",
    "Deployer",
    "DryRun",
    "EnvVar",
    "ExecutorContext",
    "ExecutorContextStore",
    "PodSpec",
    "PodSpecMutator",
    "Preprocessor",
    "ResourceRequirements",
    "VolumeMount",
]


def __getattr__(name: str) -> Any:
    # The contracts load on first use: `import ocibuild` reaches this package for the
    # pipeline's errors and must not pay for the protocols' typing machinery.
    if name in __all__:
        from . import _protocols

        value = getattr(_protocols, name)
        publish(__name__, {name: value}, [name])
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
