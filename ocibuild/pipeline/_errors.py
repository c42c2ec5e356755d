"""The pipeline's errors (the rest of the tree is in :mod:`ocibuild._errors`)::

OCIBuildError
├── PluginError                   a plugin failed to load, clashed, or broke a hook
└── PipelineError                 preprocess / build / deploy failed
    ├── DependencyError           requirements could not be resolved into wheels
    ├── ContextStoreError         a context store could not store or delete a build context
    └── DeployError               a deployer could not run the image
        ├── NoClusterError        no Kubernetes configuration or cluster was found
        ├── WorkloadFailedError   the workload ran and failed (reason, pod, exit code, log)
        │   └── JobFailedError    ... and it was a job (a Job, TrainJob, PyTorchJob, ...)
        ├── PodPendingError       a pod stayed Pending (Unschedulable, ImagePullBackOff, ...)
        └── DeployTimeoutError    the workload did not finish in time
"""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import OCIBuildError

__all__ = [
    "ContextStoreError",
    "DependencyError",
    "DeployError",
    "DockerBuildError",
    "DeployTimeoutError",
    "JobFailedError",
    "NoClusterError",
    "PipelineError",
    "PluginError",
    "PodPendingError",
    "WorkloadFailedError",
    "reworded",
]


class PluginError(OCIBuildError):
    """A plugin failed to import, provided a name another plugin provides, or broke a hook."""


class PipelineError(OCIBuildError):
    """A preprocess, build or deploy step failed.

    ``flags``, when set, is the same message with its advice spelled as command-line flags
    (``--executable FILE``) where the message spells Python parameters (``executable=``):
    the CLI shows that one.
    """

    def __init__(self, *args: object, flags: str | None = None) -> None:
        super().__init__(*args)
        self.flags = flags


class DependencyError(PipelineError):
    """Requirements could not be turned into wheels for the target image."""


class ContextStoreError(PipelineError):
    """A context store could not store, check or delete a build context: ``store`` names it
    (``s3``, ``pvc``), ``code`` is the service's own error code when it gave one."""

    def __init__(self, message: str, *, store: str, code: str | None = None) -> None:
        super().__init__(message)
        self.store = store
        self.code = code


class DockerBuildError(PipelineError):
    """A build step failed in the engine: ``step`` names it, ``output`` is what it printed
    last (the message holds both, on one line)."""

    def __init__(
        self, message: str, *, step: str | None = None, output: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.step = step
        self.output = output


class DeployError(PipelineError):
    """A deployer could not create, watch or clean up what it runs."""


class NoClusterError(DeployError):
    """No Kubernetes configuration or reachable cluster was found."""


class WorkloadFailedError(DeployError):
    """The workload failed: ``reason`` is its status's (or the pod's, CrashLoopBackOff),
    ``pod``/``exit_code`` the failing pod's, ``log_tail`` the last lines of that pod's log."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        pod: str | None = None,
        exit_code: int | None = None,
        log_tail: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.pod = pod
        self.exit_code = exit_code
        self.log_tail = list(log_tail)


class JobFailedError(WorkloadFailedError):
    """A job failed (a Job, TrainJob, PyTorchJob, TFJob): see :class:`WorkloadFailedError`."""


class PodPendingError(DeployError):
    """A pod stayed Pending for a reason (Unschedulable, ImagePullBackOff, ...) longer than
    ``pending_timeout``."""

    def __init__(self, message: str, *, pod: str, reason: str) -> None:
        super().__init__(message)
        self.pod = pod
        self.reason = reason


class DeployTimeoutError(DeployError):
    """The workload did not finish within ``timeout`` seconds (it is still there)."""


def reworded(err: DeployError, message: str) -> DeployError:
    """``err`` with another message and the same fields (a copy; ``err`` is unchanged)."""
    new = type(err).__new__(type(err))
    new.__dict__.update(err.__dict__)
    new.args = (message,)
    return new
