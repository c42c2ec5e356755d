"""The Kubernetes test bed reports what a real cluster would, for each scenario a deployer meets.

Jobs go through the real API server, Job controller and scheduler; kwok's Stages play the
kubelet. Each test asserts what those real parts report, read with the official client.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support import (
    KUBE_BIN_ENV,
    SCENARIO_LABEL,
    SLOW_SECONDS,
    KubeCluster,
    MissingToolError,
    Scenario,
    find_kube_bin,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("kube")

_TIMEOUT = 30.0
# A Job's terminal conditions; SuccessCriteriaMet and FailureTarget come before them.
_DONE = ("Complete", "Failed")


def _job(name: str, scenario: str, **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {SCENARIO_LABEL: scenario}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example.invalid/train:1"}],
                    **pod_spec,
                },
            },
        },
    }


class _Jobs:
    """Jobs in one namespace through the official client; answers as the API's own JSON."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def create(self, job: dict[str, Any]) -> None:
        body: Any = job  # the client sends a dict as it is
        client.BatchV1Api(self.api).create_namespaced_job(self.namespace, body)

    def finished(self, name: str) -> dict[str, Any] | None:
        """The Job's Complete or Failed condition once it is True, else None."""
        job = client.BatchV1Api(self.api).read_namespaced_job_status(name, self.namespace)
        conditions = self._json(job)["status"].get("conditions", [])
        return next(
            (
                c
                for c in conditions
                if c["type"] in ("Complete", "Failed") and c["status"] == "True"
            ),
            None,
        )

    def pod(self, job_name: str) -> dict[str, Any] | None:
        """The Job's only pod, once there is one."""
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}"
        )
        items: list[dict[str, Any]] = self._json(pods)["items"]
        assert len(items) <= 1, [pod["metadata"]["name"] for pod in items]
        return items[0] if items else None

    def pod_in(self, job_name: str, phase: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            pod = self.pod(job_name)
            return pod if pod is not None and pod["status"].get("phase") == phase else None

        return wait_for(check, _TIMEOUT, f"the pod of Job {job_name} to be {phase}")

    def wait_finished(self, name: str) -> dict[str, Any]:
        return wait_for(lambda: self.finished(name), _TIMEOUT, f"Job {name} to finish")

    def log(self, pod_name: str, container: str) -> str:
        return client.CoreV1Api(self.api).read_namespaced_pod_log(
            pod_name, self.namespace, container=container
        )

    def _json(self, obj: object) -> Any:
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


@pytest.fixture
def jobs(kube_client: client.ApiClient, kube_namespace: str) -> _Jobs:
    return _Jobs(kube_client, kube_namespace)


def _container_state(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]
    return state


def test_success_completes_the_job(jobs: _Jobs) -> None:
    jobs.create(_job("ok", Scenario.SUCCESS))
    assert jobs.wait_finished("ok")["type"] == "Complete"
    pod = jobs.pod_in("ok", "Succeeded")
    assert _container_state(pod)["terminated"]["exitCode"] == 0


def test_exit_code_3_fails_the_job(jobs: _Jobs) -> None:
    jobs.create(_job("bad", Scenario.EXIT_3))
    condition = jobs.wait_finished("bad")
    assert (condition["type"], condition["reason"]) == ("Failed", "BackoffLimitExceeded")
    terminated = _container_state(jobs.pod_in("bad", "Failed"))["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")


def test_image_pull_backoff_keeps_the_pod_pending(jobs: _Jobs) -> None:
    jobs.create(_job("pull", Scenario.IMAGE_PULL_BACKOFF))

    def waiting_pod() -> dict[str, Any] | None:
        pod = jobs.pod("pull")
        statuses = pod["status"].get("containerStatuses") if pod else None
        return pod if statuses and "waiting" in statuses[0]["state"] else None

    pod = wait_for(waiting_pod, _TIMEOUT, "a waiting container")
    assert _container_state(pod)["waiting"]["reason"] == "ImagePullBackOff"
    assert pod["status"]["phase"] == "Pending"
    assert pod["spec"]["nodeName"]  # scheduled: the image is what holds it back
    time.sleep(1.0)  # kwok's fast stages must not start it behind the scenario's back
    later = jobs.pod("pull")
    assert later is not None
    assert later["status"]["phase"] == "Pending"
    assert jobs.finished("pull") is None


def test_slow_pod_runs_before_it_succeeds(jobs: _Jobs) -> None:
    started = time.monotonic()
    jobs.create(_job("slow", Scenario.SLOW))
    jobs.pod_in("slow", "Running")
    assert jobs.finished("slow") is None
    assert jobs.wait_finished("slow")["type"] == "Complete"
    assert time.monotonic() - started >= SLOW_SECONDS


def test_unschedulable_comes_from_the_scheduler(jobs: _Jobs) -> None:
    jobs.create(_job("nowhere", Scenario.SUCCESS, nodeSelector={"ocibuild.test/none": "x"}))

    def scheduled_condition() -> dict[str, Any] | None:
        pod = jobs.pod("nowhere")
        conditions = pod["status"].get("conditions", []) if pod else []
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    condition = wait_for(scheduled_condition, _TIMEOUT, "a PodScheduled condition")
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert "node affinity/selector" in condition["message"]


def test_logs_come_through_the_api_server(
    kube_cluster: KubeCluster, jobs: _Jobs, tmp_path: Path
) -> None:
    lines = ["epoch 1 loss 0.5", "epoch 2 loss 0.25"]
    kube_cluster.serve_log_lines(jobs.namespace, lines, tmp_path)
    jobs.create(_job("talk", Scenario.SUCCESS))
    jobs.wait_finished("talk")
    pod = jobs.pod("talk")
    assert pod is not None
    assert jobs.log(pod["metadata"]["name"], "main").splitlines() == lines


def test_missing_binaries_fail_naming_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kubectl").write_text("#!/bin/sh\n")
    (tmp_path / "kubectl").chmod(0o755)
    monkeypatch.setenv(KUBE_BIN_ENV, str(tmp_path))
    with pytest.raises(MissingToolError, match="lacks kube-apiserver, kube-controller-manager"):
        find_kube_bin()
