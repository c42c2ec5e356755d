"""The ``cluster`` builder (Fairing's ``ClusterBuilder``): the Dockerfile build runs inside
Kubernetes, as a batch/v1 Job running Kaniko (default) or BuildKit rootless.

The steps: the Dockerfile (generated from the preprocessor's context, or the user's own:
:mod:`._dockerfile`, the docker builder's) and its context become a reproducible gzip tar
from ocibuild's own tar writer; a context store keeps it (``configmap`` by default, ``s3``,
``pvc``, a plugin's ``gcs``) and says how the pod reaches it; the destination's credentials
become a ``kubernetes.io/dockerconfigjson`` secret (never logged); the Job runs the executor
(:mod:`._executors`) and is followed with the deployers' machinery, its log streamed as
build progress. The executor reports the pushed digest in the pod's termination message; the
result is the reference pinned by it. Then the Job, the secret and the stored context are
deleted (``cleanup=True``), after a failure too, which raises :class:`ClusterBuildError`
with the executor's own error line.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..._errors import OCIBuildError
from ...layer import build_blob
from ...oci import Digest, Reference
from ...transports import Location
from .._context import BuildContext
from .._errors import DeployError, DeployTimeoutError, PipelineError, PodPendingError
from .._protocols import (
    BuildResult,
    ContextStore,
    ExecutorContext,
    ExecutorContextStore,
    PodSpec,
    PodSpecMutator,
    Preprocessor,
)
from ._base import pod_spec_for
from ._dockerfile import DockerContext, dockerfile_context, generated_context
from ._executor_result import (
    ClusterBuildError,
    build_failure,
    reported_digest,
    termination_message,
)
from ._executors import (
    BUILDKIT_IMAGE,
    EXECUTORS,
    KANIKO_IMAGE,
    ExecutorBuild,
    executor_pod_spec,
)
from .append import DEFAULT_IMAGE_NAME, content_tag, default_base_image
from .docker import registry_digest

if TYPE_CHECKING:
    from ...transports.registry import RegistryOptions
    from ..deployers import Job, JobRun

__all__ = ["BUILD_ID_LABEL", "ClusterBuildError", "ClusterBuilder"]

_log = logging.getLogger("ocibuild.builders")

BUILD_ID_LABEL = "ocibuild/build-id"
_LOG_KEPT = 200  # log lines kept for the error message
_LOOPBACK = re.compile(r"^(localhost|127(\.\d+){3}|\[::1\])(:\d+)?$")


class ClusterBuilder:
    """Fairing's ``ClusterBuilder``: the Dockerfile built by an executor Job in the cluster.

    ``context_source`` is a :class:`ContextStore`, or a store's name (``configmap``, the
    default; ``s3`` with ``bucket``, ``prefix``, ``region``, ``endpoint_url``,
    ``credentials_secret``; ``pvc`` with ``pvc_name``; any other store option, or a plugin
    store's, in ``context_options``); a store object with a
    ``for_build(defaults)`` method is asked for the store given the Job's namespace and
    kubeconfig.
    ``executor``: ``kaniko`` (image
    ``executor_image``, default :data:`KANIKO_IMAGE`) or ``buildkit``. ``executor_cache``
    turns on the executor's layer cache in ``cache_repo`` (default ``REPO/cache``): each build
    then also pushes its layers there, which costs registry space and push time, and saves the
    ``RUN`` steps of unchanged layers. ``insecure``: push over plain HTTP (default: for
    loopback hosts and hosts ``registry_options`` calls insecure). ``cleanup=False`` keeps the
    Job, the secret and the stored context for inspection.
    """

    def __init__(
        self,
        registry: str | None = None,
        image_name: str = DEFAULT_IMAGE_NAME,
        base_image: str | None = None,
        context_source: ContextStore | str = "configmap",
        preprocessor: Preprocessor | None = None,
        push: bool = True,
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        namespace: str | None = None,
        dockerfile_path: str | os.PathLike[str] | None = None,
        cleanup: bool = True,
        *,
        tag: str | None = None,
        to: str | None = None,
        dockerfile: str | os.PathLike[str] | None = None,
        context_dir: str | os.PathLike[str] | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        executor: str = "kaniko",
        executor_image: str | None = None,
        executor_cache: bool = False,
        cache_repo: str | None = None,
        insecure: bool | None = None,
        excludes: Sequence[str] = (),
        registry_options: RegistryOptions | None = None,
        timeout: float | None = None,
        pending_timeout: float = 300,
        ttl_seconds_after_finished: int = 600,
        config_file: str | None = None,
        kube_context: str | None = None,
        bucket: str | None = None,
        prefix: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials_secret: str | None = None,
        pvc_name: str | None = None,
        context_options: Mapping[str, Any] | None = None,
        context_store_factory: ContextStoreFactory | None = None,
    ) -> None:
        if dockerfile_path is not None and dockerfile is not None:
            raise PipelineError("give dockerfile_path= or dockerfile=, not both")
        self.dockerfile_path = dockerfile_path if dockerfile_path is not None else dockerfile
        if preprocessor is None and self.dockerfile_path is None:
            raise PipelineError("the cluster builder needs a preprocessor, or a dockerfile_path=")
        if executor not in EXECUTORS:
            raise PipelineError(f"executor={executor!r}: use one of {', '.join(EXECUTORS)}")
        self.registry = registry.rstrip("/") if registry else None
        self.image_name = image_name
        self.base_image = base_image or default_base_image()
        self.context_source = context_source
        self.preprocessor = preprocessor
        self.push = _boolean(push, "push")
        self.pod_spec_mutators = list(pod_spec_mutators or ())
        self.namespace = namespace
        self.cleanup = _boolean(cleanup, "cleanup")
        self.tag = tag
        self.to = to
        self.context_dir = context_dir
        self.build_args = dict(build_args or {})
        self.target = target
        self.executor = executor
        self.executor_image = executor_image or (
            KANIKO_IMAGE if executor == "kaniko" else BUILDKIT_IMAGE
        )
        self.executor_cache = _boolean(executor_cache, "executor_cache")
        self.cache_repo = cache_repo
        self.insecure = None if insecure is None else _boolean(insecure, "insecure")
        self.excludes = tuple(excludes)
        self.registry_options = registry_options
        self.timeout = None if timeout is None else float(timeout)
        self.pending_timeout = float(pending_timeout)
        self.ttl_seconds_after_finished = int(ttl_seconds_after_finished)
        self.config_file = config_file
        self.kube_context = kube_context
        named = dict(bucket=bucket, prefix=prefix, region=region, endpoint_url=endpoint_url)
        named.update(credentials_secret=credentials_secret, pvc_name=pvc_name)
        self.context_options = {
            **{k: v for k, v in named.items() if v is not None},
            **(context_options or {}),
        }
        self.context_store_factory = context_store_factory
        self.name = self._name()
        self.image_tag: str | None = None  # Fairing's attribute: the last image built
        self.context: BuildContext | None = None
        self.docker_context: DockerContext | None = None

    # -- the builder ---------------------------------------------------------------------

    def build(self) -> BuildResult:
        """Preprocess, upload the context, run the executor Job; the image pinned by the
        digest the executor pushed."""
        context = self.preprocessor.preprocess() if self.preprocessor is not None else None
        self.context = context
        docker_context = self._docker_context(context)
        job = self._job()
        namespace = job.access.namespace(self.namespace)
        job.namespace = namespace
        build_id = secrets.token_hex(6)
        job.labels[BUILD_ID_LABEL] = build_id
        store = self._store(namespace)
        with tempfile.TemporaryDirectory(prefix="ocibuild-context-") as scratch:
            tar, context_digest = _write_context(docker_context, Path(scratch))
            destination = f"{self.name}:{self.tag or content_tag(context_digest)}"
            url = store.put(tar, f"{context_digest.hex[:16]}-{build_id}")
        _log.info("build context %s stored at %s", context_digest, url)
        try:
            where = (
                store.executor_context(url)
                if isinstance(store, ExecutorContextStore)
                else ExecutorContext(url)
            )
            digest = self._run(job, destination, where, docker_context.dockerfile)
        finally:
            if self.cleanup:
                store.delete(url)
        image = f"{destination}@{digest}"
        self.image_tag = image
        if context is None:
            context = BuildContext({}, ("true",))  # what the user's Dockerfile runs is its own
        return BuildResult(image, digest, self.push, context)

    def generate_pod_spec(self, image: str | None = None) -> PodSpec:
        """A PodSpec running the last built image (its context's command, when there is a
        preprocessor; the image's own entrypoint for a user's Dockerfile)."""
        chosen = image or self.image_tag
        if chosen is None:
            raise PipelineError("generate_pod_spec() needs build() to have run first")
        if self.preprocessor is None or self.context is None:
            return {"containers": [{"name": "main", "image": chosen}]}
        return pod_spec_for(chosen, self.context)

    # -- steps ---------------------------------------------------------------------------

    def _name(self) -> str:
        """The destination's name, without tag."""
        if self.to is not None:
            try:
                reference = Reference.parse(self.to.removeprefix("docker://"), default_tag=None)
            except OCIBuildError as err:
                raise PipelineError(f"to={self.to!r} is not a registry reference: {err}") from err
            if reference.digest is not None:
                raise PipelineError(f"to={self.to!r}: give a tag, not a digest")
            if reference.tag is not None and self.tag is None:
                self.tag = reference.tag
            return reference.name
        if not self.registry:
            raise PipelineError(
                "the cluster builder needs registry='host[:port]/namespace' (or to='REG/REPO:TAG')"
                ": the executor pushes there and the cluster pulls from there"
            )
        return f"{self.registry}/{self.image_name}"

    def _docker_context(self, context: BuildContext | None) -> DockerContext:
        if self.dockerfile_path is not None:
            made = dockerfile_context(
                self.dockerfile_path, self.context_dir, excludes=self.excludes
            )
        else:
            assert context is not None  # the constructor made sure of one of them
            made = generated_context(context, self._pinned_base(), excludes=self.excludes)
        self.docker_context = made
        return made

    def _pinned_base(self) -> str:
        """The base as ``FROM`` names it: pinned by the registry's digest when it answers."""
        base = self.base_image
        location = Location.parse(base)
        reference = location.reference
        if location.kind != "registry" or reference is None:
            raise PipelineError(
                f"the cluster builder's base must be in a registry the cluster pulls from, "
                f"not {base}: copy it there first (ocibuild copy)"
            )
        if reference.digest is not None:
            return base
        try:
            digest = registry_digest(location, self.registry_options)
        except OCIBuildError as err:
            _log.info("FROM %s: kept by its tag (%s)", base, err)
            return base
        return str(reference.with_digest(digest))

    def _store(self, namespace: str) -> ContextStore:
        # An in-cluster store lives where the Job runs: these reach a store that takes them.
        defaults = {
            "namespace": namespace,
            "config_file": self.config_file,
            "context": self.kube_context,
        }
        source = self.context_source
        if not isinstance(source, str):
            if self.context_options:
                raise PipelineError(
                    f"context options {', '.join(self.context_options)} are for a store named "
                    "by context_source='NAME'; this one is an object already"
                )
            # A store made on demand (Fairing's context sources) takes the defaults too.
            for_build = getattr(source, "for_build", None)
            return cast(ContextStore, for_build(defaults)) if callable(for_build) else source
        factory = self.context_store_factory
        if factory is None:
            if source != "configmap":
                raise PipelineError(
                    f"context_source={source!r}: stores are made by name through the plugin "
                    "manager; use ocibuild.builders.cluster.ClusterBuilder, config.set_builder"
                    "('cluster', ...) or --builder cluster, or pass a store object"
                )
            from ._configmap_store import ConfigMapContextStore

            factory = _builtin_store(ConfigMapContextStore)
        return factory(source, dict(self.context_options), defaults)

    def _job(self) -> Job:
        from ..deployers import Job

        class BuildJob(Job):
            """A Job that runs the executor's pod spec as it is (no runtime environment)."""

            def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> Any:
                (job,) = super().manifests(pod_spec, namespace, name)
                job["spec"]["template"]["spec"] = {**pod_spec, "restartPolicy": "Never"}
                return [job]

        return BuildJob(
            self.namespace,
            cleanup=self.cleanup,
            job_name="ocibuild-build",
            stream_log=False,
            deployer_type="cluster-builder",
            pod_spec_mutators=self.pod_spec_mutators,
            config_file=self.config_file,
            context=self.kube_context,
            wait=False,
            pending_timeout=self.pending_timeout,
            ttl_seconds_after_finished=self.ttl_seconds_after_finished,
        )

    def _run(self, job: Job, destination: str, where: ExecutorContext, dockerfile: str) -> Digest:
        """The executor Job, from its secret to its cleanup; the digest it pushed."""
        from ._push_secret import create_push_secret, delete_push_secret

        build = self._executor_build(destination, where, dockerfile)
        executor_pod_spec(self.executor, build)  # a bad combination fails before any request
        secret = create_push_secret(job, destination, self.registry_options)
        try:
            if secret is not None:
                build = dataclasses.replace(build, secret=secret)
            from ..deployers import JobRun

            run = job.deploy(cast(PodSpec, executor_pod_spec(self.executor, build)))
            assert isinstance(run, JobRun)  # not a dry run
            return self._follow(run, destination, secret)
        finally:
            if secret is not None and self.cleanup:
                delete_push_secret(job, secret)

    def _executor_build(
        self,
        destination: str,
        where: ExecutorContext,
        dockerfile: str,
    ) -> ExecutorBuild:
        return ExecutorBuild(
            destination=destination,
            dockerfile=dockerfile,
            context=where,
            image=self.executor_image,
            push=self.push,
            insecure=self._insecure(destination),
            build_args=self.build_args,
            target=self.target,
            cache=self.executor_cache,
            cache_repo=self.cache_repo,
        )

    def _insecure(self, destination: str) -> bool:
        if self.insecure is not None:
            return self.insecure
        host = Reference.parse(destination).registry
        options = self.registry_options
        return bool(_LOOPBACK.match(host)) or (options is not None and options.is_insecure(host))

    def _follow(self, run: JobRun, destination: str, secret: str | None) -> Digest:
        from ..deployers._workload import SECRET

        if secret is not None:
            run.own(SECRET, secret)  # so it goes with the Job, whatever happens here
        lines: collections.deque[str] = collections.deque(maxlen=_LOG_KEPT)

        def progress(line: Any) -> None:
            lines.append(line.text)
            _log.info("%s", line.text)

        try:
            status = run.follow(
                on_line=progress, timeout=self.timeout, pending_timeout=self.pending_timeout
            )
            pod = _last_pod(run)
            message = termination_message(pod)
            if status.phase != "succeeded":
                raise build_failure(
                    self.executor, destination, list(lines), message, status.message
                )
            return reported_digest(message, run.what)
        except (PodPendingError, DeployTimeoutError) as err:
            raise ClusterBuildError(f"the {self.executor} build of {destination}: {err}") from None
        finally:
            if self.cleanup:
                run.delete()


def _boolean(value: bool | str, name: str) -> bool:
    """A flag, also as the CLI's text gives it (``--builder-option executor_cache=true``):
    the CLI cannot read this module's annotations without importing the registry client."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise PipelineError(f"{name}={value!r}: expected true or false")


def _write_context(docker_context: DockerContext, directory: Path) -> tuple[Path, Digest]:
    """The context as a gzip tar file, in one pass; its digest."""
    path = directory / "context.tar.gz"
    blob = build_blob(
        docker_context.stream(),
        compression="gzip",
        level=None,
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
    )
    with blob, path.open("wb") as out:
        for chunk in blob:
            out.write(chunk)
    return path, blob.result.digest


# (store name, options, defaults) -> the store, given the defaults it takes as options; the
# pipeline passes one that asks the plugin manager.
ContextStoreFactory = Callable[[str, Mapping[str, Any], Mapping[str, Any]], ContextStore]


def _builtin_store(store: Callable[..., ContextStore]) -> ContextStoreFactory:
    def make(_name: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> ContextStore:
        params = set(inspect.signature(store).parameters)
        taken = {k: v for k, v in defaults.items() if k in params and v is not None}
        return store(**{**taken, **options})

    return make


def _last_pod(run: JobRun) -> dict[str, Any]:
    pods = run.list_pods()
    if not pods:
        raise DeployError(f"{run.what} finished with no pod left to read its result from")
    return pods[-1]
