"""kwok Stages that play a pod's life for each test scenario, picked by a pod label.

kwok chooses among the Stages matching a pod at random, weighted, and ignores weight-0 ones
(kwok's own fast stages) when any matching Stage has a weight: so each of these, at weight
10000, always wins for a pod labelled ``ocibuild.test/scenario=<name>``. Pods without the
label, and the moves these leave out (Pending -> Running), follow the fast stages.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCENARIO_LABEL", "SCENARIO_STAGES", "SLOW_SECONDS", "Scenario"]

SCENARIO_LABEL = "ocibuild.test/scenario"
# How long a `slow` pod stays Running before it succeeds.
SLOW_SECONDS = 3.0


class Scenario:
    """The label values; Unschedulable needs no Stage (the real scheduler reports it)."""

    SUCCESS = "success"
    EXIT_3 = "exit-3"
    IMAGE_PULL_BACKOFF = "image-pull-backoff"
    SLOW = "slow"


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


def _stage(
    scenario: str, phase: str, template: str, *, delay_ms: int = 0, scheduled: bool = False
) -> dict[str, Any]:
    expressions: list[dict[str, Any]] = [
        {"key": f'.metadata.labels["{SCENARIO_LABEL}"]', "operator": "In", "values": [scenario]},
        {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
        {"key": ".status.phase", "operator": "In", "values": [phase]},
    ]
    if scheduled:
        expressions.append({"key": ".spec.nodeName", "operator": "Exists"})
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
        "metadata": {"name": f"ocibuild-test-{scenario}"},
        "spec": spec,
    }


SCENARIO_STAGES: list[dict[str, Any]] = [
    _stage(Scenario.SUCCESS, "Running", _terminated(0, "Completed", "Succeeded")),
    _stage(Scenario.EXIT_3, "Running", _terminated(3, "Error", "Failed")),
    _stage(Scenario.IMAGE_PULL_BACKOFF, "Pending", _IMAGE_PULL_BACKOFF, scheduled=True),
    _stage(
        Scenario.SLOW,
        "Running",
        _terminated(0, "Completed", "Succeeded"),
        delay_ms=int(SLOW_SECONDS * 1000),
    ),
]
