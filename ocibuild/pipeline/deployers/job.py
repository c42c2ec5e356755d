"""The ``job`` deployer (Fairing's ``Job``): the image runs as a Kubernetes batch/v1 Job.

``deploy()`` applies the pod spec mutators, creates the Job (and, with
``image_pull_secret=True``, a pull secret for the image's registry), then by default waits:
it follows every pod's log, reports pods held in Pending at once, reads the Job's real
conditions, and returns once the Job is Complete, or raises :class:`JobFailedError` naming the
reason, the failing pod, its exit code and the end of its log. A Job that succeeded is deleted
with its pods (``cleanup=True``); a failed one is kept for inspection unless
``cleanup="always"``. The :class:`JobRun` it returns has ``status``, ``wait``, ``logs`` and
``delete``. Requests go through the official ``kubernetes`` client (``ocibuild[kubernetes]``).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import secrets
import string
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from .._context import RUNTIME_ENV, BuildContext
from .._errors import (
    DeployError,
    DeployTimeoutError,
    JobFailedError,
    NoClusterError,
    PodPendingError,
)
from .._protocols import DeployStatus, PodSpec, PodSpecMutator
from ._base import check_pod_spec_mutators, image_of
from ._kube import KubeAccess, KubeApiError
from ._pods import LogLine, PodFollower, PodTrouble, WorkloadChanged, terminated_state

__all__ = ["DryRun", "Job", "JobRun", "job_status"]

_log = logging.getLogger("ocibuild.deployers")

MANAGED_BY = {"app.kubernetes.io/managed-by": "ocibuild"}
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# Istio's sidecar never exits, so a Job with one never finishes (Fairing turned it off too).
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
_LOG_TAIL = 20
_DELETE_SECONDS = 60.0
_NAME_CHARS = string.ascii_lowercase + string.digits
Cleanup = bool | Literal["always"]


def job_status(
    job: Mapping[str, Any], pods: Mapping[str, Mapping[str, Any]] | None = None
) -> DeployStatus:
    """The phase of a Job from its conditions (and its pods, for Pending vs Running)."""
    status = job.get("status") or {}
    true = {c.get("type"): c for c in status.get("conditions") or () if c.get("status") == "True"}
    counts = f"{status.get('succeeded', 0)} succeeded, {status.get('failed', 0)} failed"
    if "Complete" in true:
        return DeployStatus("succeeded", f"complete: {counts}")
    if "Failed" in true:
        condition = true["Failed"]
        return DeployStatus("failed", _condition_text(condition) + f" ({counts})")
    if "FailureTarget" in true:
        return DeployStatus("running", "failing: " + _condition_text(true["FailureTarget"]))
    if "SuccessCriteriaMet" in true:
        return DeployStatus("running", "succeeding: its pods are ending")
    if "Suspended" in true:
        return DeployStatus("pending", "suspended")
    live = [p for p in (pods or {}).values() if not p.get("deleted")]
    running = [p for p in live if (p.get("status") or {}).get("phase") == "Running"]
    if running or status.get("ready"):
        return DeployStatus("running", f"{max(len(running), status.get('ready') or 0)} running")
    active = status.get("active") or 0
    return DeployStatus("pending", f"{active} pod(s) starting" if active else "no pod yet")


def _condition_text(condition: Mapping[str, Any]) -> str:
    reason = str(condition.get("reason") or condition.get("type"))
    message = " ".join(str(condition.get("message") or "").split())
    return f"{reason}: {message}" if message else reason


def _random_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


def _name_prefix(job_name: str | None, image: str) -> str:
    """``job_name`` (with a trailing ``-``), else the image's repository name."""
    base = job_name or image.split("@")[0].rsplit("/", 1)[-1].split(":")[0] or "ocibuild-job"
    cleaned = "".join(c if c in _NAME_CHARS else "-" for c in base.lower()).strip("-")
    cleaned = (cleaned or "ocibuild-job")[:50].rstrip("-")
    return cleaned + "-"


class Job:
    """Fairing's ``Job`` deployer: a batch/v1 Job that runs the image ``runs`` times."""

    def __init__(
        self,
        namespace: str | None = None,
        runs: int = 1,
        output: Any = None,
        cleanup: Cleanup = True,
        labels: Mapping[str, str] | None = None,
        job_name: str | None = None,
        stream_log: bool = True,
        deployer_type: str = "job",
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        annotations: Mapping[str, str] | None = None,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
        *,
        wait: bool = True,
        timeout: float | None = None,
        pending_timeout: float = 300,
        backoff_limit: int = 0,
        active_deadline_seconds: int | None = None,
        ttl_seconds_after_finished: int | None = None,
        dry_run: bool = False,
        image_pull_secret: str | bool | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        if cleanup not in (True, False, "always"):
            raise DeployError(f"cleanup={cleanup!r}: use True, False or 'always'")
        if not isinstance(runs, int) or runs < 1:
            raise DeployError(f"runs={runs!r}: the number of runs is a whole number, 1 or more")
        self.namespace = namespace
        self.runs = runs
        self.output = output
        self.cleanup = cleanup
        self.labels = {**MANAGED_BY, "fairing-deployer": deployer_type, **(labels or {})}
        self.job_name = job_name
        self.stream_log = stream_log
        self.deployer_type = deployer_type
        self.pod_spec_mutators = check_pod_spec_mutators(pod_spec_mutators)
        self.annotations = dict(annotations or {})
        self.config_file = config_file
        self.context = context
        self.client_configuration = client_configuration
        self.persist_config = persist_config
        self.wait = wait
        self.timeout = timeout
        self.pending_timeout = pending_timeout
        self.backoff_limit = backoff_limit
        self.active_deadline_seconds = active_deadline_seconds
        self.ttl_seconds_after_finished = ttl_seconds_after_finished
        self.dry_run = dry_run
        self.image_pull_secret = image_pull_secret
        self.log_stream = log_stream
        self.access = KubeAccess(config_file, context, client_configuration, persist_config)

    # -- manifests -------------------------------------------------------------------------

    def manifests(self, pod_spec: PodSpec, namespace: str, name: str) -> list[dict[str, Any]]:
        """What :meth:`deploy` creates, in order: the pull secret (with
        ``image_pull_secret=True``; its data left out), then the Job."""
        image = image_of(pod_spec)
        spec: dict[str, Any] = copy.deepcopy(dict(pod_spec))
        spec["restartPolicy"] = "Never"
        for i, container in enumerate(spec.get("containers") or ()):
            container.setdefault("name", "main" if i == 0 else f"main-{i}")
            env = container.setdefault("env", [])
            present = {e.get("name") for e in env}
            env.extend({"name": k, "value": v} for k, v in RUNTIME_ENV.items() if k not in present)
        out: list[dict[str, Any]] = []
        if self.image_pull_secret is True:
            secret = pull_secret(f"{name}-pull", namespace, image, self.labels, credentials=False)
            out.append(secret)
        if self.image_pull_secret:
            secret_name = (
                f"{name}-pull" if self.image_pull_secret is True else self.image_pull_secret
            )
            pulls = spec.setdefault("imagePullSecrets", [])
            if {"name": secret_name} not in pulls:
                pulls.append({"name": secret_name})
        job_spec: dict[str, Any] = {
            "completions": self.runs,
            "parallelism": self.runs,
            "backoffLimit": self.backoff_limit,
            "template": {
                "metadata": {
                    "labels": dict(self.labels),
                    "annotations": {**NO_SIDECAR, **self.annotations},
                },
                "spec": spec,
            },
        }
        if self.active_deadline_seconds is not None:
            job_spec["activeDeadlineSeconds"] = self.active_deadline_seconds
        if self.ttl_seconds_after_finished is not None:
            job_spec["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": self.labels}
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        out.append(
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}
        )
        return out

    # -- deploy ----------------------------------------------------------------------------

    def deploy(self, pod_spec: PodSpec, context: BuildContext | None = None) -> JobRun | DryRun:
        """Create the Job; unless ``wait=False``, follow it to its end (see the module doc)."""
        image = image_of(pod_spec)
        local = image.startswith(("oci:", "docker-archive:"))
        try:
            namespace = self.access.namespace(self.namespace)
        except NoClusterError as err:
            verb = "written" if local else "pushed"
            raise NoClusterError(f"{err}; the image was {verb} as {image}") from None
        if local:
            raise DeployError(
                f"the job deployer runs images from a registry, and {image} is a local file: "
                "build with registry= (or --registry) so that the cluster can pull it"
            )
        pod_spec = copy.deepcopy(pod_spec)
        apply_mutators(self.pod_spec_mutators, pod_spec, namespace, self.access)
        name = _random_name(_name_prefix(self.job_name, image))
        manifests = self.manifests(pod_spec, namespace, name)
        if self.dry_run:
            return DryRun(manifests, namespace, name, image)
        run = self._create(manifests, namespace, name, image)
        if self.wait:
            self._follow(run)
        return run

    def _create(
        self, manifests: list[dict[str, Any]], namespace: str, name: str, image: str
    ) -> JobRun:
        job = manifests[-1]
        secret_name: str | None = None
        if self.image_pull_secret is True:
            secret = pull_secret(f"{name}-pull", namespace, image, self.labels, credentials=True)
            secret_name = secret["metadata"]["name"]
            self.access.call(
                f"creating the image pull secret {namespace}/{secret_name}",
                self.access.core().create_namespaced_secret,
                namespace,
                secret,
            )
        try:
            created = self.access.call(
                f"creating Job {namespace}/{name}",
                self.access.batch().create_namespaced_job,
                namespace,
                job,
            )
        except DeployError:
            if secret_name is not None:
                _delete_secret(self.access, namespace, secret_name)
            raise
        run = JobRun(self, created, image, manifests, secret_name)
        if secret_name is not None:
            run.own_secret()
        _log.info("created Job %s/%s running %s", namespace, name, image)
        return run

    def _follow(self, run: JobRun) -> None:
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
        except (PodPendingError, DeployTimeoutError) as err:
            if self.cleanup == "always":
                run.delete()
            raise type(err)(
                _kept_or_deleted(err, run, self.cleanup), **_error_fields(err)
            ) from None
        if status.phase == "succeeded":
            if self.cleanup:
                run.delete()
            return
        error = run.failure()
        if self.cleanup == "always":
            run.delete()
        raise JobFailedError(
            _kept_or_deleted(error, run, self.cleanup),
            reason=error.reason,
            pod=error.pod,
            exit_code=error.exit_code,
            log_tail=error.log_tail,
        )


def _error_fields(err: DeployError) -> dict[str, Any]:
    if isinstance(err, PodPendingError):
        return {"pod": err.pod, "reason": err.reason}
    return {}


def _kept_or_deleted(err: DeployError, run: JobRun, cleanup: Cleanup) -> str:
    first, _, rest = str(err).partition("\n")
    if cleanup == "always":
        first += "; the Job was deleted (cleanup='always')"
    else:
        first += (
            f"; the Job is kept for inspection: kubectl delete job {run.name} -n {run.namespace}"
        )
    return first + (f"\n{rest}" if rest else "")


def apply_mutators(
    mutators: Sequence[PodSpecMutator], pod_spec: PodSpec, namespace: str, backend: object
) -> None:
    """Apply ``mutators`` in order to ``pod_spec``, in place."""
    from ._mutators import apply_pod_spec_mutators

    apply_pod_spec_mutators(mutators, pod_spec, namespace, backend)


def pull_secret(
    name: str, namespace: str, image: str, labels: Mapping[str, str], *, credentials: bool
) -> dict[str, Any]:
    """A ``kubernetes.io/dockerconfigjson`` secret for the registry of ``image``, from
    ocibuild's own credential sources; without ``credentials`` the entry is left empty (what
    a dry run shows)."""
    from ...oci import Reference
    from ...transports.registry import RegistryOptions, find_credential

    reference = Reference.parse(image.split("@")[0])
    key = "https://index.docker.io/v1/" if reference.registry == "docker.io" else reference.registry
    entry: dict[str, str] = {}
    if credentials:
        found = find_credential(reference.registry, reference.repository, RegistryOptions())
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


def _delete_secret(access: KubeAccess, namespace: str, name: str) -> None:
    access.call(
        f"deleting the image pull secret {namespace}/{name}",
        access.core().delete_namespaced_secret,
        name,
        namespace,
        missing_ok=True,
    )


@dataclass
class DryRun:
    """What a ``dry_run`` deploy would create; nothing was. ``manifests`` are the objects."""

    manifests: list[dict[str, Any]]
    namespace: str
    name: str
    image: str
    kind: str = "Job"

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


class JobRun:
    """A Job ``deploy`` created: ``name``, ``namespace``, ``uid``, and what it is doing."""

    kind = "Job"

    def __init__(
        self,
        deployer: Job,
        job: dict[str, Any],
        image: str,
        manifests: list[dict[str, Any]],
        secret: str | None,
    ) -> None:
        self.deployer = deployer
        self.access = deployer.access
        self.job = job
        self.name = str(job["metadata"]["name"])
        self.namespace = str(job["metadata"]["namespace"])
        self.uid = str(job["metadata"]["uid"])
        self.image = image
        self.manifests = manifests
        self.secret = secret
        self.pods: dict[str, dict[str, Any]] = {}
        self.deleted = False
        self.resumes = 0  # watches that went on after a dropped connection
        self.relists = 0  # watches that listed again after 410 Gone

    def __repr__(self) -> str:
        return f"<JobRun {self.namespace}/{self.name}>"

    @property
    def what(self) -> str:
        return f"Job {self.namespace}/{self.name}"

    @property
    def selector(self) -> str:
        """The label selector of the Job's pods (the label its controller sets)."""
        return f"{JOB_NAME_LABEL}={self.name}"

    # -- the handle ------------------------------------------------------------------------

    def status(self) -> DeployStatus:
        """The Job's phase now (asks the API server); once the Job is deleted, the phase it
        had last."""
        job = self.access.call(
            f"reading {self.what}",
            self.access.batch().read_namespaced_job,
            self.name,
            self.namespace,
            missing_ok=True,
        )
        if job is None:
            last = job_status(self.job, self.pods)
            if last.done:
                return DeployStatus(last.phase, f"{last.message}; the Job is deleted")
            return DeployStatus("unknown", "the Job was deleted before it finished")
        self.job = job
        pods = self._list_pods()
        return job_status(self.job, {p["metadata"]["name"]: p for p in pods})

    def wait(self, timeout: float | None = None) -> DeployStatus:
        """Block until the Job is Complete or Failed (or ``timeout`` seconds pass); its status
        then. A pod Pending in trouble for ``pending_timeout`` raises PodPendingError."""
        try:
            return self.follow(timeout=timeout, pending_timeout=self.deployer.pending_timeout)
        except DeployTimeoutError:
            return job_status(self.job, self.pods)

    def logs(self, follow: bool = False) -> Iterator[str]:
        """Every pod's log, line by line; ``follow`` reads on as pods start, until the Job ends.
        With more than one pod, each line starts with ``[pod-name]``."""
        if not follow:
            yield from self._logs_now()
            return
        follower = self._follower(follow_logs=True)
        try:
            for event in follower.events():
                if isinstance(event, LogLine):
                    yield str(event)
                elif isinstance(event, WorkloadChanged):
                    self.job = event.obj
                    if job_status(self.job).done:
                        break
            for line in follower.drain_logs():
                yield str(line)
        finally:
            follower.stop()

    def delete(self) -> None:
        """Delete the Job with its pods (Foreground propagation) and its pull secret, and
        wait until they are gone; deleting twice is not an error."""
        if not self.deleted:
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
            self.access.call(
                f"deleting {self.what}",
                self.access.batch().delete_namespaced_job,
                self.name,
                self.namespace,
                body=body,
                missing_ok=True,
            )
            if self.secret is not None:
                _delete_secret(self.access, self.namespace, self.secret)
            self.deleted = True
        self._wait_gone()

    # -- following -------------------------------------------------------------------------

    def follow(
        self,
        *,
        on_line: Any = None,
        timeout: float | None = None,
        pending_timeout: float | None = None,
    ) -> DeployStatus:
        """Watch the Job to its end: report state changes and pods in trouble, pass log lines
        to ``on_line`` (None: logs are not read); the final status."""
        follower = self._follower(follow_logs=on_line is not None)
        started = time.monotonic()
        until = None if timeout is None else started + timeout
        shown: tuple[str, str] | None = None
        status = job_status(self.job)
        try:
            for event in follower.events(until):
                if isinstance(event, WorkloadChanged):
                    self.job = event.obj
                elif isinstance(event, PodTrouble):
                    _log.warning("%s: %s", self.what, event.describe())
                elif isinstance(event, LogLine):
                    on_line(event)
                    continue
                self.pods = follower.pods
                status = job_status(self.job, self.pods)
                if (status.phase, status.message) != shown:
                    shown = (status.phase, status.message)
                    _log.info("%s: %s (%s)", self.what, status.state, status.message)
                if status.done:
                    break
                self._check_pending(follower, pending_timeout)
            else:
                raise DeployTimeoutError(
                    f"{self.what} is still {status.state} after {timeout:g} s ({status.message})"
                )
            if on_line is not None:
                for line in follower.drain_logs():
                    on_line(line)
        finally:
            follower.stop()
            self.resumes += follower.resumes
            self.relists += follower.relists
        return status

    def _check_pending(self, follower: PodFollower, pending_timeout: float | None) -> None:
        if pending_timeout is None:
            return
        now = time.monotonic()
        for trouble in follower.troubles.values():
            if now - trouble.since >= pending_timeout:
                raise PodPendingError(
                    f"{self.what}: {trouble.describe()} (for {now - trouble.since:.0f} s, "
                    f"pending_timeout={pending_timeout:g})",
                    pod=trouble.pod,
                    reason=trouble.reason,
                )

    def _follower(self, *, follow_logs: bool) -> PodFollower:
        return PodFollower(
            self.access,
            self.namespace,
            what=f"watching {self.what}",
            workload=self.access.batch().list_namespaced_job,
            workload_kwargs={"field_selector": f"metadata.name={self.name}"},
            selector=self.selector,
            follow_logs=follow_logs,
            many_pods=self.deployer.runs > 1,
        )

    # -- reading ---------------------------------------------------------------------------

    def failure(self) -> JobFailedError:
        """What went wrong, once the Job has failed: reason, failing pod, exit code, log tail."""
        status = job_status(self.job)
        failed = [
            c
            for c in (self.job.get("status") or {}).get("conditions") or ()
            if c.get("type") in ("Failed", "FailureTarget") and c.get("status") == "True"
        ]
        reason = str(failed[0].get("reason") or "Failed") if failed else "Failed"
        pods = self._list_pods()
        ended = [(p, terminated_state(p)) for p in pods]
        culprit = next(((p, t) for p, t in ended if t is not None), None)
        if culprit is None:
            return JobFailedError(f"{self.what} failed: {status.message}", reason=reason)
        pod, (container, terminated) = culprit
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
        return JobFailedError(message, reason=reason, pod=pod_name, exit_code=code, log_tail=tail)

    def own_secret(self) -> None:
        """Make the Job the owner of its pull secret, so the secret goes when the Job does."""
        assert self.secret is not None
        owner = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": self.name,
            "uid": self.uid,
        }
        self.access.call(
            f"making {self.what} the owner of secret {self.secret}",
            self.access.core().patch_namespaced_secret,
            self.secret,
            self.namespace,
            {"metadata": {"ownerReferences": [owner]}},
            _content_type="application/merge-patch+json",
        )

    def _list_pods(self) -> list[dict[str, Any]]:
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
        pods = self._list_pods()
        for pod in pods:
            name = str(pod["metadata"]["name"])
            prefix = f"[{name}] " if len(pods) > 1 or self.deployer.runs > 1 else ""
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
        """Until the Job is gone (Foreground deletion removes its pods first)."""
        jobs = self.access.batch().list_namespaced_job
        selector: dict[str, Any] = {"field_selector": f"metadata.name={self.name}"}
        listed = self.access.call(f"reading {self.what}", jobs, self.namespace, **selector)
        if not listed.get("items"):
            return
        watch = self.access.watch(
            f"watching {self.what} being deleted",
            jobs,
            self.namespace,
            resource_version=listed["metadata"]["resourceVersion"],
            **selector,
        )
        timer = threading.Timer(_DELETE_SECONDS, watch.stop)
        timer.daemon = True
        timer.start()
        try:
            for kind, _job in watch:
                if kind == "DELETED":
                    return
            _log.warning("%s: still being deleted after %.0f s", self.what, _DELETE_SECONDS)
        finally:
            timer.cancel()
            watch.stop()
