"""End to end: ``ocibuild run train.py --deployer gcpjob`` (the venv's own ``ocibuild``, as a
subprocess) and Fairing's ``config.run()`` build a real image, push it to a real registry on
loopback, and run it as a Vertex AI CustomJob on the emulator; ``ocibuild plugins`` lists what
this plugin provides; without the plugin, its names say which package to install.

The base is ``scratch``: the jobs only need an image that exists in the registry, and the
emulator runs nothing, so no Python base is fetched from anywhere.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ocibuild.config
import pytest
from ocibuild.plugins import reset_plugins

from ocibuild_gcp import application_default_credentials
from tests.emulators._vertex import VertexEmulator
from tests.fixtures_registry import LocalRegistry

OCIBUILD = str(Path(sys.executable).with_name("ocibuild"))
PROJECT, REGION = "test-project", "us-central1"
REPOSITORY = "team/ocibuild-job"
TRAIN_PY = 'print("training")\n'


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding ``train.py``, the current directory for the test."""
    (tmp_path / "train.py").write_text(TRAIN_PY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _ocibuild(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OCIBUILD, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _run_gcpjob(
    registry: LocalRegistry, vertex: VertexEmulator, *more: str
) -> subprocess.CompletedProcess[str]:
    return _ocibuild(*_gcpjob_args(registry, vertex, *more))


def _gcpjob_args(registry: LocalRegistry, vertex: VertexEmulator, *more: str) -> list[str]:
    return [
        "run",
        "train.py",
        "--base",
        "scratch",
        "--deployer",
        "gcpjob",
        "--registry",
        f"{registry.host}/team",
        "--deployer-option",
        f"project={PROJECT}",
        "--deployer-option",
        f"region={REGION}",
        *vertex.cli_options,
        *more,
    ]


def _only_job(vertex: VertexEmulator) -> dict[str, Any]:
    (job,) = vertex.jobs.values()
    return job


def _image_uri(job: dict[str, Any]) -> str:
    (pool,) = job["jobSpec"]["workerPoolSpecs"]
    image: str = pool["containerSpec"]["imageUri"]
    return image


def _assert_pushed(registry: LocalRegistry, image: str) -> None:
    """``image`` is ``HOST/team/ocibuild-job:TAG@sha256:...``, the registry has it, and its
    last layer holds ``train.py``."""
    name, _, digest = image.partition("@")
    assert name.startswith(f"{registry.host}/{REPOSITORY}:") and digest.startswith("sha256:")
    answer = registry.manifest(REPOSITORY, digest)
    assert answer.status_code == 200
    assert f"sha256:{hashlib.sha256(answer.content).hexdigest()}" == digest
    layer = registry.blob(REPOSITORY, answer.json()["layers"][-1]["digest"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        script = tar.extractfile("app/train.py")
        assert script is not None and script.read() == TRAIN_PY.encode()


def _assert_one_error_line(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("ocibuild: error:")]
    assert len(errors) == 1, stderr
    for word in words:
        assert word in errors[0]


# -- the command line --------------------------------------------------------------------


def test_run_builds_pushes_and_runs_a_custom_job_with_its_log(
    workdir: Path, registry: LocalRegistry, vertex: VertexEmulator
) -> None:
    done = _run_gcpjob(registry, vertex)

    assert done.returncode == 0, done.stderr
    job = _only_job(vertex)
    image = _image_uri(job)
    _assert_pushed(registry, image)
    (pool,) = job["jobSpec"]["workerPoolSpecs"]
    assert pool["containerSpec"]["command"] == ["python", "train.py"]
    lines = done.stdout.splitlines()
    # The pushed reference first, as for every deployer, then the job's log in order.
    assert lines == [image, *vertex.job_log]
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    assert job["name"].startswith(f"projects/{PROJECT}/locations/{REGION}/customJobs/")


def test_run_json_prints_one_object(
    workdir: Path, registry: LocalRegistry, vertex: VertexEmulator
) -> None:
    done = _run_gcpjob(registry, vertex, "--json")

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    job = _only_job(vertex)
    assert summary["kind"] == "CustomJob" and summary["state"] == "Succeeded"
    assert summary["name"] == job["name"]
    assert summary["image"] == _image_uri(job)


def test_run_dry_run_prints_the_request_body_and_creates_nothing(
    workdir: Path, registry: LocalRegistry, vertex: VertexEmulator
) -> None:
    # The CLI prints dry runs with PyYAML, which comes with the kubernetes client (installed
    # here, as the project's tests need it).
    yaml: Any = importlib.import_module("yaml")  # no type stubs; not worth a dependency

    done = _run_gcpjob(registry, vertex, "--dry-run")

    assert done.returncode == 0, done.stderr
    assert not vertex.jobs and not vertex.received("POST")
    (body,) = yaml.safe_load_all(done.stdout)
    (pool,) = body["jobSpec"]["workerPoolSpecs"]
    image = pool["containerSpec"]["imageUri"]
    assert image == done.stderr.splitlines()[0]  # the image is pushed all the same
    _assert_pushed(registry, image)
    assert body["displayName"] and pool["replicaCount"] == "1"


def test_a_dry_run_without_pyyaml_prints_json_documents(
    workdir: Path, registry: LocalRegistry, vertex: VertexEmulator
) -> None:
    # With only ocibuild and this plugin installed there is no PyYAML: a package "yaml" that
    # cannot be imported stands for its absence.
    blocked = workdir / "no-yaml"
    (blocked / "yaml").mkdir(parents=True)
    (blocked / "yaml" / "__init__.py").write_text("raise ImportError('no PyYAML here')\n")
    path = os.pathsep.join(p for p in (str(blocked), os.environ.get("PYTHONPATH")) if p)
    done = _ocibuild(*_gcpjob_args(registry, vertex, "--dry-run"), env={"PYTHONPATH": path})

    assert done.returncode == 0, done.stderr
    assert not vertex.received("POST")
    separator, text = done.stdout.split("\n", 1)
    assert separator == "---"
    body = json.loads(text)
    assert body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"].startswith(
        f"{registry.host}/team/"
    )


def test_run_no_wait_returns_with_the_job_s_state(
    workdir: Path, registry: LocalRegistry, vertex: VertexEmulator
) -> None:
    vertex.job_outcome = "running"
    done = _run_gcpjob(registry, vertex, "--no-wait")

    assert done.returncode == 0, done.stderr
    job = _only_job(vertex)
    assert job["state"] != "JOB_STATE_SUCCEEDED"
    last = done.stdout.splitlines()[-1]
    assert last.startswith("CustomJob ") and job["name"] in last
    assert last.rsplit(": ", 1)[1] in ("Pending", "Running")


def test_a_failed_job_exits_non_zero_with_one_line(
    workdir: Path, registry: LocalRegistry, vertex: VertexEmulator
) -> None:
    vertex.job_outcome = "failed"
    done = _run_gcpjob(registry, vertex)

    assert done.returncode != 0
    _assert_one_error_line(done.stderr, vertex.job_error)
    assert _only_job(vertex)["state"] == "JOB_STATE_FAILED"


def test_run_serves_the_image_on_an_endpoint_and_prints_its_url(
    workdir: Path, registry: LocalRegistry, vertex: VertexEmulator
) -> None:
    args = _gcpjob_args(registry, vertex, "--deployer-option", "max_replica_count=2")
    args[args.index("gcpjob")] = "gcpserving"
    done = _ocibuild(*args)

    assert done.returncode == 0, done.stderr
    (model,) = vertex.models.values()
    image = model["containerSpec"]["imageUri"]
    _assert_pushed(registry, image)
    (endpoint,) = vertex.endpoints.values()
    (deployed,) = endpoint["deployedModels"]
    resources = deployed["dedicatedResources"]
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (1, 2)
    # The server stays up; its predict URL is the last line, for a script to take.
    url = done.stdout.splitlines()[-1]
    assert url == f"{vertex.url}/v1/{endpoint['name']}:predict"
    answer = httpx.post(url, json={"instances": [[1, 2]]}, headers=_bearer(vertex))
    assert answer.status_code == 200, answer.text


def _bearer(vertex: VertexEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {application_default_credentials().token()}"}


def test_plugins_lists_what_ocibuild_gcp_provides() -> None:
    text = _ocibuild("plugins")
    assert text.returncode == 0, text.stderr
    block = text.stdout.split("(ocibuild-gcp ", 1)[1].split("\n\n", 1)[0]
    for line in (
        "deployers: gcpjob, gcpserving",
        "context stores: gcs",
        "pod spec mutators: gcp_service_account",
        "credential sources: google",
    ):
        assert line in block

    listed = _ocibuild("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    (gcp,) = [p for p in json.loads(listed.stdout) if p["distribution"] == "ocibuild-gcp"]
    assert gcp["provides"] == {
        "deployer": ["gcpjob", "gcpserving"],
        "context_store": ["gcs"],
        "pod_spec_mutator": ["gcp_service_account"],
        "credential_source": ["google"],
    }


def test_without_the_plugin_gcpjob_names_the_package(workdir: Path) -> None:
    # A destination is given: without one, the missing --to/--registry is said first.
    done = _ocibuild(
        "run",
        "train.py",
        "--deployer",
        "gcpjob",
        "--to",
        "oci:out:x",
        env={"OCIBUILD_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert done.returncode != 0
    _assert_one_error_line(done.stderr, "ocibuild-gcp", "pip install ocibuild-gcp")
    assert not (workdir / "out").exists()  # nothing built


# -- Fairing's API, in this process ------------------------------------------------------


@pytest.fixture
def fresh_config() -> Iterator[None]:
    ocibuild.config.reset()
    reset_plugins()
    yield
    ocibuild.config.reset()
    reset_plugins()


def test_config_run_with_gcpjob(
    workdir: Path,
    registry: LocalRegistry,
    vertex: VertexEmulator,
    fresh_config: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ocibuild.config.set_preprocessor("python", input_files=["train.py"])
    ocibuild.config.set_builder(
        "append", registry=f"{registry.host}/team", base_image="scratch", push=True
    )
    ocibuild.config.set_deployer("gcpjob", project=PROJECT, region=REGION, **vertex.options)

    result = ocibuild.config.run()

    job = _only_job(vertex)
    assert result.image == _image_uri(job)
    _assert_pushed(registry, result.image)
    assert result.handle.status().state == "Succeeded"
    assert getattr(result.handle, "name", None) == job["name"]
    printed = capsys.readouterr().out.splitlines()
    for line in vertex.job_log:
        assert line in printed
