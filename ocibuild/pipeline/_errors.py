"""The pipeline's errors (the rest of the tree is in :mod:`ocibuild._errors`)::

OCIBuildError
├── PluginError                   a plugin failed to load, clashed, or broke a hook
└── PipelineError                 preprocess / build / deploy failed
    ├── DependencyError           requirements could not be resolved into wheels
    └── DeployError               a deployer could not run the image
        └── NoClusterError        no Kubernetes configuration or cluster was found
"""

from __future__ import annotations

from .._errors import OCIBuildError

__all__ = ["DependencyError", "DeployError", "NoClusterError", "PipelineError", "PluginError"]


class PluginError(OCIBuildError):
    """A plugin failed to import, provided a name another plugin provides, or broke a hook."""


class PipelineError(OCIBuildError):
    """A preprocess, build or deploy step failed."""


class DependencyError(PipelineError):
    """Requirements could not be turned into wheels for the target image."""


class DeployError(PipelineError):
    """A deployer could not create, watch or clean up what it runs."""


class NoClusterError(DeployError):
    """No Kubernetes configuration or reachable cluster was found."""
