"""What every Kubernetes deployer shares: how to reach a kind of object, the deploy steps, and
the handle.

:class:`Resource` names a kind (``batch/v1`` ``Job``, ``trainer.kubeflow.org/v1alpha1``
``TrainJob``, ...) and makes its requests as JSON. :class:`KubeDeployer` holds the options
every Kubernetes deployer takes and runs the steps of a deploy (namespace, mutators, name,
manifests, dry run, pull secret, create, follow, clean up); a deployer gives it
:meth:`KubeDeployer.manifests` and the handle class. :class:`WorkloadRun` is that handle
(``status``, ``wait``, ``logs``, ``delete``): it follows the workload and its pods through one
:class:`PodFollower`, and a subclass says how the workload's status reads
(:meth:`WorkloadRun.status_of`) and which label selects its pods.
"""

from __future__ import annotations

import abc
import base64
import copy
import json
import logging
import secrets
import string
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TextIO

from .._context import BuildContext
from .._errors import (
    DeployError,
    DeployTimeoutError,
    JobFailedError,
    NoClusterError,
    PodPendingError,
    WorkloadFailedError,
    reworded,
)
from .._protocols import DeployStatus, DryRun, PodSpec, PodSpecMutator
from ._base import check_pod_spec_mutators, image_of
from ._kube import KubeAccess, KubeApiError
from ._pods import (
    LogLine,
    PodFollower,
    PodTrouble,
    WorkloadChanged,
    pending_trouble,
    terminated_state,
)

__all__ = [
    "MANAGED_BY",
    "POD",
    "NO_SIDECAR",
    "Cleanup",
    "DryRun",
    "KubeDeployer",
    "Resource",
    "WorkloadRun",
    "condition_text",
    "pull_secret",
    "true_conditions",
    "wait_all_gone",
]

_log = logging.getLogger("ocibuild.deployers")

MANAGED_BY = {"app.kubernetes.io/managed-by": "ocibuild"}
# Istio's sidecar never exits, so a Job with one never finishes (Fairing turned it off too).
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
_LOG_TAIL = 20
_DELETE_SECONDS = 60.0
_NAME_CHARS = string.ascii_lowercase + string.digits
Cleanup = bool | Literal["always"]


def true_conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The object's conditions whose status is ``"True"``, by type."""
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return {str(c.get("type")): c for c in conditions if c.get("status") == "True"}


def condition_text(condition: Mapping[str, Any]) -> str:
    """``REASON: MESSAGE`` of a condition (its type when it has no reason)."""
    reason = str(condition.get("reason") or condition.get("type"))
    message = " ".join(str(condition.get("message") or "").split())
    return f"{reason}: {message}" if message else reason


@dataclass(frozen=True)
class Resource:
    """One kind of object and its requests, in the API's JSON: ``api_version`` as in a
    manifest (``v1``, ``apps/v1``, ``kubeflow.org/v1``), ``kind``, and its ``plural``."""

    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def _core(self, access: KubeAccess, verb: str) -> Callable[..., Any]:
        return access.core().method(verb, self.plural)

    def _custom(self, access: KubeAccess) -> Any:
        from ._kube import import_kubernetes

        return import_kubernetes().client.CustomObjectsApi(access.api)

    def _where(self) -> tuple[str, ...]:
        return (self.group, self.version)

    def create(self, access: KubeAccess, namespace: str, body: Mapping[str, Any]) -> Any:
        """Create ``body``; the object as created. Unknown fields are refused, not dropped."""
        what = f"creating {self.kind} {namespace}/{body['metadata']['name']}"
        if not self.group:
            return access.call(what, self._core(access, "create"), namespace, body)
        return access.call(
            what,
            self._custom(access).create_namespaced_custom_object,
            *self._where(),
            namespace,
            self.plural,
            body,
            field_validation="Strict",
        )

    def read(self, access: KubeAccess, namespace: str, name: str) -> Any:
        """The object now, or None when there is none."""
        what = f"reading {self.kind} {namespace}/{name}"
        if not self.group:
            return access.call(what, self._core(access, "read"), name, namespace, missing_ok=True)
        return access.call(
            what,
            self._custom(access).get_namespaced_custom_object,
            *self._where(),
            namespace,
            self.plural,
            name,
            missing_ok=True,
        )

    def lister(self, access: KubeAccess) -> Callable[..., Any]:
        """A ``list_namespaced_*`` method for :meth:`KubeAccess.watch`: ``(namespace, **kw)``."""
        if not self.group:
            return self._core(access, "list")
        custom = self._custom(access)
        where = self._where()

        def list_namespaced(namespace: str, **kwargs: Any) -> Any:
            return custom.list_namespaced_custom_object(*where, namespace, self.plural, **kwargs)

        return list_namespaced

    def patch(self, access: KubeAccess, namespace: str, name: str, patch: Mapping[str, Any]) -> Any:
        """A JSON merge patch of the object."""
        what = f"changing {self.kind} {namespace}/{name}"
        kind: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
        if not self.group:
            return access.call(what, self._core(access, "patch"), name, namespace, patch, **kind)
        return access.call(
            what,
            self._custom(access).patch_namespaced_custom_object,
            *self._where(),
            namespace,
            self.plural,
            name,
            patch,
            **kind,
        )

    def delete(
        self, access: KubeAccess, namespace: str, name: str, propagation: str = "Foreground"
    ) -> None:
        """Delete the object, and (``propagation``) what it owns; gone already is fine."""
        what = f"deleting {self.kind} {namespace}/{name}"
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if not self.group:
            access.call(
                what, self._core(access, "delete"), name, namespace, body=body, missing_ok=True
            )
            return
        access.call(
            what,
            self._custom(access).delete_namespaced_custom_object,
            *self._where(),
            namespace,
            self.plural,
            name,
            body=body,
            missing_ok=True,
        )

    def owner_reference(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """An ownerReference to ``obj``: what it owns is deleted with it."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"],
        }


SECRET = Resource("v1", "Secret", "secrets")
POD = Resource("v1", "Pod", "pods")


def wait_all_gone(
    access: KubeAccess,
    resource: Resource,
    namespace: str,
    selector: str,
    what: str,
    seconds: float = _DELETE_SECONDS,
) -> None:
    """Until no ``resource`` matching ``selector`` is left (a workload's children that the
    garbage collector deletes after the workload itself is gone)."""
    lister = resource.lister(access)
    listed = access.call(f"listing {what}", lister, namespace, label_selector=selector)
    left = {str(o["metadata"]["name"]) for o in listed.get("items") or ()}
    if not left:
        return
    watch = access.watch(
        f"watching the {resource.plural} of {what} being deleted",
        lister,
        namespace,
        resource_version=listed["metadata"]["resourceVersion"],
        label_selector=selector,
    )
    timer = threading.Timer(seconds, watch.stop)
    timer.daemon = True
    timer.start()
    try:
        for kind, obj in watch:
            name = str(obj["metadata"]["name"])
            if kind != "DELETED":
                # A controller not yet told may still make one (a Job whose pod it replaces).
                left.add(name)
                continue
            left.discard(name)
            if not left:
                return
        _log.warning("%s: %s still being deleted after %.0f s", what, ", ".join(left), seconds)
    finally:
        timer.cancel()
        watch.stop()


def random_name(prefix: str) -> str:
    """``prefix`` and five random lowercase letters and digits (what ``generateName`` adds)."""
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


def name_prefix(name: str | None, image: str, default: str) -> str:
    """``name`` (with a trailing ``-``), else the image's repository name, as a DNS label."""
    base = name or image.split("@")[0].rsplit("/", 1)[-1].split(":")[0] or default
    cleaned = "".join(c if c in _NAME_CHARS else "-" for c in base.lower()).strip("-")
    cleaned = (cleaned or default)[:40].rstrip("-")
    return cleaned + "-"


def pull_secret(
    name: str,
    namespace: str,
    image: str,
    labels: Mapping[str, str],
    *,
    credentials: bool,
    options: Any = None,
) -> dict[str, Any]:
    """A ``kubernetes.io/dockerconfigjson`` secret for the registry of ``image``, from
    ocibuild's own credential sources; without ``credentials`` the entry is left empty (what
    a dry run shows). ``options``: the ``RegistryOptions`` to look credentials up with."""
    from ...oci import Reference
    from ...transports.registry import RegistryOptions, find_credential, server_url

    reference = Reference.parse(image.split("@")[0])
    key = server_url(reference.registry)
    entry: dict[str, str] = {}
    if credentials:
        found = find_credential(
            reference.registry, reference.repository, options or RegistryOptions()
        )
        if found.username is None or found.password is None:
            what = "an identity token" if found.identity_token else "no user name and password"
            raise DeployError(
                f"image_pull_secret=True: ocibuild has {what} for {reference.registry} "
                f"(source: {found.source}), and a cluster pulls with a user name and "
                f"password: run 'ocibuild login {reference.registry}', or create the secret "
                "yourself and pass its name"
            )
        pair = f"{found.username}:{found.password}".encode()
        entry = {
            "username": found.username,
            "password": found.password,
            "auth": base64.b64encode(pair).decode(),
        }
    document = json.dumps({"auths": {key: entry}}, separators=(",", ":")).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": {".dockerconfigjson": base64.b64encode(document).decode()},
    }


class KubeDeployer(abc.ABC):
    """The options and deploy steps of every Kubernetes deployer.

    A subclass sets ``resource`` (the workload's kind) and ``run_class`` (its handle), and
    writes :meth:`manifests`. ``ends``: the workload finishes (a job), so ``cleanup`` applies;
    a server stays up, and ``wait`` means until it is ready.
    """

    resource: ClassVar[Resource]
    run_class: ClassVar[type[WorkloadRun]]
    ends: ClassVar[bool] = True
    default_name: ClassVar[str] = "ocibuild-job"
    # The kinds besides a pull secret that manifests() may put before the workload (a
    # Service): each is created first, then owned by the workload, so it goes with it.
    companions: ClassVar[Mapping[str, Resource]] = {}

    def __init__(
        self,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        name: str | None = None,
        deployer_type: str,
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        cleanup: Cleanup = True,
        stream_log: bool = True,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
        wait: bool = True,
        timeout: float | None = None,
        pending_timeout: float = 300,
        dry_run: bool = False,
        image_pull_secret: str | bool | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        if cleanup not in (True, False, "always"):
            raise DeployError(f"cleanup={cleanup!r}: use True, False or 'always'")
        self.namespace = namespace
        self.labels = {**MANAGED_BY, "fairing-deployer": deployer_type, **(labels or {})}
        self.annotations = dict(annotations or {})
        self.name = name
        self.deployer_type = deployer_type
        self.pod_spec_mutators = check_pod_spec_mutators(pod_spec_mutators)
        self.cleanup = cleanup
        self.stream_log = stream_log
        self.config_file = config_file
        self.context = context
        self.client_configuration = client_configuration
        self.persist_config = persist_config
        self.wait = wait
        self.timeout = timeout
        self.pending_timeout = pending_timeout
        self.dry_run = dry_run
        self.image_pull_secret = image_pull_secret
        self.log_stream = log_stream
        self.access = KubeAccess(config_file, context, client_configuration, persist_config)

    # -- what a deployer writes ------------------------------------------------------------

    @abc.abstractmethod
    def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> list[dict[str, Any]]:
        """What :meth:`deploy` creates, in order; the workload last. ``pod_spec`` is mutated."""

    def url(self, namespace: str, name: str) -> str | None:
        """Where a server answers, known before it runs (a job has none)."""
        return None

    # -- deploy ----------------------------------------------------------------------------

    def deploy(
        self, pod_spec: PodSpec, context: BuildContext | None = None
    ) -> WorkloadRun | DryRun:
        """Create the workload; unless ``wait=False``, follow it to its end (a job) or until
        it is ready (a server)."""
        image = image_of(pod_spec)
        local = image.startswith(("oci:", "docker-archive:"))
        try:
            namespace = self.access.namespace(self.namespace)
        except NoClusterError as err:
            verb = "written" if local else "pushed"
            raise NoClusterError(f"{err}; the image was {verb} as {image}") from None
        if local:
            raise DeployError(
                f"the {self.deployer_type} deployer runs images from a registry, and {image} "
                "is a local file: build with registry= (or --registry) so that the cluster can "
                "pull it"
            )
        pod_spec = copy.deepcopy(pod_spec)
        from ._mutators import apply_pod_spec_mutators

        apply_pod_spec_mutators(self.pod_spec_mutators, pod_spec, namespace, self.access)
        name = random_name(name_prefix(self.name, image, self.default_name))
        secret_name = self._pull_secret_name(name)
        if secret_name is not None:
            pulls = pod_spec.setdefault("imagePullSecrets", [])
            if {"name": secret_name} not in pulls:
                pulls.append({"name": secret_name})
        manifests = self.manifests(pod_spec, namespace, name)
        if self.image_pull_secret is True:
            secret = pull_secret(f"{name}-pull", namespace, image, self.labels, credentials=False)
            manifests.insert(0, secret)
        if self.dry_run:
            kind = self.resource.kind
            url = self.url(namespace, name)
            return DryRun(manifests, name, image, kind, namespace=namespace, url=url)
        run = self._create(manifests, namespace, name, image)
        if self.wait:
            self._follow(run)
        return run

    def _pull_secret_name(self, name: str) -> str | None:
        if self.image_pull_secret is True:
            return f"{name}-pull"
        return self.image_pull_secret or None

    def _create(
        self, manifests: list[dict[str, Any]], namespace: str, name: str, image: str
    ) -> WorkloadRun:
        *others, workload = manifests
        created_first: list[tuple[Resource, str]] = []
        try:
            for manifest in others:
                if manifest["kind"] == "Secret":
                    secret = pull_secret(
                        f"{name}-pull", namespace, image, self.labels, credentials=True
                    )
                    SECRET.create(self.access, namespace, secret)
                    created_first.append((SECRET, secret["metadata"]["name"]))
                else:
                    resource = self.companions[manifest["kind"]]
                    resource.create(self.access, namespace, manifest)
                    created_first.append((resource, manifest["metadata"]["name"]))
            obj = self.resource.create(self.access, namespace, workload)
        except DeployError:
            for resource, made in created_first:
                resource.delete(self.access, namespace, made, "Background")
            raise
        run = self.run_class(self, obj, image, manifests)
        for resource, made in created_first:
            run.own(resource, made)
        _log.info("created %s %s/%s running %s", self.resource.kind, namespace, name, image)
        return run

    def _follow(self, run: WorkloadRun) -> None:
        out = self.log_stream or sys.stdout

        def show(line: LogLine) -> None:
            out.write(f"{line}\n")
            out.flush()

        try:
            status = run.follow(
                on_line=show if self.stream_log else None,
                timeout=self.timeout,
                pending_timeout=self.pending_timeout,
            )
            if status.phase == "failed":
                raise run.failure()
        except (WorkloadFailedError, PodPendingError, DeployTimeoutError) as err:
            if self.cleanup == "always":
                run.delete()
            raise reworded(err, run.kept_or_deleted(str(err))) from None
        if self.ends and self.cleanup:
            run.delete()


class WorkloadRun(abc.ABC):
    """A workload ``deploy`` created: ``name``, ``namespace``, ``uid``, and what it is doing.

    A subclass gives :meth:`status_of` and :attr:`selector`; it may give :meth:`failure` a
    better account, and :meth:`created` the objects the workload's creation brings along.
    """

    def __init__(
        self,
        deployer: KubeDeployer,
        obj: dict[str, Any],
        image: str,
        manifests: list[dict[str, Any]],
    ) -> None:
        self.deployer = deployer
        self.access = deployer.access
        self.resource = deployer.resource
        self.obj = obj
        self.name = str(obj["metadata"]["name"])
        self.namespace = str(obj["metadata"]["namespace"])
        self.uid = str(obj["metadata"]["uid"])
        self.image = image
        self.manifests = manifests
        self.owned: list[tuple[Resource, str]] = []  # deleted with the workload
        self.pods: dict[str, dict[str, Any]] = {}
        self.deleted = False
        self.resumes = 0  # watches that went on after a dropped connection
        self.relists = 0  # watches that listed again after 410 Gone

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.namespace}/{self.name}>"

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def what(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def url(self) -> str | None:
        """Where a server answers (None for a job)."""
        return self.deployer.url(self.namespace, self.name)

    # -- what a workload says ---------------------------------------------------------------

    @property
    @abc.abstractmethod
    def selector(self) -> str:
        """The label selector of the workload's pods."""

    @abc.abstractmethod
    def status_of(
        self, obj: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
    ) -> DeployStatus:
        """The phase of the workload ``obj`` (with its ``pods``, when known)."""

    def finished(self, status: DeployStatus) -> bool:
        """Whether following can stop: the workload ended, or a server is ready."""
        return status.done if self.deployer.ends else status.phase != "pending"

    @property
    def many_pods(self) -> bool:
        """Whether the workload runs several pods (log lines then name theirs from the start)."""
        return False

    # -- the handle ------------------------------------------------------------------------

    def status(self) -> DeployStatus:
        """The phase now (asks the API server); once deleted, the phase it had last."""
        obj = self.resource.read(self.access, self.namespace, self.name)
        if obj is None:
            last = self.status_of(self.obj, self.pods)
            if last.done:
                return DeployStatus(last.phase, f"{last.message}; the {self.kind} is deleted")
            return DeployStatus("unknown", f"the {self.kind} was deleted before it finished")
        self.obj = obj
        pods = self.list_pods()
        return self.status_of(self.obj, {p["metadata"]["name"]: p for p in pods})

    def wait(self, timeout: float | None = None) -> DeployStatus:
        """Block until the workload is done (a server: ready), or ``timeout`` seconds pass;
        its status then. A pod in trouble for ``pending_timeout`` raises PodPendingError."""
        try:
            return self.follow(timeout=timeout, pending_timeout=self.deployer.pending_timeout)
        except DeployTimeoutError:
            return self.status_of(self.obj, self.pods)

    def logs(self, follow: bool = False) -> Iterator[str]:
        """Every pod's log, line by line; ``follow`` reads on as pods start, until the
        workload ends. With more than one pod, each line starts with ``[pod-name]``."""
        if not follow:
            yield from self._logs_now()
            return
        follower = self._follower(follow_logs=True)
        try:
            for event in follower.events():
                if isinstance(event, LogLine):
                    yield str(event)
                elif isinstance(event, WorkloadChanged):
                    self.obj = event.obj
                    if self.status_of(self.obj).done:
                        break
            for line in follower.drain_logs():
                yield str(line)
        finally:
            follower.stop()

    def delete(self) -> None:
        """Delete the workload with what it owns, and wait until all of it is gone (its pods
        too); deleting twice is not an error.

        The workload is deleted with Background propagation, and the wait is on its
        :meth:`children`: the garbage collector then removes a chain of owners (a TrainJob's
        JobSet, Jobs, pods) in well under a second, where with Foreground propagation it
        rechecks each waiting owner with a growing delay (10 to 45 s for a TrainJob on a
        test cluster). Nothing is orphaned either way."""
        if not self.deleted:
            self.resource.delete(self.access, self.namespace, self.name, "Background")
            for resource, name in self.owned:
                resource.delete(self.access, self.namespace, name, "Background")
            self.deleted = True
        self._wait_gone()
        for resource, selector in self.children():
            wait_all_gone(self.access, resource, self.namespace, selector, self.what)

    def children(self) -> list[tuple[Resource, str]]:
        """What the workload's controllers made, by kind and label selector, in the order the
        garbage collector removes them (the pods last)."""
        return [(POD, self.selector)]

    def own(self, resource: Resource, name: str) -> None:
        """Make the workload the owner of ``name`` (a pull secret), so it goes with it."""
        resource.patch(
            self.access,
            self.namespace,
            name,
            {"metadata": {"ownerReferences": [self.resource.owner_reference(self.obj)]}},
        )
        self.owned.append((resource, name))

    # -- following -------------------------------------------------------------------------

    def follow(
        self,
        *,
        on_line: Callable[[LogLine], None] | None = None,
        timeout: float | None = None,
        pending_timeout: float | None = None,
    ) -> DeployStatus:
        """Watch the workload to its end (a server: until ready): report state changes and
        pods in trouble, pass log lines to ``on_line`` (None: logs are not read); the status."""
        follower = self._follower(follow_logs=on_line is not None)
        until = None if timeout is None else time.monotonic() + timeout
        shown: tuple[str, str] | None = None
        status = self.status_of(self.obj)
        try:
            for event in follower.events(until):
                if isinstance(event, WorkloadChanged):
                    self.obj = event.obj
                elif isinstance(event, PodTrouble):
                    _log.warning("%s: %s", self.what, event.describe())
                elif isinstance(event, LogLine):
                    if on_line is not None:
                        on_line(event)
                    continue
                self.pods = follower.pods
                status = self.status_of(self.obj, self.pods)
                if (status.phase, status.message) != shown:
                    shown = (status.phase, status.message)
                    _log.info("%s: %s (%s)", self.what, status.state, status.message)
                if self.finished(status):
                    if not self.deployer.ends and status.phase == "running":
                        self.check_ready_pods()
                    break
                self.check_troubles(follower, pending_timeout)
            else:
                raise DeployTimeoutError(
                    f"{self.what} is still {status.state} after {timeout:g} s ({status.message})"
                )
            # A server's log goes on: what it wrote while starting, until it falls quiet.
            if on_line is not None:
                for line in follower.drain_logs():
                    on_line(line)
        finally:
            follower.stop()
            self.resumes += follower.resumes
            self.relists += follower.relists
        return status

    def check_troubles(self, follower: PodFollower, pending_timeout: float | None) -> None:
        """Raise once a pod has been in trouble too long: a crash loop at once (it has failed
        and been restarted already), Pending trouble after ``pending_timeout``."""
        now = time.monotonic()
        for trouble in follower.troubles.values():
            if trouble.reason == "CrashLoopBackOff":
                raise self.crash_failure(trouble.pod)
            if pending_timeout is not None and now - trouble.since >= pending_timeout:
                raise PodPendingError(
                    f"{self.what}: {trouble.describe()} (for {now - trouble.since:.0f} s, "
                    f"pending_timeout={pending_timeout:g})",
                    pod=trouble.pod,
                    reason=trouble.reason,
                )

    def check_ready_pods(self) -> None:
        """A server called ready is not, while one of its pods crash-loops: its controller's
        status lags behind the pods (a server with no readiness probe is Ready until it
        first crashes), so its pods are asked once more before the wait ends."""
        for pod in self.list_pods():
            self.pods[str(pod["metadata"]["name"])] = pod
            trouble = pending_trouble(pod)
            if trouble is not None and trouble[0] == "CrashLoopBackOff":
                raise self.crash_failure(str(pod["metadata"]["name"]))

    def _follower(self, *, follow_logs: bool) -> PodFollower:
        return PodFollower(
            self.access,
            self.namespace,
            what=f"watching {self.what}",
            workload=self.resource.lister(self.access),
            workload_kwargs={"field_selector": f"metadata.name={self.name}"},
            selector=self.selector,
            follow_logs=follow_logs,
            many_pods=self.many_pods,
        )

    # -- failures --------------------------------------------------------------------------

    def failure_reason(self) -> str:
        """The reason the workload's own status gives for its failure."""
        failed = true_conditions(self.obj).get("Failed")
        return str(failed.get("reason") or "Failed") if failed else "Failed"

    def failure(self) -> WorkloadFailedError:
        """What went wrong, once the workload has failed: reason, failing pod, exit code, and
        the end of that pod's log."""
        status = self.status_of(self.obj)
        reason = self.failure_reason()
        error = JobFailedError if self.deployer.ends else WorkloadFailedError
        pods = self.list_pods()
        culprit = next(((p, t) for p in pods if (t := terminated_state(p)) is not None), None)
        if culprit is None:
            return error(f"{self.what} failed: {status.message}", reason=reason)
        pod, (container, terminated) = culprit
        return self._pod_failure(error, reason, pod, container, terminated)

    def crash_failure(self, pod_name: str) -> WorkloadFailedError:
        """A pod in CrashLoopBackOff: the container that keeps exiting, with its last log."""
        error = JobFailedError if self.deployer.ends else WorkloadFailedError
        pod = self.pods.get(pod_name) or {"metadata": {"name": pod_name}}
        ended = terminated_state(pod)
        if ended is None:
            return error(
                f"{self.what}: pod {pod_name} is in CrashLoopBackOff", reason="CrashLoopBackOff"
            )
        container, terminated = ended
        return self._pod_failure(error, "CrashLoopBackOff", pod, container, terminated)

    def _pod_failure(
        self,
        error: type[WorkloadFailedError],
        reason: str,
        pod: Mapping[str, Any],
        container: str,
        terminated: Mapping[str, Any],
    ) -> WorkloadFailedError:
        pod_name = str(pod["metadata"]["name"])
        code = int(terminated.get("exitCode", 0))
        why = terminated.get("reason") or "Error"
        tail = self._log_tail(pod_name, container)
        message = (
            f"{self.what} failed ({reason}): pod {pod_name} container {container} exited with "
            f"code {code} ({why})"
        )
        if tail:
            message += "\nthe last lines of its log:\n" + "\n".join(f"  {t}" for t in tail)
        return error(message, reason=reason, pod=pod_name, exit_code=code, log_tail=tail)

    def kept_or_deleted(self, message: str) -> str:
        """``message`` saying whether the workload was deleted or kept for inspection."""
        first, _, rest = message.partition("\n")
        if self.deployer.cleanup == "always":
            first += f"; the {self.kind} was deleted (cleanup='always')"
        else:
            group = self.resource.group
            plain = group in ("", "batch", "apps")
            kind = self.kind.lower() if plain else f"{self.resource.plural}.{group}"
            first += (
                f"; the {self.kind} is kept for inspection: kubectl delete {kind} {self.name} "
                f"-n {self.namespace}"
            )
        return first + (f"\n{rest}" if rest else "")

    # -- reading ---------------------------------------------------------------------------

    def list_pods(self) -> list[dict[str, Any]]:
        """The workload's pods now, oldest first."""
        listed = self.access.call(
            f"listing the pods of {self.what}",
            self.access.core().list_namespaced_pod,
            self.namespace,
            label_selector=self.selector,
        )
        pods: list[dict[str, Any]] = listed.get("items") or []
        return sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))

    def _log_tail(self, pod: str, container: str) -> list[str]:
        try:
            return list(
                self.access.log_lines(
                    pod, self.namespace, container, follow=False, tail_lines=_LOG_TAIL
                )
            )
        except DeployError as err:
            _log.debug("no log tail for %s: %s", pod, err)
            return []

    def _logs_now(self) -> Iterator[str]:
        pods = self.list_pods()
        for pod in pods:
            name = str(pod["metadata"]["name"])
            prefix = f"[{name}] " if len(pods) > 1 or self.many_pods else ""
            for container in (pod.get("spec") or {}).get("containers") or ():
                try:
                    lines = self.access.log_lines(
                        name, self.namespace, str(container["name"]), follow=False
                    )
                    for line in lines:
                        yield prefix + line
                except KubeApiError as err:
                    if err.status not in (400, 404):  # not started yet, or gone
                        raise

    def _wait_gone(self) -> None:
        """Until the workload itself is gone."""
        lister = self.resource.lister(self.access)
        selector: dict[str, Any] = {"field_selector": f"metadata.name={self.name}"}
        listed = self.access.call(f"reading {self.what}", lister, self.namespace, **selector)
        if not listed.get("items"):
            return
        watch = self.access.watch(
            f"watching {self.what} being deleted",
            lister,
            self.namespace,
            resource_version=listed["metadata"]["resourceVersion"],
            **selector,
        )
        timer = threading.Timer(_DELETE_SECONDS, watch.stop)
        timer.daemon = True
        timer.start()
        try:
            for kind, _obj in watch:
                if kind == "DELETED":
                    return
            _log.warning("%s: still being deleted after %.0f s", self.what, _DELETE_SECONDS)
        finally:
            timer.cancel()
            watch.stop()
