"""Following a workload's pods: their trouble while Pending, and every container's log.

:class:`PodFollower` runs one watch on the workload itself and one on its pods (by label
selector), and a log reader per container once it has started, all feeding one queue. Its
:meth:`PodFollower.events` yields, in the caller's thread, what a deployer reports: the
workload as it changes, pods in trouble while Pending, and log lines (prefixed with the pod's
name once the workload has had more than one pod).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._kube import KubeAccess, Watch

__all__ = [
    "PENDING_TROUBLE",
    "LogLine",
    "PodFollower",
    "PodTrouble",
    "WorkloadChanged",
    "pending_trouble",
    "terminated_state",
]

_log = logging.getLogger("ocibuild.deployers")

# Waiting reasons that hold a pod in Pending until someone fixes something.
PENDING_TROUBLE = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
# How long log readers may take to deliver their last lines once the workload is done.
_LOG_DRAIN_SECONDS = 10.0
# ... and how long a log stream may stay silent then before it is taken as finished.
_LOG_IDLE_SECONDS = 1.5


@dataclass(frozen=True)
class PodTrouble:
    """A pod held in Pending (``reason`` Unschedulable, ImagePullBackOff, ...) or crashing
    (CrashLoopBackOff), and since when."""

    pod: str
    reason: str
    message: str
    since: float  # time.monotonic() when first seen

    def describe(self) -> str:
        """``pod NAME is Pending: REASON: MESSAGE`` (or ``is in CrashLoopBackOff``)."""
        message = " ".join(self.message.split())
        state = "is in" if self.reason == "CrashLoopBackOff" else "is Pending:"
        return f"pod {self.pod} {state} {self.reason}" + (f": {message}" if message else "")


@dataclass(frozen=True)
class LogLine:
    """One line a container wrote (``prefix`` names its pod when there are several)."""

    pod: str
    container: str
    text: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"{self.prefix}{self.text}"


@dataclass(frozen=True)
class WorkloadChanged:
    """The watched workload (a Job, a TFJob, ...) as the API server now has it."""

    obj: dict[str, Any]


@dataclass(frozen=True)
class PodsChanged:
    """A pod of the workload changed (the follower keeps the latest of each)."""

    pods: dict[str, dict[str, Any]] = field(default_factory=dict)


def pending_trouble(pod: dict[str, Any]) -> tuple[str, str] | None:
    """``(reason, message)`` when ``pod`` is Pending for a reason that will not pass by itself,
    or a container of it keeps crashing (CrashLoopBackOff, in any phase)."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or ():
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            return "CrashLoopBackOff", str(waiting.get("message") or "")
    if status.get("phase") not in (None, "Pending"):
        return None
    for condition in status.get("conditions") or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return "Unschedulable", str(condition.get("message") or "")
    for container in [
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
    ]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PENDING_TROUBLE:
            return str(waiting["reason"]), str(waiting.get("message") or "")
    return None


def terminated_state(pod: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first container that ended unsuccessfully: ``(name, state.terminated)``."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    for container in statuses:
        for state in (container.get("state") or {}, container.get("lastState") or {}):
            terminated = state.get("terminated")
            if terminated and terminated.get("exitCode", 0) != 0:
                return str(container.get("name")), terminated
    return None


def _started_containers(pod: dict[str, Any]) -> list[str]:
    """Containers whose log can be read: running, or ended."""
    names = []
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        state = container.get("state") or {}
        if "running" in state or "terminated" in state:
            names.append(str(container.get("name")))
    return names


class PodFollower:
    """Watches a workload and its pods; reads the pods' logs when ``follow_logs``.

    ``workload`` lists the workload by name (a ``list_namespaced_*`` method with its
    arguments); ``selector`` picks its pods. ``many_pods`` prefixes every line with its pod's
    name from the start (a workload of several pods); otherwise prefixes begin with the second pod.
    """

    def __init__(
        self,
        access: KubeAccess,
        namespace: str,
        *,
        what: str,
        workload: Callable[..., Any],
        workload_kwargs: dict[str, Any],
        selector: str,
        follow_logs: bool,
        many_pods: bool = False,
    ) -> None:
        self.access = access
        self.namespace = namespace
        self.what = what
        self.follow_logs = follow_logs
        self.selector = selector
        self.pods: dict[str, dict[str, Any]] = {}
        self.troubles: dict[str, PodTrouble] = {}
        self._prefix = many_pods
        self._queue: queue.Queue[object] = queue.Queue()
        self._watches = [
            access.watch(what, workload, namespace, **workload_kwargs),
            access.watch(
                f"watching the pods of {what}",
                access.core().list_namespaced_pod,
                namespace,
                label_selector=selector,
            ),
        ]
        self._readers: dict[tuple[str, str], threading.Thread] = {}
        self._responses: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._stopped = False

    # -- the caller's side ------------------------------------------------------------------

    def events(self, until: float | None = None) -> Iterator[object | None]:
        """Yield :class:`WorkloadChanged`, :class:`PodTrouble` and :class:`LogLine` as they
        happen, and None each second nothing does; ends when the caller stops iterating or
        ``until`` (a monotonic time) passes."""
        if not self._threads:
            self._start()
        while True:
            timeout = None if until is None else until - time.monotonic()
            if timeout is not None and timeout <= 0:
                return
            try:
                item = self._queue.get(timeout=min(timeout, 1.0) if timeout is not None else 1.0)
            except queue.Empty:
                yield None  # a tick: the caller checks its own deadlines
                continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, PodsChanged):
                yield from self._pods_changed(item.pods)
            else:
                yield item

    def drain_logs(self, timeout: float = _LOG_DRAIN_SECONDS) -> Iterator[LogLine]:
        """The log lines still on their way once the workload is done (readers of ended
        containers finish by themselves)."""
        deadline = time.monotonic() + timeout
        # The pods as they are now: the watch may not have brought their last change yet.
        listed = self.access.call(
            f"listing the pods of {self.what}",
            self.access.core().list_namespaced_pod,
            self.namespace,
            label_selector=self.selector,
        )
        for pod in listed.get("items") or ():
            self.pods[str(pod["metadata"]["name"])] = pod
        if len(self.pods) > 1:
            self._prefix = True
        for pod in list(self.pods.values()):
            self._read_logs(pod)
        last = time.monotonic()
        while True:
            readers_done = not any(t.is_alive() for t in self._readers.values())
            try:
                item = self._queue.get(timeout=0 if readers_done else 0.05)
            except queue.Empty:
                now = time.monotonic()
                # A kubelet ends the log of a container that ended; one that keeps the stream
                # open after its last line has said all it will.
                if readers_done or now > deadline or now - last > _LOG_IDLE_SECONDS:
                    return
                continue
            if isinstance(item, LogLine):
                last = time.monotonic()
                yield item

    @property
    def resumes(self) -> int:
        """How often a watch went on from its last resourceVersion after losing its connection."""
        return sum(w.resumes for w in self._watches)

    @property
    def relists(self) -> int:
        """How often a watch listed again because its resourceVersion was gone (410)."""
        return sum(w.relists for w in self._watches)

    def stop(self) -> None:
        """Stop the watches and the log readers."""
        self._stopped = True
        for watch in self._watches:
            watch.stop()
        for response in list(self._responses):
            try:
                response.shutdown()
            except Exception:  # already closed
                _log.debug("shutting a log stream failed")
        # Shut streams end their threads at once; none is left reading at interpreter exit.
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)

    # -- the threads' side ------------------------------------------------------------------

    def _start(self) -> None:
        workload, pods = self._watches
        self._spawn(self._run_watch, workload, lambda _kind, obj: WorkloadChanged(obj))
        self._spawn(self._run_watch, pods, self._pod_event)

    def _spawn(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True, name="ocibuild-kube")
        self._threads.append(thread)
        thread.start()
        return thread

    def _run_watch(self, watch: Watch, convert: Callable[[str, dict[str, Any]], object]) -> None:
        try:
            for kind, obj in watch:
                self._queue.put(convert(kind, obj))
        except BaseException as err:
            if not self._stopped:
                self._queue.put(err)

    def _pod_event(self, kind: str, pod: dict[str, Any]) -> PodsChanged:
        name = str(pod["metadata"]["name"])
        return PodsChanged({name: {**pod, "deleted": True} if kind == "DELETED" else pod})

    def _pods_changed(self, changed: dict[str, dict[str, Any]]) -> Iterator[object]:
        for name, pod in changed.items():
            self.pods[name] = pod
            if len(self.pods) > 1:
                self._prefix = True
            trouble = pending_trouble(pod)
            known = self.troubles.get(name)
            if trouble is None:
                self.troubles.pop(name, None)
            elif known is None or known.reason != trouble[0]:
                since = known.since if known is not None else time.monotonic()
                self.troubles[name] = PodTrouble(name, *trouble, since=since)
                yield self.troubles[name]
            if self.follow_logs and not pod.get("deleted"):
                self._read_logs(pod)

    def _read_logs(self, pod: dict[str, Any]) -> None:
        name = str(pod["metadata"]["name"])
        for container in _started_containers(pod):
            if (name, container) not in self._readers and self.follow_logs:
                self._readers[name, container] = self._spawn(self._run_log, name, container)

    def _run_log(self, pod: str, container: str) -> None:
        try:
            for text in self.access.log_lines(
                pod, self.namespace, container, follow=True, opened=self._responses.append
            ):
                prefix = f"[{pod}] " if self._prefix else ""
                self._queue.put(LogLine(pod, container, text, prefix))
        except Exception as err:
            if not self._stopped:
                _log.warning(
                    "could not read the log of pod %s: %s", pod, " ".join(str(err).split())
                )
