"""The deploy benchmark's cluster: the test bed's kwok cluster with the audit log on, a
watcher that times what the cluster does, and the request count read from the audit log.

The cluster is ``tests.support``'s (real kube-apiserver, etcd, Job controller and scheduler;
kwok plays the kubelets), started with kwokctl's ``KWOK_KUBE_AUDIT_POLICY`` (the environment
form of ``--kube-audit-policy``): every request reaches ``logs/audit.log`` at level Metadata,
whoever made it, so both tools' requests are counted the same way, by their user agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import KubeCluster, find_kube_bin, start_kube_cluster

from .measure import BenchError

__all__ = [
    "AuditLog",
    "AuditedCluster",
    "Timeline",
    "WATCHER_AGENT",
    "WORKLOADS",
    "Watcher",
    "Workload",
    "audited_cluster",
    "end_log",
]

WATCHER_AGENT = "ocibuild-bench-watcher"
# Metadata: who, what, when, and the answer's code; no bodies (none are needed to count).
_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
"""


@dataclass
class AuditedCluster:
    """A running cluster and its audit log."""

    cluster: KubeCluster
    audit: AuditLog


@contextlib.contextmanager
def audited_cluster(workdir: Path) -> Iterator[AuditedCluster]:
    """Start the test bed's cluster with the audit log on; delete it after."""
    try:
        bin_dir = find_kube_bin()
    except Exception as exc:  # MissingToolError: its message says how to build the bed
        raise BenchError(str(exc)) from exc
    workdir.mkdir(parents=True, exist_ok=True)
    policy = workdir / "audit-policy.yaml"
    policy.write_text(_POLICY)
    previous = os.environ.get("KWOK_KUBE_AUDIT_POLICY")
    # start_kube_cluster passes its own environment on to kwokctl.
    os.environ["KWOK_KUBE_AUDIT_POLICY"] = str(policy)
    try:
        with start_kube_cluster(bin_dir, workdir) as cluster:
            log = workdir / "clusters" / cluster.name / "logs" / "audit.log"
            if not log.exists():
                raise BenchError(f"kwokctl did not turn the audit log on: no {log}")
            yield AuditedCluster(cluster, AuditLog(log))
    finally:
        if previous is None:
            os.environ.pop("KWOK_KUBE_AUDIT_POLICY", None)
        else:
            os.environ["KWOK_KUBE_AUDIT_POLICY"] = previous


class AuditLog:
    """The API server's audit log (JSON lines), read from a byte offset on."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> int:
        """Where the log ends now: count from here."""
        return self.path.stat().st_size

    def requests_since(self, offset: int) -> dict[str, Counter[str]]:
        """Per user agent, the requests received since ``offset``, as "verb resource" counts.

        A request has several audit events (RequestReceived, ResponseStarted for watches and
        log streams, ResponseComplete); it is counted once, by its auditID.
        """
        seen: set[str] = set()
        out: dict[str, Counter[str]] = {}
        with open(self.path, "rb") as f:
            f.seek(offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # still being written
                event = json.loads(line)
                if event["auditID"] in seen:
                    continue
                seen.add(event["auditID"])
                ref = event.get("objectRef") or {}
                what = ref.get("resource") or event.get("requestURI", "?").split("?")[0]
                if ref.get("subresource"):
                    what += "/" + ref["subresource"]
                agent = event.get("userAgent", "")
                out.setdefault(agent, Counter())[f"{event['verb']} {what}"] += 1
        return out


def end_log(logs_file: Path) -> None:
    """End every followed read of ``logs_file``, as a kubelet ends a container's log when the
    container exits.

    kwok serves a followed log until the client hangs up: it asks its stub runtime whether the
    container still runs, gets Unavailable, and the CRI log reader takes that for "running".
    The one clean end it has is a read error: replacing the file by a directory makes the
    reader (which watches the file's directory for a new file of that name) reopen it, fail to
    read it, and end the response, with the error's text as a last line.
    """
    logs_file.unlink()
    logs_file.mkdir()


@dataclass(frozen=True)
class Workload:
    """What the watcher watches besides pods: a kind, the condition that ends it, and how
    many pods it runs."""

    group: str  # "batch" for Jobs
    version: str
    plural: str
    done: str  # the condition type of success
    pods: int = 1


WORKLOADS = {
    "job": Workload("batch", "v1", "jobs", "Complete"),
    "trainjob": Workload("trainer.kubeflow.org", "v1alpha1", "trainjobs", "Complete", 2),
    "pytorchjob": Workload("kubeflow.org", "v1", "pytorchjobs", "Succeeded", 2),
    "tfjob": Workload("kubeflow.org", "v1", "tfjobs", "Succeeded", 2),
}


@dataclass
class Timeline:
    """When (``time.time()``) the watcher first saw each step of the namespace's Job."""

    job_created: float | None = None
    pod_created: float | None = None
    pod_running: float | None = None
    all_running: float | None = None
    pod_done: float | None = None
    job_complete: float | None = None
    job_deleted: float | None = None
    pod_phases: list[str] = field(default_factory=list)
    running: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        """A plain dict for the results file."""
        return {
            "job_created": self.job_created,
            "pod_created": self.pod_created,
            "pod_running": self.pod_running,
            "all_running": self.all_running,
            "pod_done": self.pod_done,
            "job_complete": self.job_complete,
            "job_deleted": self.job_deleted,
            "pod_phases": self.pod_phases,
        }


class Watcher:
    """Two watches (pods, the workload: Jobs by default) on one namespace, in threads of the
    harness: a sidecar the tools do not share a process with, under its own user agent (left
    out of their counts)."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        on_pod_done: Callable[[], None] | None = None,
        workload: Workload = WORKLOADS["job"],
    ) -> None:
        import kubernetes

        self._kubernetes: Any = kubernetes  # untyped: kept as Any
        self.namespace = namespace
        self.timeline = Timeline()
        self.workload = workload
        self._on_pod_done = on_pod_done
        self._api = self._kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self._api.user_agent = WATCHER_AGENT
        self._watches: list[Any] = []
        self._errors: list[BaseException] = []
        self._ready = threading.Barrier(3)
        self._threads = [
            threading.Thread(target=self._run, args=(kind,), daemon=True)
            for kind in ("pods", "jobs")
        ]

    def __enter__(self) -> Watcher:
        for thread in self._threads:
            thread.start()
        self._ready.wait(timeout=30)  # both watches listed and open before the tool starts
        return self

    def __exit__(self, *exc: object) -> None:
        for watch in self._watches:
            watch.stop()
        self._api.close()

    def wait(self, until: float, *, complete: bool) -> None:
        """Until the Job is Complete (with ``complete``) or deleted, or ``until`` passes."""
        while time.time() < until:
            t = self.timeline
            if (complete and t.job_complete) or t.job_deleted:
                return
            if self._errors:
                raise BenchError(f"the watcher failed: {self._errors[0]!r}")
            time.sleep(0.05)

    def _run(self, kind: str) -> None:
        client = self._kubernetes.client
        lister = client.CoreV1Api(self._api).list_namespaced_pod
        if kind != "pods":
            w = self.workload
            custom = client.CustomObjectsApi(self._api)

            def lister(namespace: str, **kwargs: Any) -> Any:
                return custom.list_namespaced_custom_object(
                    w.group, w.version, namespace, w.plural, **kwargs
                )

        watch = self._kubernetes.watch.Watch()
        self._watches.append(watch)
        try:
            listed = lister(self.namespace)
            version = (
                listed.metadata.resource_version
                if kind == "pods"
                else listed["metadata"]["resourceVersion"]
            )
            self._ready.wait(timeout=30)
            stream = watch.stream(
                lister, self.namespace, resource_version=version, timeout_seconds=600
            )
            for event in stream:
                now = time.time()
                obj = event["object"]
                if kind == "pods":
                    self._pod(event["type"], obj, now)
                else:
                    self._job(event["type"], obj, now)
        except BaseException as exc:  # reported by wait(); a daemon thread has nowhere else
            self._errors.append(exc)
            self._ready.abort()

    def _pod(self, kind: str, pod: Any, now: float) -> None:
        t = self.timeline
        t.pod_created = t.pod_created or now
        phase = pod.status.phase if pod.status else None
        if phase and (not t.pod_phases or t.pod_phases[-1] != phase):
            t.pod_phases.append(phase)
        if phase == "Running" and t.pod_running is None:
            t.pod_running = now
        if phase in ("Running", "Succeeded"):
            t.running.add(pod.metadata.name)
            if t.all_running is None and len(t.running) >= self.workload.pods:
                t.all_running = now
        if phase in ("Succeeded", "Failed") and t.pod_done is None:
            t.pod_done = now
            if self._on_pod_done is not None:
                self._on_pod_done()

    def _job(self, kind: str, job: Any, now: float) -> None:
        # The workload as JSON (custom objects come as dicts; so does a Job here).
        t = self.timeline
        t.job_created = t.job_created or now
        conditions = (job.get("status") or {}).get("conditions") or ()
        done = self.workload.done
        if t.job_complete is None and any(
            c.get("type") == done and c.get("status") == "True" for c in conditions
        ):
            t.job_complete = now
        if kind == "DELETED":
            t.job_deleted = now
