"""The pipeline's contracts: what a preprocessor, builder, deployer and context store are.

A run is ``Preprocessor.preprocess() -> BuildContext``, then ``Builder.build() -> BuildResult``
(the builder holds its preprocessor) and ``Builder.generate_pod_spec() -> PodSpec``, then
``Deployer.deploy(pod_spec, context) -> DeployHandle``. Pod spec mutators edit the
:class:`PodSpec` in between; a cluster builder hands its build context to a
:class:`ContextStore`. Plugins provide any of them by name (:mod:`ocibuild.hookspecs`).

The pod spec is Kubernetes' PodSpec in its JSON form (camelCase keys), typed for the fields
ocibuild's deployers and mutators use; any other PodSpec field may be set as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    BinaryIO,
    Literal,
    Protocol,
    TypedDict,
    get_args,
    runtime_checkable,
)

from ..oci import Digest
from ._context import BuildContext
from ._errors import PipelineError

if TYPE_CHECKING:
    from ..image._write import WriteResult

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


# -- the pod spec ------------------------------------------------------------------------


class EnvVar(TypedDict, total=False):
    """One ``env`` entry of a container: ``value``, or ``valueFrom`` a secret or config map."""

    name: str
    value: str
    valueFrom: dict[str, Any]


class VolumeMount(TypedDict, total=False):
    """Where a volume of the pod appears in a container."""

    name: str
    mountPath: str
    subPath: str
    readOnly: bool


class ResourceRequirements(TypedDict, total=False):
    """``limits`` and ``requests``: ``{"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1}``."""

    limits: dict[str, str | int]
    requests: dict[str, str | int]


class Container(TypedDict, total=False):
    """A container of the pod (Kubernetes ``Container``)."""

    name: str
    image: str
    command: list[str]
    args: list[str]
    env: list[EnvVar]
    workingDir: str
    resources: ResourceRequirements
    volumeMounts: list[VolumeMount]


class PodSpec(TypedDict, total=False):
    """A Kubernetes ``PodSpec`` (JSON form); builders fill ``containers``, mutators the rest."""

    containers: list[Container]
    volumes: list[dict[str, Any]]
    serviceAccountName: str
    nodeSelector: dict[str, str]
    tolerations: list[dict[str, Any]]
    imagePullSecrets: list[dict[str, str]]  # [{"name": SECRET}]
    restartPolicy: str


# Edits a pod spec in place before it is deployed; the namespace is None when not known.
PodSpecMutator = Callable[[PodSpec, "str | None"], None]


# -- preprocess, build -------------------------------------------------------------------


@runtime_checkable
class Preprocessor(Protocol):
    """Turns a target (files, a notebook, a function) into a :class:`BuildContext`."""

    def preprocess(self) -> BuildContext:
        """Collect the files, command, env and requirements of the target."""
        ...


@dataclass(frozen=True)
class BuildResult:
    """A built image: where it was written (with ``@digest``) and what went into it."""

    image: str  # e.g. "registry:5000/team/job:3f2a...@sha256:..." or "oci:DIR:TAG@sha256:..."
    digest: Digest
    pushed: bool  # written to a registry (as opposed to a local layout or archive)
    context: BuildContext
    write: WriteResult | None = None  # per-blob details, for --json


@runtime_checkable
class Builder(Protocol):
    """Builds the context its preprocessor makes into an image and writes it somewhere."""

    def build(self) -> BuildResult:
        """Preprocess, build and write; return the image pinned by digest."""
        ...

    def generate_pod_spec(self, image: str | None = None) -> PodSpec:
        """A pod spec that runs ``image`` (default: the last built one) with the context's
        command."""
        ...


@runtime_checkable
class ContextStore(Protocol):
    """Where a cluster builder puts a build context for the in-cluster build to fetch.

    The context is a tarball (what a Kaniko-style builder takes as ``--context``); the store
    keeps it under ``key`` (unique per build, e.g. the context's digest) and says where the
    build pod can fetch it from. The builder deletes it once the build is done.
    """

    def put(self, context: Path | BinaryIO, key: str) -> str:
        """Store the tarball (a file, or a binary stream read to its end) under ``key``;
        return the URL the build fetches it from (``s3://``, ``gs://``, ``https://``, ...)."""
        ...

    def delete(self, url: str) -> None:
        """Remove what :meth:`put` stored at ``url``; nothing to remove is not an error."""
        ...


@dataclass(frozen=True)
class ExecutorContext:
    """How an in-cluster build executor reaches a stored context.

    ``url`` is what the executor is given as its context: a remote tarball (``s3://``,
    ``gs://``, ``https://``) or a file inside the pod (``tar:///workspace-context/ctx.tar.gz``)
    that ``volumes`` mount. ``env`` and ``volumes`` are what the pod needs to fetch it (an
    endpoint, a region, a credentials secret). A store that cannot name a URL the executor
    understands leaves ``url`` to the builder's fetch step by setting ``fetch_url``: an HTTPS
    URL the pod may read the tarball from without further credentials (a presigned URL).
    """

    url: str
    env: tuple[EnvVar, ...] = ()
    volumes: tuple[dict[str, Any], ...] = ()
    volume_mounts: tuple[VolumeMount, ...] = ()
    fetch_url: str | None = None


@runtime_checkable
class ExecutorContextStore(ContextStore, Protocol):
    """A :class:`ContextStore` that also says what the build pod needs to fetch the context
    (stores inside the cluster, object stores with their own endpoint or credentials). The
    cluster builder asks it after :meth:`ContextStore.put`; a plain store's URL is passed to the
    executor as it is."""

    def executor_context(self, url: str) -> ExecutorContext:
        """What the executor's pod needs to read the context that :meth:`put` stored at
        ``url``."""
        ...


# -- deploy ------------------------------------------------------------------------------

DeployPhase = Literal["pending", "running", "succeeded", "failed", "unknown"]
_PHASES: tuple[str, ...] = get_args(DeployPhase)


@dataclass(frozen=True)
class DeployStatus:
    """Where a deployed workload is: its phase, and a one-line message saying why."""

    phase: DeployPhase
    message: str = ""

    def __post_init__(self) -> None:
        if self.phase not in _PHASES:
            raise PipelineError(f"deploy phase {self.phase!r} is not one of {', '.join(_PHASES)}")

    @property
    def state(self) -> str:
        """The phase as Kubernetes spells pod phases: ``Pending``, ``Running``, ``Succeeded``,
        ``Failed`` or ``Unknown``."""
        return self.phase.capitalize()

    @property
    def done(self) -> bool:
        """Whether the workload has finished (it will not change phase again)."""
        return self.phase in ("succeeded", "failed")


@runtime_checkable
class DeployHandle(Protocol):
    """What :meth:`Deployer.deploy` returns: the running (or finished) workload."""

    def status(self) -> DeployStatus:
        """The current status, asked now."""
        ...

    def wait(self, timeout: float | None = None) -> DeployStatus:
        """Block until the workload is done (or ready, for a server), or ``timeout`` seconds
        have passed; the status then."""
        ...

    def logs(self, follow: bool = False) -> Iterator[str]:
        """The output, line by line (without line ends); ``follow`` keeps yielding new lines
        until the workload ends."""
        ...

    def delete(self) -> None:
        """Remove what the deploy created; deleting twice is not an error."""
        ...


@runtime_checkable
class Deployer(Protocol):
    """Runs what a builder built, and returns a handle on it."""

    def deploy(self, pod_spec: PodSpec, context: BuildContext | None) -> DeployHandle:
        """Run the image described by ``pod_spec`` (built from ``context``, when known)."""
        ...


@dataclass
class DryRun:
    """The handle of a ``dry_run`` deploy: what it would create or send, and nothing was.

    ``manifests`` are the objects or request bodies, in the order they would go (the CLI
    prints them as YAML for ``--dry-run``); ``name``, ``image`` and ``kind`` describe the
    workload, ``namespace`` (Kubernetes) and ``url`` (a server's address) when they are known.
    Any deployer, a plugin's too, may return one.
    """

    manifests: list[dict[str, Any]]
    name: str
    image: str
    kind: str
    namespace: str | None = None
    url: str | None = None

    def status(self) -> DeployStatus:
        """``pending``: a dry run creates nothing."""
        return DeployStatus("pending", "dry run: nothing was created")

    def wait(self, timeout: float | None = None) -> DeployStatus:
        """The status: there is nothing to wait for."""
        return self.status()

    def logs(self, follow: bool = False) -> Iterator[str]:
        """No output: nothing ran."""
        return iter(())

    def delete(self) -> None:
        """Nothing to delete."""
