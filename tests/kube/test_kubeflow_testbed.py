"""The Kubeflow / serving test bed behaves as the real projects do, for the deployers to trust.

TrainJobs go through the real Trainer v2 and JobSet controllers and the real Job controller;
PyTorchJobs and TFJobs through the real Training Operator v1; InferenceServices through the
KServe stand-in and the real Deployment controller. Every object is admitted by the real CRDs
(and the real webhooks where the project has them). kwok's Stages play the pods.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support import (
    INFERENCE_SERVICE,
    KSERVE_CONTAINER,
    SCENARIO_LABEL,
    KubeflowStack,
    Scenario,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("kube")

_TIMEOUT = 60.0
_TRAINJOB = ("trainer.kubeflow.org", "v1alpha1", "trainjobs")
_JOBSET = ("jobset.x-k8s.io", "v1alpha2", "jobsets")
_PYTORCHJOB = ("kubeflow.org", "v1", "pytorchjobs")
_TFJOB = ("kubeflow.org", "v1", "tfjobs")


class _Objects:
    """Custom objects and pods in one namespace, as the API's own JSON."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)

    def create(self, kind: tuple[str, str, str], body: dict[str, Any]) -> dict[str, Any]:
        group, version, plural = kind
        body = {"apiVersion": f"{group}/{version}", **body}
        created: Any = self.custom.create_namespaced_custom_object(
            group, version, self.namespace, plural, body
        )
        return dict(created)

    def get(self, kind: tuple[str, str, str], name: str) -> dict[str, Any]:
        group, version, plural = kind
        found: Any = self.custom.get_namespaced_custom_object(
            group, version, self.namespace, plural, name
        )
        return dict(found)

    def delete(self, kind: tuple[str, str, str], name: str) -> None:
        group, version, plural = kind
        body = client.V1DeleteOptions(propagation_policy="Background")
        self.custom.delete_namespaced_custom_object(
            group, version, self.namespace, plural, name, body=body
        )

    def condition(self, kind: tuple[str, str, str], name: str, ctype: str) -> dict[str, Any] | None:
        """The object's condition `ctype` once its status is True, else None."""
        conditions = self.get(kind, name).get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == ctype and c["status"] == "True"), None)

    def pods(self, selector: str) -> list[dict[str, Any]]:
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=selector
        )
        items: list[dict[str, Any]] = self.json(pods)["items"]
        return items

    def json(self, obj: object) -> Any:
        """A client model as the API's own JSON."""
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]

    def pods_when(self, selector: str, count: int, what: str) -> list[dict[str, Any]]:
        return wait_for(
            lambda: found if len(found := self.pods(selector)) == count else None,
            _TIMEOUT,
            what,
        )


@pytest.fixture
def objects(
    kubeflow: KubeflowStack, kube_client: client.ApiClient, kube_namespace: str
) -> _Objects:
    return _Objects(kube_client, kube_namespace)


def _trainjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {"image": "example.invalid/train:1", "numNodes": 2},
            **spec,
        },
    }


def _pod_labels(labels: dict[str, str]) -> list[dict[str, Any]]:
    """runtimePatches (Trainer v2.2+) that put `labels` on the trainer's pods."""
    template = {"metadata": {"labels": labels}}
    job = {"name": "node", "template": {"spec": {"template": template}}}
    patch = {"template": {"spec": {"replicatedJobs": [job]}}}
    return [{"manager": "ocibuild.test/testbed", "trainingRuntimeSpec": patch}]


def test_trainjob_runs_as_a_jobset_and_completes(objects: _Objects) -> None:
    objects.create(_TRAINJOB, _trainjob("tj-ok"))

    done = wait_for(
        lambda: objects.condition(_TRAINJOB, "tj-ok", "Complete"), _TIMEOUT, "TrainJob Complete"
    )
    assert done["reason"] == "AllJobsCompleted", done
    jobset = objects.get(_JOBSET, "tj-ok")
    assert jobset["metadata"]["ownerReferences"][0]["kind"] == "TrainJob"
    jobs = client.BatchV1Api(objects.api).list_namespaced_job(
        objects.namespace, label_selector="jobset.sigs.k8s.io/jobset-name=tj-ok"
    )
    assert [job["metadata"]["name"] for job in objects.json(jobs)["items"]] == ["tj-ok-node-0"]
    pods = objects.pods("jobset.sigs.k8s.io/jobset-name=tj-ok")
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    container = pods[0]["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("node", "example.invalid/train:1")
    index = "batch.kubernetes.io/job-completion-index"
    assert sorted(p["metadata"]["labels"][index] for p in pods) == ["0", "1"]


def test_trainjob_fails_when_its_trainer_exits_3(objects: _Objects) -> None:
    patches = _pod_labels({SCENARIO_LABEL: Scenario.EXIT_3})
    objects.create(_TRAINJOB, _trainjob("tj-bad", runtimePatches=patches))

    failed = wait_for(
        lambda: objects.condition(_TRAINJOB, "tj-bad", "Failed"), _TIMEOUT, "TrainJob Failed"
    )
    assert failed["reason"] == "FailedJobs", failed
    assert "tj-bad-node-0" in failed["message"], failed
    # Its pods restarted in place (JobSet's OnFailure) until the Job's backoffLimit was spent.
    job = client.BatchV1Api(objects.api).read_namespaced_job_status(
        "tj-bad-node-0", objects.namespace
    )
    conditions = objects.json(job)["status"]["conditions"]
    assert {c["type"]: c.get("reason") for c in conditions}["Failed"] == "BackoffLimitExceeded"


def _rejection(objects: _Objects, kind: tuple[str, str, str], body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        objects.create(kind, body)
    # 422 from the schema; a webhook that denies answers with the code it chooses.
    assert caught.value.status in (400, 403, 422), caught.value
    message: str = json.loads(caught.value.body or "{}")["message"]
    return message


def test_the_api_server_validates_against_the_real_crds(objects: _Objects) -> None:
    no_runtime = _trainjob("tj-invalid")
    del no_runtime["spec"]["runtimeRef"]
    assert "runtimeRef" in _rejection(objects, _TRAINJOB, no_runtime)

    pytorchjob = _pytorchjob("pt-invalid", workers=1)
    pytorchjob["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "two"
    assert "replicas" in _rejection(objects, _PYTORCHJOB, pytorchjob)

    isvc = {"kind": "InferenceService", "metadata": {"name": "isvc-invalid"}, "spec": {}}
    assert "predictor" in _rejection(objects, INFERENCE_SERVICE, isvc)


def test_the_real_webhooks_validate_what_the_schema_cannot(objects: _Objects) -> None:
    unknown_runtime = _trainjob("tj-nowhere", runtimeRef={"name": "no-such-runtime"})
    assert "no-such-runtime" in _rejection(objects, _TRAINJOB, unknown_runtime)

    renamed = _pytorchjob("pt-renamed", workers=1)
    for spec in renamed["spec"]["pytorchReplicaSpecs"].values():
        spec["template"]["spec"]["containers"][0]["name"] = "main"
    assert "pytorch" in _rejection(objects, _PYTORCHJOB, renamed)


def _replica(container: str, scenario: str, **extra: Any) -> dict[str, Any]:
    return {
        "replicas": 1,
        "template": {
            "metadata": {"labels": {SCENARIO_LABEL: scenario}},
            "spec": {"containers": [{"name": container, "image": "example.invalid/train:1"}]},
        },
        **extra,
    }


def _pytorchjob(name: str, workers: int, scenario: str = Scenario.SUCCESS) -> dict[str, Any]:
    return {
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {
            "runPolicy": {},
            "pytorchReplicaSpecs": {
                "Master": _replica("pytorch", scenario),
                "Worker": {**_replica("pytorch", scenario), "replicas": workers},
            },
        },
    }


def test_pytorchjob_gets_the_operators_pods_and_succeeds(objects: _Objects) -> None:
    objects.create(_PYTORCHJOB, _pytorchjob("pt-ok", workers=2))

    pods = objects.pods_when("training.kubeflow.org/job-name=pt-ok", 3, "the 3 pods of pt-ok")
    by_name = {p["metadata"]["name"]: p for p in pods}
    assert sorted(by_name) == ["pt-ok-master-0", "pt-ok-worker-0", "pt-ok-worker-1"]
    master = by_name["pt-ok-master-0"]["metadata"]["labels"]
    assert master["training.kubeflow.org/operator-name"] == "pytorchjob-controller"
    assert master["training.kubeflow.org/replica-type"] == "master"
    assert master["training.kubeflow.org/replica-index"] == "0"
    assert master["training.kubeflow.org/job-role"] == "master"
    assert master[SCENARIO_LABEL] == Scenario.SUCCESS
    worker = by_name["pt-ok-worker-1"]
    assert "training.kubeflow.org/job-role" not in worker["metadata"]["labels"]
    env = {e["name"]: e.get("value") for e in worker["spec"]["containers"][0]["env"]}
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("pt-ok-master-0", "23456")
    assert (env["WORLD_SIZE"], env["RANK"]) == ("3", "2")
    owner = worker["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["controller"]) == ("PyTorchJob", True)

    done = wait_for(
        lambda: objects.condition(_PYTORCHJOB, "pt-ok", "Succeeded"), _TIMEOUT, "Succeeded"
    )
    assert done["reason"] == "PyTorchJobSucceeded", done
    status = objects.get(_PYTORCHJOB, "pt-ok")["status"]
    assert status["conditions"][0]["type"] == "Created"
    assert status["replicaStatuses"]["Master"].get("succeeded") == 1, status
    assert status["completionTime"] and status["startTime"]


def test_tfjob_with_a_failing_worker_fails(objects: _Objects) -> None:
    tfjob = {
        "kind": "TFJob",
        "metadata": {"name": "tf-bad"},
        "spec": {
            "runPolicy": {},
            "tfReplicaSpecs": {
                "Worker": {**_replica("tensorflow", Scenario.EXIT_3), "replicas": 2},
            },
        },
    }
    objects.create(_TFJOB, tfjob)

    failed = wait_for(lambda: objects.condition(_TFJOB, "tf-bad", "Failed"), _TIMEOUT, "Failed")
    assert failed["reason"] == "TFJobFailed", failed
    pods = objects.pods("training.kubeflow.org/job-name=tf-bad")
    config = next(e for e in pods[0]["spec"]["containers"][0]["env"] if e["name"] == "TF_CONFIG")
    assert set(json.loads(config["value"])["cluster"]) == {"worker"}


def test_pytorchjob_crash_looping_past_its_backoff_limit_fails(objects: _Objects) -> None:
    job = _pytorchjob("pt-loop", workers=1, scenario=Scenario.EXIT_3)
    job["spec"]["runPolicy"] = {"backoffLimit": 2}
    objects.create(_PYTORCHJOB, job)  # PyTorchJob's default restartPolicy is OnFailure

    failed = wait_for(
        lambda: objects.condition(_PYTORCHJOB, "pt-loop", "Failed"), _TIMEOUT, "Failed"
    )
    assert failed["reason"] == "PyTorchJobFailed", failed
    assert "backoff limit" in failed["message"], failed


def test_deleting_a_pytorchjob_removes_its_pods(objects: _Objects) -> None:
    objects.create(_PYTORCHJOB, _pytorchjob("pt-gone", workers=1, scenario=Scenario.SLOW))
    objects.pods_when("training.kubeflow.org/job-name=pt-gone", 2, "the pods of pt-gone")

    objects.delete(_PYTORCHJOB, "pt-gone")

    objects.pods_when("training.kubeflow.org/job-name=pt-gone", 0, "pt-gone's pods deleted")


def _isvc(
    name: str, labels: dict[str, str] | None = None, mode: str = "Standard"
) -> dict[str, Any]:
    return {
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "annotations": {"serving.kserve.io/deploymentMode": mode} if mode else {},
        },
        "spec": {
            "predictor": {
                "labels": labels or {},
                "containers": [
                    {
                        "name": "server",
                        "image": "example.invalid/serve:1",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    }
                ],
            }
        },
    }


def test_inference_service_becomes_ready_with_a_url(objects: _Objects) -> None:
    objects.create(INFERENCE_SERVICE, _isvc("isvc-ok"))

    ready = wait_for(
        lambda: objects.condition(INFERENCE_SERVICE, "isvc-ok", "Ready"), _TIMEOUT, "Ready"
    )
    assert ready["status"] == "True"

    def loaded() -> dict[str, Any] | None:
        # As in KServe, the model status trails Ready by one reconcile.
        status = objects.get(INFERENCE_SERVICE, "isvc-ok")["status"]
        states = status.get("modelStatus", {}).get("states", {})
        return status if states.get("activeModelState") == "Loaded" else None

    status = wait_for(loaded, _TIMEOUT, "activeModelState Loaded")
    assert status["url"] == f"http://isvc-ok-{objects.namespace}.example.com"
    address = f"http://isvc-ok-predictor.{objects.namespace}.svc.cluster.local"
    assert status["address"]["url"] == address
    assert status["deploymentMode"] == "Standard"
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    assert status["components"]["predictor"]["url"].startswith("http://isvc-ok-predictor-")
    pods = objects.pods("serving.kserve.io/inferenceservice=isvc-ok,component=predictor")
    assert [c["name"] for c in pods[0]["spec"]["containers"]] == [KSERVE_CONTAINER]
    service = client.CoreV1Api(objects.api).read_namespaced_service(
        "isvc-ok-predictor", objects.namespace
    )
    ports = objects.json(service)["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in ports] == [(80, 8080)]


def test_inference_service_with_crash_looping_pods_is_not_ready(objects: _Objects) -> None:
    objects.create(INFERENCE_SERVICE, _isvc("isvc-crash", {SCENARIO_LABEL: Scenario.CRASH_LOOP}))

    def failure() -> dict[str, Any] | None:
        status = objects.get(INFERENCE_SERVICE, "isvc-crash").get("status", {})
        info: dict[str, Any] | None = status.get("modelStatus", {}).get("lastFailureInfo")
        return info

    info = wait_for(failure, _TIMEOUT, "modelStatus.lastFailureInfo")
    assert (info["reason"], info["exitCode"]) == ("ModelLoadFailed", 1), info
    status = objects.get(INFERENCE_SERVICE, "isvc-crash")["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False", ready
    assert ready["reason"] == "MinimumReplicasUnavailable", ready
    pod = objects.pods("serving.kserve.io/inferenceservice=isvc-crash")[0]
    container = pod["status"]["containerStatuses"][0]
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["restartCount"] >= 1


def test_inference_service_without_a_mode_waits_for_knative(objects: _Objects) -> None:
    # The shipped inferenceservice-config defaults to Knative (Serverless), absent here.
    objects.create(INFERENCE_SERVICE, _isvc("isvc-knative", mode=""))

    def settled() -> dict[str, Any] | None:
        status: dict[str, Any] = objects.get(INFERENCE_SERVICE, "isvc-knative").get("status", {})
        return status if status.get("deploymentMode") else None

    status = wait_for(settled, _TIMEOUT, "a deploymentMode in the status")
    assert status["deploymentMode"] == "Knative"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "Unknown"
    deployments = client.AppsV1Api(objects.api).list_namespaced_deployment(objects.namespace)
    assert objects.json(deployments)["items"] == []
