"""kwok Stages that play a pod's life for each test scenario, picked by a pod label.

kwok chooses among the Stages matching a pod at random, weighted, and ignores weight-0 ones
(kwok's own fast stages) when any matching Stage has a weight: so each of these, at weight
10000, always wins for a pod labelled ``ocibuild.test/scenario=<name>``, whoever owns the pod
(a Job, a JobSet's Job, a PyTorchJob, a ReplicaSet). Their selectors never overlap, so the
random choice never matters. Pods without the label, and the moves these leave out
(Pending -> Running), follow the fast stages: an unlabelled pod runs and is Ready at once, and
only a Job-owned one then completes.

A failing container is played as a kubelet would play it under the pod's restartPolicy: with
``Never`` the pod ends Failed; with ``OnFailure`` or ``Always`` the kubelet restarts it in
place, so the pod stays Running, not Ready, its container waiting in CrashLoopBackOff with a
restartCount that grows every CRASH_RESTART_SECONDS (the Job controller and the Training
Operator count those restarts against their backoffLimit).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BUILD_POD_SECONDS",
    "CRASH_RESTART_SECONDS",
    "SCENARIO_LABEL",
    "SCENARIO_STAGES",
    "SLOW_SECONDS",
    "Scenario",
]

SCENARIO_LABEL = "ocibuild.test/scenario"
# How long a `slow` pod stays Running before it succeeds.
SLOW_SECONDS = 3.0
# How often a crash-looping container is restarted (a real kubelet backs off from 10 s to 5 min).
CRASH_RESTART_SECONDS = 1.0


class Scenario:
    """The label values; Unschedulable needs no Stage (the real scheduler reports it)."""

    SUCCESS = "success"
    EXIT_3 = "exit-3"
    IMAGE_PULL_BACKOFF = "image-pull-backoff"
    SLOW = "slow"
    # Exits with 1 and is restarted forever, whatever the restartPolicy (a serving pod's failure).
    CRASH_LOOP = "crash-loop"


_TERMINATED = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: EXIT_CODE
      reason: REASON
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: PHASE
"""


def _terminated(exit_code: int, reason: str, phase: str) -> str:
    filled = _TERMINATED.replace("EXIT_CODE", str(exit_code)).replace("REASON", reason)
    return filled.replace("PHASE", phase)


# No timestamps here: kwok re-applies a Stage whose selector still matches after the update,
# and only an unchanged status keeps that from looping.
_IMAGE_PULL_BACKOFF = """\
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
      reason: ImagePullBackOff
      message: 'Back-off pulling image {{ .image }}'
{{ end }}
phase: Pending
"""


# Each pass restarts the container once more: kwok applies the Stage again after its own update,
# because the selector still matches, once the delay has passed again.
_UNREADY = (
    "'containers with unready status: ["
    "{{ range $i, $c := .spec.containers }}{{ if $i }} {{ end }}{{ $c.name }}{{ end }}]'"
)
_BACK_OFF = (
    "'back-off 10s restarting failed container={{ $item.name }} "
    "pod={{ $root.metadata.name }}_{{ $root.metadata.namespace }}({{ $root.metadata.uid }})'"
)
_CRASH_LOOP = f"""\
{{{{ $root := . }}}}
conditions:
- type: Ready
  status: "False"
  reason: ContainersNotReady
  message: {_UNREADY}
- type: ContainersReady
  status: "False"
  reason: ContainersNotReady
  message: {_UNREADY}
containerStatuses:
{{{{ range $index, $item := .spec.containers }}}}
{{{{ $origin := index $root.status.containerStatuses $index }}}}
- image: {{{{ $item.image | Quote }}}}
  name: {{{{ $item.name | Quote }}}}
  ready: false
  started: false
  restartCount: {{{{ add1 $origin.restartCount }}}}
  state:
    waiting:
      reason: CrashLoopBackOff
      message: {_BACK_OFF}
  lastState:
    terminated:
      exitCode: EXIT_CODE
      reason: Error
      startedAt: {{{{ Now | Quote }}}}
      finishedAt: {{{{ Now | Quote }}}}
{{{{ end }}}}
phase: Running
"""


def _crash_loop(exit_code: int) -> str:
    return _CRASH_LOOP.replace("EXIT_CODE", str(exit_code))


_ENDS = ("Never", "OnFailure")  # restart policies under which a pod that exits 0 is done
_RESTARTS = ("OnFailure", "Always")  # restart policies under which a failed container restarts


def _stage(
    scenario: str,
    phase: str,
    template: str,
    *,
    delay_ms: int = 0,
    scheduled: bool = False,
    restart_policies: tuple[str, ...] = (),
    name: str = "",
) -> dict[str, Any]:
    expressions: list[dict[str, Any]] = [
        {"key": f'.metadata.labels["{SCENARIO_LABEL}"]', "operator": "In", "values": [scenario]},
        {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
        {"key": ".status.phase", "operator": "In", "values": [phase]},
    ]
    if scheduled:
        expressions.append({"key": ".spec.nodeName", "operator": "Exists"})
    if restart_policies:
        expressions.append(
            {"key": ".spec.restartPolicy", "operator": "In", "values": list(restart_policies)}
        )
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": expressions},
        "weight": 10000,
        "next": {"statusTemplate": template},
    }
    if delay_ms:
        spec["delay"] = {"durationMilliseconds": delay_ms}
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": f"ocibuild-test-{name or scenario}"},
        "spec": spec,
    }


_CRASH_MS = int(CRASH_RESTART_SECONDS * 1000)

# The cluster builder's pods (label ocibuild/build-id) stay Running for a test executor
# (tests/support/_executor.py) to end; one nobody ends fails after BUILD_POD_SECONDS.
BUILD_POD_SECONDS = 300.0
_BUILD_POD: dict[str, Any] = {
    "apiVersion": "kwok.x-k8s.io/v1alpha1",
    "kind": "Stage",
    "metadata": {"name": "ocibuild-test-build-pod"},
    "spec": {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {
            "matchExpressions": [
                {"key": '.metadata.labels["ocibuild/build-id"]', "operator": "Exists"},
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
            ]
        },
        "weight": 10000,
        "delay": {"durationMilliseconds": int(BUILD_POD_SECONDS * 1000)},
        "next": {"statusTemplate": _terminated(1, "Error", "Failed")},
    },
}

SCENARIO_STAGES: list[dict[str, Any]] = [
    _BUILD_POD,
    _stage(
        Scenario.SUCCESS,
        "Running",
        _terminated(0, "Completed", "Succeeded"),
        restart_policies=_ENDS,
    ),
    _stage(
        Scenario.EXIT_3,
        "Running",
        _terminated(3, "Error", "Failed"),
        restart_policies=("Never",),
    ),
    _stage(
        Scenario.EXIT_3,
        "Running",
        _crash_loop(3),
        delay_ms=_CRASH_MS,
        restart_policies=_RESTARTS,
        name="exit-3-restarted",
    ),
    _stage(Scenario.CRASH_LOOP, "Running", _crash_loop(1), delay_ms=_CRASH_MS),
    _stage(Scenario.IMAGE_PULL_BACKOFF, "Pending", _IMAGE_PULL_BACKOFF, scheduled=True),
    _stage(
        Scenario.SLOW,
        "Running",
        _terminated(0, "Completed", "Succeeded"),
        delay_ms=int(SLOW_SECONDS * 1000),
        restart_policies=_ENDS,
    ),
]
