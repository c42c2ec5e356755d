"""The ``job`` deployer against the test bed's real API server, Job controller and scheduler.

kwok's Stages play the kubelet (pods labelled ``ocibuild.test/scenario`` succeed, exit 3,
stay in ImagePullBackOff or run slowly), and pod logs come through the API server from files
the tests write. What the deployer reports is checked against what the API server holds.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from ocibuild import DeployError
from ocibuild.pipeline import PodSpec
from ocibuild.pipeline._errors import DeployTimeoutError, JobFailedError, PodPendingError
from ocibuild.pipeline.deployers import DryRun, Job, JobRun
from tests.support import SCENARIO_LABEL, KubeCluster, Scenario, wait_for
from tests.support._tcprelay import tcp_relay

pytestmark = pytest.mark.xdist_group("kube")

IMAGE = "registry.test.invalid/team/train:1@sha256:" + "ab" * 32
LINES = ["epoch 1 loss 0.5", "epoch 2 loss 0.25", "done"]


def pod_spec(**extra: Any) -> PodSpec:
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": IMAGE, "command": ["python", "train.py"]}],
        **extra,
    }
    return spec  # type: ignore[return-value]


@pytest.fixture
def logs(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> list[str]:
    """Every pod of the namespace logs LINES."""
    kube_cluster.serve_log_lines(kube_namespace, LINES, tmp_path)
    return LINES


class Deploys:
    """Job deployers on the test cluster, in one namespace, writing logs to ``out``."""

    def __init__(self, cluster: KubeCluster, namespace: str, api: client.ApiClient) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.api = api
        self.out = io.StringIO()

    def job(self, scenario: str = Scenario.SUCCESS, **options: Any) -> Job:
        labels = {SCENARIO_LABEL: scenario, **options.pop("labels", {})}
        options.setdefault("namespace", self.namespace)
        options.setdefault("config_file", str(self.cluster.kubeconfig))
        return Job(labels=labels, log_stream=self.out, **options)

    def read_job(self, name: str) -> dict[str, Any] | None:
        try:
            job = client.BatchV1Api(self.api).read_namespaced_job(name, self.namespace)
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise
        body: dict[str, Any] = self._json(job)
        return body

    def pods(self, job_name: str) -> list[dict[str, Any]]:
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}"
        )
        items: list[dict[str, Any]] = self._json(pods)["items"]
        return items

    def jobs(self) -> list[str]:
        jobs = client.BatchV1Api(self.api).list_namespaced_job(self.namespace)
        return [j["metadata"]["name"] for j in self._json(jobs)["items"]]

    def secrets(self) -> list[dict[str, Any]]:
        listed = client.CoreV1Api(self.api).list_namespaced_secret(self.namespace)
        items: list[dict[str, Any]] = self._json(listed)["items"]
        return [s for s in items if s.get("type") == "kubernetes.io/dockerconfigjson"]

    def _json(self, obj: object) -> Any:
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


@pytest.fixture
def deploys(
    kube_cluster: KubeCluster, kube_namespace: str, kube_client: client.ApiClient
) -> Deploys:
    return Deploys(kube_cluster, kube_namespace, kube_client)


def created(run: object) -> JobRun:
    assert isinstance(run, JobRun), run
    return run


def test_success_streams_the_log_and_leaves_nothing_behind(
    deploys: Deploys, logs: list[str]
) -> None:
    run = created(deploys.job().deploy(pod_spec()))
    assert deploys.out.getvalue().splitlines() == logs
    assert run.status().state == "Succeeded"
    # cleanup=True: the Job and its pods are gone when deploy() returns.
    assert deploys.read_job(run.name) is None
    assert deploys.pods(run.name) == []
    assert run.deleted


def test_the_job_is_what_a_training_run_needs(deploys: Deploys) -> None:
    mutated: list[str | None] = []

    def mark(spec: PodSpec, namespace: str | None) -> None:
        mutated.append(namespace)
        spec["containers"][0].setdefault("env", []).append({"name": "MARK", "value": "x"})

    job = deploys.job(
        wait=False,
        runs=2,
        labels={"team": "ml"},
        annotations={"owner": "ada"},
        active_deadline_seconds=600,
        ttl_seconds_after_finished=3600,
        pod_spec_mutators=[mark],
    )
    run = created(job.deploy(pod_spec()))
    body = deploys.read_job(run.name)
    assert body is not None
    spec, template = body["spec"], body["spec"]["template"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (2, 2, 0)
    assert (spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (600, 3600)
    for metadata in (body["metadata"], template["metadata"]):
        assert metadata["labels"]["team"] == "ml"
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "ocibuild"
    assert body["metadata"]["annotations"] == {"owner": "ada"}
    assert template["metadata"]["annotations"] == {
        "sidecar.istio.io/inject": "false",
        "owner": "ada",
    }
    assert template["spec"]["restartPolicy"] == "Never"
    container = template["spec"]["containers"][0]
    assert container["image"] == IMAGE
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env == {"OCIBUILD_RUNTIME": "1", "FAIRING_RUNTIME": "1", "MARK": "x"}
    assert mutated == [deploys.namespace]
    assert run.name.startswith("train-") and len(run.name) == len("train-") + 5
    run.delete()
    assert deploys.read_job(run.name) is None


def test_a_failed_job_names_reason_pod_exit_code_and_log(deploys: Deploys, logs: list[str]) -> None:
    with pytest.raises(JobFailedError) as err:
        deploys.job(Scenario.EXIT_3).deploy(pod_spec())
    failure = err.value
    name = re.match(r"Job \S+/(\S+) failed", str(failure))
    assert name, str(failure)
    first = str(failure).splitlines()[0]
    assert (failure.reason, failure.exit_code) == ("BackoffLimitExceeded", 3)
    assert failure.pod is not None and failure.pod.startswith(name.group(1))
    assert f"pod {failure.pod} container main exited with code 3 (Error)" in first
    assert f"kubectl delete job {name.group(1)} -n {deploys.namespace}" in first
    assert failure.log_tail == logs
    assert str(failure).splitlines()[-len(logs) :] == [f"  {line}" for line in logs]
    # Kept for inspection, with its pod.
    assert deploys.read_job(name.group(1)) is not None
    assert len(deploys.pods(name.group(1))) == 1


def test_cleanup_always_deletes_a_failed_job(deploys: Deploys, logs: list[str]) -> None:
    with pytest.raises(JobFailedError) as err:
        deploys.job(Scenario.EXIT_3, cleanup="always").deploy(pod_spec())
    assert "the Job was deleted (cleanup='always')" in str(err.value)
    assert deploys.jobs() == []


def test_image_pull_backoff_is_reported_at_once_then_fails_the_wait(
    deploys: Deploys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ocibuild.deployers")
    started = time.monotonic()
    with pytest.raises(PodPendingError) as err:
        deploys.job(Scenario.IMAGE_PULL_BACKOFF, pending_timeout=3).deploy(pod_spec())
    assert time.monotonic() - started < 30
    assert err.value.reason == "ImagePullBackOff"
    assert f"pod {err.value.pod} is Pending: ImagePullBackOff" in str(err.value)
    assert "pending_timeout=3" in str(err.value)
    reported = [r.getMessage() for r in caplog.records if "is Pending" in r.getMessage()]
    assert len(reported) == 1 and "ImagePullBackOff" in reported[0]
    assert deploys.jobs() != []  # kept for inspection


def test_unschedulable_carries_the_scheduler_message(deploys: Deploys) -> None:
    spec = pod_spec(nodeSelector={"ocibuild.test/none": "x"})
    with pytest.raises(PodPendingError) as err:
        deploys.job(pending_timeout=2, cleanup="always").deploy(spec)
    assert err.value.reason == "Unschedulable"
    assert "node affinity/selector" in str(err.value)
    assert deploys.jobs() == []


def test_no_wait_returns_a_handle_that_waits_follows_and_deletes(
    deploys: Deploys, logs: list[str]
) -> None:
    run = created(deploys.job(Scenario.SLOW, wait=False).deploy(pod_spec()))
    assert deploys.out.getvalue() == ""
    assert run.status().state in ("Pending", "Running")
    followed = list(run.logs(follow=True))
    assert followed == logs
    assert run.wait(timeout=30).state == "Succeeded"
    assert run.status().state == "Succeeded"
    assert list(run.logs()) == logs
    run.delete()
    run.delete()  # twice is fine
    assert deploys.read_job(run.name) is None and deploys.pods(run.name) == []


def test_wait_with_a_timeout_returns_the_status_then(deploys: Deploys) -> None:
    run = created(deploys.job(Scenario.SLOW, wait=False).deploy(pod_spec()))
    status = run.wait(timeout=0.5)
    assert not status.done
    with pytest.raises(DeployTimeoutError, match=r"is still (Pending|Running) after 0\.5 s"):
        deploys.job(Scenario.SLOW, timeout=0.5).deploy(pod_spec())


def test_two_runs_prefix_each_line_with_its_pod(deploys: Deploys, logs: list[str]) -> None:
    run = created(deploys.job(runs=2).deploy(pod_spec()))
    lines = deploys.out.getvalue().splitlines()
    assert len(lines) == 2 * len(logs)
    pods = {line.split("] ", 1)[0].lstrip("[") for line in lines}
    assert len(pods) == 2 and all(p.startswith(run.name + "-") for p in pods)
    for pod in pods:
        assert [line.split("] ", 1)[1] for line in lines if line.startswith(f"[{pod}]")] == logs


def test_the_namespace_comes_from_the_kubeconfig_context(
    deploys: Deploys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    text = deploys.cluster.kubeconfig.read_text()
    kubeconfig.write_text(context_namespace(text, deploys.namespace))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    job = Job(labels={SCENARIO_LABEL: Scenario.SLOW}, wait=False)
    run = created(job.deploy(pod_spec()))
    assert run.namespace == deploys.namespace
    assert deploys.read_job(run.name) is not None
    run.delete()


def context_namespace(kubeconfig: str, namespace: str) -> str:
    """``kubeconfig`` (kwokctl's YAML) with its context's namespace set."""
    out, done = [], False
    for line in kubeconfig.splitlines():
        out.append(line)
        if not done and re.match(r"^\s+cluster: ", line) and "contexts" in "\n".join(out):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}namespace: {namespace}")
            done = True
    assert done, kubeconfig
    return "\n".join(out) + "\n"


def test_image_pull_secret_true_makes_a_secret_the_job_owns(
    deploys: Deploys, logs: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    auth = base64.b64encode(b"robot:s3cret-pass").decode()
    monkeypatch.setenv(
        "DOCKER_AUTH_CONFIG", json.dumps({"auths": {"registry.test.invalid": {"auth": auth}}})
    )
    run = created(deploys.job(Scenario.SLOW, wait=False, image_pull_secret=True).deploy(pod_spec()))
    (secret,) = deploys.secrets()
    assert secret["metadata"]["name"] == f"{run.name}-pull"
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", run.name, run.uid)
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"]["registry.test.invalid"]
    assert (entry["username"], entry["password"], entry["auth"]) == ("robot", "s3cret-pass", auth)
    body = deploys.read_job(run.name)
    assert body is not None
    pulls = body["spec"]["template"]["spec"]["imagePullSecrets"]
    assert pulls == [{"name": f"{run.name}-pull"}]
    # What the handle keeps (and a dry run prints) has no credentials in it.
    assert "s3cret" not in json.dumps(run.manifests)
    assert run.wait(timeout=30).state == "Succeeded"
    run.delete()
    assert deploys.secrets() == []


def test_image_pull_secret_without_credentials_is_one_clear_error(
    deploys: Deploys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    monkeypatch.delenv("DOCKER_AUTH_CONFIG", raising=False)
    with pytest.raises(DeployError, match=r"ocibuild login registry\.test\.invalid"):
        deploys.job(image_pull_secret=True).deploy(pod_spec())
    assert deploys.jobs() == [] and deploys.secrets() == []


def test_a_dry_run_creates_nothing_and_the_api_server_accepts_it(deploys: Deploys) -> None:
    job = deploys.job(dry_run=True, image_pull_secret=True, labels={"team": "ml"})
    plan = job.deploy(pod_spec())
    assert isinstance(plan, DryRun)
    kinds = [m["kind"] for m in plan.manifests]
    assert kinds == ["Secret", "Job"]
    document = {"apiVersion": "v1", "kind": "List", "items": plan.manifests}
    answer = deploys.cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(document).encode()
    )
    assert answer.split() == [f"secret/{plan.name}-pull", f"job.batch/{plan.name}"]
    assert deploys.jobs() == [] and deploys.secrets() == []


def test_waiting_resumes_after_the_connection_drops(
    deploys: Deploys, logs: list[str], tmp_path: Path
) -> None:
    text = deploys.cluster.kubeconfig.read_text()
    server = re.search(r"server: https://127\.0\.0\.1:(\d+)", text)
    assert server, text
    with tcp_relay(("127.0.0.1", int(server.group(1)))) as relay:
        kubeconfig = tmp_path / "relayed"
        kubeconfig.write_text(
            text.replace(server.group(0), f"server: https://127.0.0.1:{relay.port}")
        )
        job = deploys.job(Scenario.SLOW, config_file=str(kubeconfig), stream_log=False)
        cutter = threading.Thread(target=cut_while_following, args=(relay, deploys))
        cutter.start()
        run = created(job.deploy(pod_spec()))
        cutter.join()
    assert relay.cuts >= 1
    assert run.deleted and deploys.read_job(run.name) is None
    # The watches went on from their last resourceVersion: no relist was needed.
    assert run.resumes >= 1 and run.relists == 0


def cut_while_following(relay: Any, deploys: Deploys) -> None:
    # Cut once the Job has a pod and the deployer has opened its connections, then again each
    # time it has reconnected, while the Job runs: a cut that lands while a list is in flight
    # is retried by urllib3 itself (no watch resumes), so one cut alone proves nothing.
    def following() -> bool | None:
        pods = [p for name in deploys.jobs() for p in deploys.pods(name)]
        return True if pods and relay.accepted >= 2 else None

    def running() -> bool:
        names = deploys.jobs()
        body = deploys.read_job(names[0]) if names else None
        conditions = ((body or {}).get("status") or {}).get("conditions") or []
        return body is not None and not any(c["type"] in ("Complete", "Failed") for c in conditions)

    wait_for(following, 30, "a pod of the Job and the deployer's two watches")

    def reconnected(accepted: int) -> bool | None:
        return True if relay.accepted > accepted or not running() else None

    for _ in range(4):
        accepted = relay.accepted
        relay.cut()
        wait_for(functools.partial(reconnected, accepted), 30, "the deployer reconnecting")
        if not running():
            return
        time.sleep(0.5)  # let the new connections settle into their watches
