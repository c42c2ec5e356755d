"""The ``gcpjob`` deployer against the Vertex AI and Cloud Logging emulator, over HTTP.

Each test drives the real deployer and its handle; the emulator checks every request body
against the CustomJob shape and walks the job through its states, so a wrong field, a
missed poll or a dropped page shows up as a failure here.
"""

from __future__ import annotations

import io
import logging
from typing import Any, cast

import httpx
import ocibuild.config
import pytest
from ocibuild import DeployError, DeployTimeoutError
from ocibuild.pipeline import Deployer, DeployHandle, DryRun, PodSpec
from ocibuild.plugins import reset_plugins

from ocibuild_gcp import (
    GcpJob,
    GcpJobRun,
    GoogleApiError,
    VertexJobFailedError,
    application_default_credentials,
)
from tests.emulators._vertex import VertexEmulator
from tests.fixtures_auth import ADC

IMAGE = "us-docker.pkg.dev/test-project/ml/train@sha256:" + "a" * 64
RUNTIME_ENV = [
    {"name": "OCIBUILD_RUNTIME", "value": "1"},
    {"name": "FAIRING_RUNTIME", "value": "1"},
]
JOBS = r"/v1/projects/test-project/locations/us-central1/customJobs"


def pod_spec(**container: Any) -> PodSpec:
    """What the builders make: one container with the context's command."""
    main: dict[str, Any] = {
        "name": "main",
        "image": IMAGE,
        "command": ["python", "/app/train.py"],
        "workingDir": "/app",
        "env": [*RUNTIME_ENV, {"name": "EPOCHS", "value": "3"}],
        **container,
    }
    return cast(PodSpec, {"containers": [main]})


def job_deployer(vertex: VertexEmulator, **options: Any) -> GcpJob:
    return GcpJob(**{**vertex.options, "log_stream": io.StringIO(), **options})


def deployed(vertex: VertexEmulator, **options: Any) -> GcpJobRun:
    run = job_deployer(vertex, **options).deploy(pod_spec())
    assert isinstance(run, GcpJobRun)
    return run


def created_body(vertex: VertexEmulator) -> Any:
    (create,) = vertex.received("POST", JOBS)
    return create.json()


# -- deploy and wait ---------------------------------------------------------------------


def test_deploy_creates_the_job_follows_it_and_prints_its_log(
    vertex: VertexEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    out = io.StringIO()
    caplog.set_level(logging.INFO, "ocibuild.deployers.gcpjob")
    deployer = job_deployer(vertex, display_name="train-1", log_stream=out)
    assert isinstance(deployer, Deployer)

    run = deployer.deploy(pod_spec())

    assert isinstance(run, GcpJobRun) and isinstance(run, DeployHandle)
    assert created_body(vertex) == {
        "displayName": "train-1",
        "labels": {"managed-by": "ocibuild", "ocibuild-deployer": "gcpjob"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {
                        "imageUri": IMAGE,
                        "command": ["python", "/app/train.py"],
                        "env": [*RUNTIME_ENV, {"name": "EPOCHS", "value": "3"}],
                    },
                }
            ]
        },
    }
    # Every line once, in order, though the emulator serves two entries a page.
    assert out.getvalue().splitlines() == vertex.job_log
    assert vertex.job(run.id)["state"] == "JOB_STATE_SUCCEEDED"
    assert run.status().phase == "succeeded"
    assert run.name == f"projects/test-project/locations/us-central1/customJobs/{run.id}"
    assert (run.kind, run.namespace, run.url, run.image) == ("CustomJob", None, None, IMAGE)
    console = (
        "https://console.cloud.google.com/vertex-ai/locations/us-central1/training/"
        f"{run.id}?project=test-project"
    )
    assert run.console_url == console
    said = caplog.text
    assert console in said and "gcloud logging read" in said and run.name in said
    assert "Succeeded (JOB_STATE_SUCCEEDED)" in said
    pages = [r.json() for r in vertex.received("POST", "/v2/entries:list")]
    assert all(
        f'resource.type="ml_job" AND resource.labels.job_id="{run.id}"' in p["filter"]
        for p in pages
    )
    # Kept by default (cleanup=False): a finished job's console page stays.
    assert run.id in vertex.jobs


def test_the_last_lines_are_read_after_the_job_ended(vertex: VertexEmulator) -> None:
    # Cloud Logging shows an entry a little after it was written: the job's last lines are
    # not there yet when it is seen to have ended.
    vertex.log_delay = 3
    out = io.StringIO()
    deployed(vertex, log_stream=out)
    assert out.getvalue().splitlines() == vertex.job_log

    run = deployed(vertex, wait=False)
    assert list(run.logs(follow=True)) == vertex.job_log


def test_a_log_that_cannot_be_read_is_said_once_and_the_job_followed(
    vertex: VertexEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    vertex.fail(403, "PERMISSION_DENIED", path="entries:list", times=1000)
    out = io.StringIO()
    run = deployed(vertex, log_stream=out)
    assert run.status().phase == "succeeded" and out.getvalue() == ""
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "403 PERMISSION_DENIED" in warning and "gcloud logging read" in warning
    assert len(vertex.received("POST", "/v2/entries:list")) == 1


def test_every_option_goes_into_the_job(vertex: VertexEmulator) -> None:
    out = io.StringIO()
    deployed(
        vertex,
        display_name="big",
        machine_type="n1-highmem-8",
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=2,
        replica_count=1,
        boot_disk_type="pd-standard",
        boot_disk_size_gb=200,
        service_account="trainer@test-project.iam.gserviceaccount.com",
        base_output_dir="gs://bucket/run-1",
        labels={"team": "ml"},
        active_deadline_seconds=3600,
        log_stream=out,
    )

    body = created_body(vertex)
    primary, workers = body["jobSpec"]["workerPoolSpecs"]
    assert primary["machineSpec"] == {
        "machineType": "n1-highmem-8",
        "acceleratorType": "NVIDIA_TESLA_T4",
        "acceleratorCount": 2,
    }
    assert primary["diskSpec"] == {"bootDiskType": "pd-standard", "bootDiskSizeGb": 200}
    assert (primary["replicaCount"], workers["replicaCount"]) == ("1", "1")
    assert workers["containerSpec"] == primary["containerSpec"]
    assert body["jobSpec"]["serviceAccount"] == "trainer@test-project.iam.gserviceaccount.com"
    assert body["jobSpec"]["baseOutputDirectory"] == {"outputUriPrefix": "gs://bucket/run-1"}
    assert body["jobSpec"]["scheduling"] == {"timeout": "3600s"}
    assert body["labels"]["team"] == "ml"
    # The two nodes write each line at the same instant: both are kept, each named.
    lines = out.getvalue().splitlines()
    for line in vertex.job_log:
        assert f"[workerpool0-0] {line}" in lines and f"[workerpool1-0] {line}" in lines
    assert len(lines) == 2 * len(vertex.job_log)


def test_gpus_come_from_the_pod_spec_and_need_a_type(vertex: VertexEmulator) -> None:
    gpus = pod_spec(resources={"limits": {"nvidia.com/gpu": 2}})
    job_deployer(vertex, accelerator_type="NVIDIA_L4").deploy(gpus)
    machine = created_body(vertex)["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
    assert machine == {
        "machineType": "n1-standard-4",
        "acceleratorType": "NVIDIA_L4",
        "acceleratorCount": 2,
    }

    with pytest.raises(DeployError, match="accelerator_type="):
        job_deployer(vertex).deploy(gpus)
    assert len(vertex.received("POST", JOBS)) == 1  # nothing sent for the second


def test_kubernetes_only_parts_are_named_in_one_warning(
    vertex: VertexEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    spec = pod_spec(
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        env=[
            {"name": "A", "value": "1"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        resources={"limits": {"cpu": "2"}},
    )
    spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    spec["nodeSelector"] = {"pool": "gpu"}

    job_deployer(vertex).deploy(spec)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    parts, env = warnings
    for name in ("volumes", "nodeSelector", "containers[0].volumeMounts", "limits.cpu"):
        assert name in parts
    assert "workingDir" not in parts  # the image has it already
    assert "TOKEN" in env and "valueFrom" in env
    sent = created_body(vertex)["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]
    assert sent == [{"name": "A", "value": "1"}, *RUNTIME_ENV]


def test_pod_spec_mutators_edit_the_pod_spec_first(vertex: VertexEmulator) -> None:
    seen: list[str | None] = []

    def more_gpus(spec: PodSpec, namespace: str | None) -> None:
        seen.append(namespace)
        spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 4}}
        spec["containers"][0]["env"].append({"name": "FROM_MUTATOR", "value": "1"})

    original = pod_spec()
    GcpJob(**vertex.options, pod_spec_mutators=[more_gpus], accelerator_type="NVIDIA_L4").deploy(
        original
    )

    pool = created_body(vertex)["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["acceleratorCount"] == 4
    assert {"name": "FROM_MUTATOR", "value": "1"} in pool["containerSpec"]["env"]
    assert seen == [None] and "resources" not in original["containers"][0]  # a copy
    with pytest.raises(DeployError, match="not callable"):
        GcpJob(**vertex.options, pod_spec_mutators=["not-resolved"])  # type: ignore[list-item]


def test_an_image_not_in_a_registry_is_one_line(vertex: VertexEmulator) -> None:
    with pytest.raises(DeployError, match="runs images from a registry") as local:
        job_deployer(vertex).deploy(pod_spec(image="oci:/tmp/out:train@sha256:" + "a" * 64))
    assert "\n" not in str(local.value) and "registry=" in str(local.value)
    with pytest.raises(DeployError, match="not pinned by digest"):
        job_deployer(vertex).deploy(pod_spec(image="us-docker.pkg.dev/p/r/train:v1"))
    assert not vertex.received("POST")


# -- failures ----------------------------------------------------------------------------


def test_a_failed_job_raises_with_its_error_and_log_and_is_kept(vertex: VertexEmulator) -> None:
    vertex.job_outcome = "failed"
    with pytest.raises(VertexJobFailedError) as failed:
        deployed(vertex, stream_log=False)

    error = failed.value
    first = str(error).splitlines()[0]
    assert error.reason == "JOB_STATE_FAILED"
    assert vertex.job_error in first and "is kept" in first
    assert error.log_tail == vertex.job_log
    assert "  epoch 1" in str(error).splitlines()  # not streamed: the tail is in the message
    (job,) = vertex.jobs.values()
    assert job["state"] == "JOB_STATE_FAILED"


def test_cleanup_always_deletes_a_failed_job(vertex: VertexEmulator) -> None:
    vertex.job_outcome = "failed"
    with pytest.raises(VertexJobFailedError, match="deleted"):
        deployed(vertex, labels={"emulator-outcome": "failed"}, cleanup="always")
    assert not vertex.jobs
    assert vertex.received("DELETE", JOBS + r"/\d+")


def test_cleanup_true_deletes_a_job_that_succeeded(vertex: VertexEmulator) -> None:
    run = deployed(vertex, cleanup=True)
    assert not vertex.jobs
    status = run.status()
    assert status.phase == "succeeded" and "deleted" in status.message
    run.delete()  # twice is fine
    assert len(vertex.received("DELETE")) == 1


def test_a_label_makes_one_job_fail(vertex: VertexEmulator) -> None:
    with pytest.raises(VertexJobFailedError):
        deployed(vertex, labels={"emulator-outcome": "failed"})
    deployed(vertex)  # the next one, without the label, succeeds


# -- the handle --------------------------------------------------------------------------


def test_no_wait_then_status_wait_and_logs(vertex: VertexEmulator) -> None:
    run = deployed(vertex, wait=False)
    assert not vertex.received("GET")  # returned once created

    phases = [run.status().phase, run.status().phase]
    assert phases == ["pending", "running"]
    assert list(run.logs(follow=True)) == vertex.job_log  # to the job's end
    assert run.status().phase == "succeeded"
    assert run.wait().phase == "succeeded"
    before = len(vertex.received("POST", "/v2/entries:list"))
    assert list(run.logs()) == vertex.job_log
    pages = [r.json() for r in vertex.received("POST", "/v2/entries:list")][before:]
    assert len(pages) == 2 and "pageToken" in pages[1]  # 3 entries, 2 a page


def test_wait_times_out_and_delete_cancels_a_running_job(vertex: VertexEmulator) -> None:
    vertex.job_outcome = "running"
    run = deployed(vertex, wait=False)

    with pytest.raises(DeployTimeoutError, match=r"still Running after 0\.2 s"):
        run.wait(timeout=0.2)
    run.delete()

    (cancel,) = vertex.received("POST", JOBS + r"/\d+:cancel")
    assert cancel.json() == {}
    assert not vertex.jobs
    # The emulator refuses to delete a job that has not ended (as Vertex AI does): the
    # delete waited for CANCELLING to become CANCELLED.
    status = run.status()
    assert status.phase == "failed" and "JOB_STATE_CANCELLED" in status.message
    run.delete()
    assert len(vertex.received("DELETE")) == 1


def test_deploy_timeout_leaves_the_job_going(vertex: VertexEmulator) -> None:
    vertex.job_outcome = "running"
    with pytest.raises(DeployTimeoutError, match="it goes on"):
        deployed(vertex, timeout=0.2)
    (job,) = vertex.jobs.values()
    assert job["state"] == "JOB_STATE_RUNNING"


def test_cleanup_always_cancels_and_deletes_a_job_that_timed_out(vertex: VertexEmulator) -> None:
    vertex.job_outcome = "running"
    with pytest.raises(DeployTimeoutError, match="cancelled and deleted"):
        deployed(vertex, timeout=0.2, cleanup="always")
    assert not vertex.jobs and vertex.received("POST", JOBS + r"/\d+:cancel")


def test_a_deleted_job_is_said_so(vertex: VertexEmulator) -> None:
    vertex.job_outcome = "running"
    run = deployed(vertex, wait=False)
    run.status()
    run.status()  # running
    vertex.jobs.clear()  # deleted by someone else
    assert run.status().phase == "unknown"
    with pytest.raises(DeployError, match="deleted before it finished"):
        run.wait()
    run.delete()


# -- the HTTP edges ----------------------------------------------------------------------


def test_server_errors_and_rate_limits_are_retried(vertex: VertexEmulator) -> None:
    vertex.fail(503, "UNAVAILABLE", method="POST", path="customJobs$")
    vertex.fail(429, "RESOURCE_EXHAUSTED", method="GET", path="customJobs/")
    vertex.fail(500, "INTERNAL", path="entries:list")
    vertex.fail(0, drop=True, method="GET", path="customJobs/")
    out = io.StringIO()

    deployed(vertex, log_stream=out)

    assert len(vertex.received("POST", JOBS)) == 2  # the 503, then the job
    assert len(vertex.jobs) == 1
    assert out.getvalue().splitlines() == vertex.job_log


def test_a_stale_token_is_refreshed_once(vertex: VertexEmulator, adc: ADC) -> None:
    run = deployed(vertex, wait=False)
    issued = adc.token_server.issued
    vertex.expire_token()

    assert run.status().phase == "pending"

    assert adc.token_server.issued == issued + 1
    first, second = vertex.received("GET")
    assert first.bearer != second.bearer and second.bearer is not None


def test_permission_denied_is_one_line(vertex: VertexEmulator) -> None:
    vertex.fail(403, "PERMISSION_DENIED", method="POST", path="customJobs$")
    with pytest.raises(GoogleApiError) as denied:
        deployed(vertex)
    assert denied.value.status == 403 and denied.value.reason == "PERMISSION_DENIED"
    assert "\n" not in str(denied.value) and "POST /v1/projects/" in str(denied.value)
    assert not vertex.jobs


def test_the_emulator_refuses_unknown_fields_and_missing_ones(
    vertex: VertexEmulator, adc: ADC
) -> None:
    token = application_default_credentials().token()
    url = f"{vertex.url}{JOBS}"
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "displayName": "x",
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": IMAGE, "workingDir": "/app"},
                }
            ]
        },
    }
    unknown = httpx.post(url, json=body, headers=headers)
    assert unknown.status_code == 400
    assert 'Unknown name "workingDir"' in unknown.json()["error"]["message"]
    body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"] = {"command": ["x"]}  # type: ignore[index]
    missing = httpx.post(url, json=body, headers=headers)
    assert missing.status_code == 400 and "containerSpec.imageUri" in missing.text
    anonymous = httpx.post(url, json=body)
    assert anonymous.status_code == 401


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"replica_count": -1}, "replica_count=-1"),
        ({"accelerator_count": 0}, "accelerator_count=0"),
        ({"labels": {"Team": "ml"}}, "label 'Team'"),
        ({"labels": {"team": "ML"}}, "label team='ML'"),
        ({"base_output_dir": "/tmp/out"}, "gs://"),
        ({"cleanup": "sometimes"}, "cleanup='sometimes'"),
        ({"poll_interval": 0}, "poll_interval=0"),
        ({"timeout": -1.0}, "timeout=-1.0"),
    ],
)
def test_bad_options_are_one_line(vertex: VertexEmulator, options: Any, words: str) -> None:
    with pytest.raises(DeployError) as bad:
        job_deployer(vertex, **options)
    assert words in str(bad.value) and "\n" not in str(bad.value)


def test_project_and_region_come_from_the_environment_or_say_how_to_set_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(DeployError, match="GOOGLE_CLOUD_PROJECT") as project:
        GcpJob(region="us-central1", dry_run=True)
    assert "--deployer-option project=ID" in str(project.value)
    with pytest.raises(DeployError, match="GOOGLE_CLOUD_REGION"):
        GcpJob(project="p", dry_run=True)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("CLOUD_ML_REGION", "europe-west4")
    deployer = GcpJob(dry_run=True)
    assert (deployer.target.project, deployer.target.region) == ("from-env", "europe-west4")
    assert deployer.target.base_url == "https://europe-west4-aiplatform.googleapis.com"


def test_dry_run_returns_the_body_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # No credentials are configured at all: a dry run needs none.
    plan = GcpJob(project="p", region="us-east1", dry_run=True, display_name="plan").deploy(
        pod_spec()
    )
    assert isinstance(plan, DryRun) and isinstance(plan, DeployHandle)
    (body,) = plan.manifests
    assert body["displayName"] == "plan"
    assert body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"] == IMAGE
    assert plan.status().phase == "pending" and plan.url is None and plan.kind == "CustomJob"


def test_config_set_deployer_finds_gcpjob_through_the_entry_point(
    vertex: VertexEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    ocibuild.config.reset()
    reset_plugins()
    try:
        ocibuild.config.set_deployer("gcpjob", **vertex.options)
        handle = ocibuild.config.deploy(pod_spec())
    finally:
        ocibuild.config.reset()
        reset_plugins()
    assert isinstance(handle, GcpJobRun)
    assert handle.status().phase == "succeeded"
    assert capsys.readouterr().out.splitlines() == vertex.job_log
