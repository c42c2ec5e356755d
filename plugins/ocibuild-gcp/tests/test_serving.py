"""The ``gcpserving`` deployer against the Vertex AI emulator, over HTTP: model upload,
endpoint creation or reuse, deployment, predictions, undeploy and delete, each operation
polled until it is done."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from ocibuild import DeployError, DeployTimeoutError
from ocibuild.pipeline import Deployer, DeployHandle, DryRun

from ocibuild_gcp import (
    GcpServing,
    GcpServingRun,
    GoogleApiError,
    VertexJobFailedError,
    application_default_credentials,
)
from tests.emulators._vertex import VertexEmulator
from tests.test_customjob import IMAGE, RUNTIME_ENV, pod_spec

PARENT = "projects/test-project/locations/us-central1"


def serving(vertex: VertexEmulator, **options: Any) -> GcpServing:
    return GcpServing(**{**vertex.options, "log_stream": io.StringIO(), **options})


def served(vertex: VertexEmulator, **options: Any) -> GcpServingRun:
    run = serving(vertex, **options).deploy(pod_spec())
    assert isinstance(run, GcpServingRun)
    return run


def body_of(vertex: VertexEmulator, method: str, path: str) -> Any:
    (request,) = vertex.received(method, path)
    return request.json()


def test_deploy_uploads_creates_deploys_and_serves(vertex: VertexEmulator) -> None:
    out = io.StringIO()
    deployer = serving(vertex, display_name="cats", log_stream=out, max_replica_count=3)
    assert isinstance(deployer, Deployer)

    run = deployer.deploy(pod_spec())

    assert isinstance(run, GcpServingRun) and isinstance(run, DeployHandle)
    labels = {"managed-by": "ocibuild", "ocibuild-deployer": "gcpserving"}
    assert body_of(vertex, "POST", f"/v1/{PARENT}/models:upload") == {
        "model": {
            "displayName": "cats",
            "labels": labels,
            "containerSpec": {
                "imageUri": IMAGE,
                "command": ["python", "/app/train.py"],
                "env": [*RUNTIME_ENV, {"name": "EPOCHS", "value": "3"}],
                "ports": [{"containerPort": 8080}],
                "predictRoute": "/predict",
                "healthRoute": "/health",
            },
        }
    }
    assert body_of(vertex, "POST", f"/v1/{PARENT}/endpoints") == {
        "displayName": "cats",
        "labels": labels,
    }
    (model,) = vertex.models.values()
    assert body_of(vertex, "POST", rf"/v1/{PARENT}/endpoints/\d+:deployModel") == {
        "deployedModel": {
            "model": model["name"],
            "displayName": "cats",
            "dedicatedResources": {
                "machineSpec": {"machineType": "n1-standard-4"},
                "minReplicaCount": 1,
                "maxReplicaCount": 3,
            },
        },
        "trafficSplit": {"0": 100},
    }
    (endpoint,) = vertex.endpoints.values()
    assert run.name == endpoint["name"] and run.model == model["name"]
    assert run.url == f"{vertex.url}/v1/{endpoint['name']}:predict"
    (deployed,) = endpoint["deployedModels"]
    assert run.deployed_model_id == deployed["id"]
    assert endpoint["trafficSplit"] == {deployed["id"]: 100}
    status = run.status()
    assert status.phase == "running" and "100% of traffic" in status.message
    # Every operation was polled until done: each GET'ed until the emulator said so.
    assert len(vertex.received("GET", r".*/operations/\d+")) == 3 * vertex.operation_polls
    assert out.getvalue().splitlines() == vertex.server_log
    # The handle and a plain client both reach the predict URL.
    assert run.predict([{"x": 1}])["predictions"] == [{"instance": {"x": 1}, "label": "cat"}]
    token = application_default_credentials().token()
    answer = httpx.post(
        run.url, json={"instances": [2]}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200 and answer.json()["deployedModelId"] == deployed["id"]
    assert run.console_url is not None and "online-prediction" in run.console_url


def test_delete_undeploys_then_deletes_the_endpoint_and_the_model(vertex: VertexEmulator) -> None:
    run = served(vertex)

    run.delete()

    assert not vertex.endpoints and not vertex.models
    steps = [
        (r.method, r.path.rsplit("/", 2)[1])
        for r in vertex.requests
        if r.method == "DELETE" or r.path.endswith(":undeployModel")
    ]
    # Undeploy first, then the endpoint: Vertex deletes neither one with a model on it.
    assert steps == [("POST", "endpoints"), ("DELETE", "endpoints"), ("DELETE", "models")]
    assert run.status().phase == "unknown"
    run.delete()  # twice is fine
    assert len(vertex.received("DELETE")) == 2


def test_an_existing_endpoint_is_reused_by_id_and_given_back(vertex: VertexEmulator) -> None:
    first = served(vertex, display_name="v1")
    assert first.name is not None and first.deployed_model_id is not None
    endpoint_id = first.name.rsplit("/", 1)[1]

    second = served(vertex, display_name="v2", endpoint=endpoint_id)

    assert second.name == first.name
    assert len(vertex.received("POST", f"/v1/{PARENT}/endpoints")) == 1  # not created again
    endpoint = vertex.endpoints[endpoint_id]
    assert endpoint["trafficSplit"] == {second.deployed_model_id: 100}
    assert len(endpoint["deployedModels"]) == 2

    second.delete()

    # The endpoint stays (this deploy did not make it), its traffic back on the first model.
    assert endpoint["trafficSplit"] == {first.deployed_model_id: 100}
    (left,) = endpoint["deployedModels"]
    assert left["id"] == first.deployed_model_id
    assert second.model not in {m["name"] for m in vertex.models.values()}
    assert first.status().phase == "running"


def test_an_endpoint_is_found_by_display_name_or_made(vertex: VertexEmulator) -> None:
    made = served(vertex, endpoint="shared")
    assert vertex.endpoints[made.name.rsplit("/", 1)[1]]["displayName"] == "shared"  # type: ignore[union-attr]
    again = served(vertex, endpoint="shared")
    assert again.name == made.name and not again.endpoint_created
    (listed,) = vertex.received("GET", f"/v1/{PARENT}/endpoints")[-1:]
    assert listed.param("filter") == 'display_name="shared"'


def test_several_endpoints_of_one_name_are_an_error(vertex: VertexEmulator) -> None:
    served(vertex, display_name="twin")
    served(vertex, display_name="twin")
    with pytest.raises(DeployError, match="2 endpoints are named 'twin'"):
        served(vertex, endpoint="twin")
    assert len(vertex.models) == 2  # said before a model was uploaded


def test_a_missing_endpoint_id_is_one_line(vertex: VertexEmulator) -> None:
    with pytest.raises(DeployError, match="there is no endpoint") as missing:
        served(vertex, endpoint="424242")
    assert "\n" not in str(missing.value)


def test_a_failed_deployment_raises_with_the_operation_s_error(vertex: VertexEmulator) -> None:
    vertex.serving_outcome = "failed"
    with pytest.raises(VertexJobFailedError) as failed:
        served(vertex)

    message = str(failed.value)
    assert "Model server never became ready" in message
    assert failed.value.reason == "FAILED_PRECONDITION"
    assert "kept: endpoint" in message and "model projects/" in message
    (endpoint,) = vertex.endpoints.values()
    (model,) = vertex.models.values()
    region = "--region us-central1 --project test-project"
    assert f"gcloud ai endpoints delete {endpoint['name'].rsplit('/', 1)[1]} {region}" in message
    assert f"gcloud ai models delete {model['name'].rsplit('/', 1)[1]} {region}" in message
    assert not endpoint["deployedModels"]


def test_cleanup_always_removes_what_a_failed_deployment_made(vertex: VertexEmulator) -> None:
    vertex.serving_outcome = "failed"
    with pytest.raises(VertexJobFailedError, match=r"deleted \(cleanup='always'\)"):
        served(vertex, cleanup="always")
    assert not vertex.endpoints and not vertex.models


def test_cleanup_true_deletes_once_it_served(vertex: VertexEmulator) -> None:
    run = served(vertex, cleanup=True)
    assert run.deleted and not vertex.endpoints and not vertex.models


def test_no_wait_returns_while_the_model_is_deployed(vertex: VertexEmulator) -> None:
    vertex.operation_polls = 3
    run = served(vertex, wait=False)
    assert run.deployed_model_id is None

    assert run.status().phase == "pending"
    assert run.wait().phase == "running"
    assert run.deployed_model_id is not None
    assert list(run.logs()) == vertex.server_log


def test_a_deployment_that_takes_too_long_times_out(vertex: VertexEmulator) -> None:
    vertex.operation_polls = 10**6
    with pytest.raises(DeployTimeoutError, match=r"not done after 0\.2 s"):
        served(vertex, timeout=0.2)


def test_delete_while_deploying_waits_for_the_deployment(vertex: VertexEmulator) -> None:
    run = served(vertex, wait=False)
    run.delete()
    assert not vertex.endpoints and not vertex.models


def test_retried_and_surfaced_errors(vertex: VertexEmulator) -> None:
    vertex.fail(503, "UNAVAILABLE", method="POST", path="models:upload")
    vertex.fail(429, "RESOURCE_EXHAUSTED", method="GET", path="/operations/")
    run = served(vertex)
    assert run.status().phase == "running"

    vertex.fail(403, "PERMISSION_DENIED", method="POST", path=":deployModel")
    with pytest.raises(GoogleApiError, match="403 PERMISSION_DENIED") as denied:
        served(vertex)
    assert "kept: endpoint" in str(denied.value)


def test_dry_run_returns_the_three_bodies_and_sends_nothing() -> None:
    plan = GcpServing(project="p", region="europe-west4", dry_run=True, display_name="m").deploy(
        pod_spec()
    )
    assert isinstance(plan, DryRun)
    upload, endpoint, deploy = plan.manifests
    assert upload["model"]["containerSpec"]["imageUri"] == IMAGE
    assert endpoint == {
        "displayName": "m",
        "labels": {"managed-by": "ocibuild", "ocibuild-deployer": "gcpserving"},
    }
    model = deploy["deployedModel"]["model"]
    assert model == "projects/p/locations/europe-west4/models/MODEL_ID"
    assert plan.url is None and plan.kind == "Endpoint"

    reused = GcpServing(project="p", region="europe-west4", dry_run=True, endpoint="77")
    known = reused.deploy(pod_spec())
    assert len(known.manifests) == 2
    assert known.url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/"
        "europe-west4/endpoints/77:predict"
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"ports": 0}, "ports=0"),
        ({"ports": []}, "ports=[]"),
        ({"predict_route": "predict"}, "predict_route='predict'"),
        ({"min_replica_count": 2, "max_replica_count": 1}, "max_replica_count=1"),
        ({"artifact_uri": "/models"}, "gs://"),
    ],
)
def test_bad_options_are_one_line(vertex: VertexEmulator, options: Any, words: str) -> None:
    with pytest.raises(DeployError) as bad:
        serving(vertex, **options)
    assert words in str(bad.value) and "\n" not in str(bad.value)


def test_ports_and_artifacts_go_into_the_model(vertex: VertexEmulator) -> None:
    served(
        vertex,
        ports=[9000, 9001],
        predict_route="/v1/models/m:predict",
        health_route="/v1/models/m",
        artifact_uri="gs://bucket/run-1/model/",
        accelerator_type="NVIDIA_TESLA_T4",
        service_account="server@test-project.iam.gserviceaccount.com",
    )
    model = body_of(vertex, "POST", f"/v1/{PARENT}/models:upload")["model"]
    assert model["artifactUri"] == "gs://bucket/run-1/model/"
    spec = model["containerSpec"]
    assert spec["ports"] == [{"containerPort": 9000}, {"containerPort": 9001}]
    assert (spec["predictRoute"], spec["healthRoute"]) == ("/v1/models/m:predict", "/v1/models/m")
    deployed = body_of(vertex, "POST", rf"/v1/{PARENT}/endpoints/\d+:deployModel")["deployedModel"]
    assert deployed["dedicatedResources"]["machineSpec"] == {
        "machineType": "n1-standard-4",
        "acceleratorType": "NVIDIA_TESLA_T4",
        "acceleratorCount": 1,
    }
    assert deployed["serviceAccount"] == "server@test-project.iam.gserviceaccount.com"


def test_a_server_gone_from_its_endpoint_is_unknown(vertex: VertexEmulator) -> None:
    run = served(vertex)
    (endpoint,) = vertex.endpoints.values()
    endpoint["deployedModels"].clear()
    assert run.status().phase == "unknown"
    vertex.endpoints.clear()
    assert "gone" in run.status().message
