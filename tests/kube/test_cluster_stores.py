"""The ``cluster`` builder end to end through the ``s3`` and ``pvc`` context stores, and with
the BuildKit executor.

The executor is played (tests/support/_executor.py) from the pod spec alone: it downloads an
``s3://`` context from moto with boto3 configured only by the pod's env (the endpoint, the
path style, the region, the credentials of the Secret it names), reads a ``tar://`` context
from the claim's bound PV on this host, follows BuildKit's init container and buildctl's
command line. The upload, the Job, the wait, the digest read-back and the deletion of the
stored context are ocibuild's own, against moto, the API server and the test registry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from ocibuild.pipeline._run import context_store
from ocibuild.pipeline.builders import ClusterBuilder, ClusterBuildError
from ocibuild.pipeline.preprocessors import PythonPreprocessor
from tests.kube import test_cluster_builder as cluster_tests
from tests.kube.test_cluster_builder import ERROR_LINE, NOTHING, Bed
from tests.kube.test_context_store_pvc import CLAIM, bound_claim
from tests.kube.test_job import context_namespace
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import BaseInRegistry, MotoServer, Registry, ToolError, skopeo_inspect
from tests.support._executor import ExecutorRun, TestExecutor

pytestmark = pytest.mark.xdist_group("kube")

BUCKET = "cluster-contexts"
# The fixtures of the configmap tests, shared (assigned, so that they are this module's too).
bed = cluster_tests.bed
project = cluster_tests.project


@pytest.fixture
def aws(s3_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto's S3 with an empty bucket; this process's AWS environment its credentials only."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    s3_server.client().create_bucket(Bucket=BUCKET)
    return s3_server


@pytest.fixture
def claim(bed: Bed, tmp_path: Path) -> Iterator[Path]:
    """The claim ``build-contexts`` bound to a hostPath PV in ``bed``'s namespace."""
    with bound_claim(bed.cluster, bed.namespace, tmp_path / "volume") as host:
        yield host


def _builder(bed: Bed, registry: Registry, base: BaseInRegistry, **options: Any) -> ClusterBuilder:
    return bed.builder(registry, base.oci, context_store_factory=context_store, **options)


def _objects(server: MotoServer) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=BUCKET)
    return [o["Key"] for o in listed.get("Contents", ())]


def _files(host: Path) -> list[Path]:
    return [p for p in host.rglob("*") if p.is_file()]


def _assert_pushed(run: ExecutorRun, image: str) -> None:
    assert run.digest is not None
    assert image == f"{run.args['destination']}@{run.digest}"
    inspected = skopeo_inspect("docker://" + run.args["destination"], tls_verify=False)
    assert inspected["Digest"] == run.digest


def _credentials_secret(bed: Bed, server: MotoServer) -> str:
    body = {
        "metadata": {"name": "s3-credentials"},
        "stringData": {
            "AWS_ACCESS_KEY_ID": server.access_key,
            "AWS_SECRET_ACCESS_KEY": server.secret_key,
        },
    }
    core: Any = client.CoreV1Api(bed.api)  # takes the JSON form as it is
    core.create_namespaced_secret(bed.namespace, body)
    return "s3-credentials"


def test_an_s3_build_fetches_with_the_pods_env_and_deletes_the_object(
    bed: Bed, project: Path, registry: Registry, base_in_registry: BaseInRegistry, aws: MotoServer
) -> None:
    secret = _credentials_secret(bed, aws)
    builder = _builder(
        bed,
        registry,
        base_in_registry,
        context_source="s3",
        context_options={"bucket": BUCKET, "endpoint_url": aws.url, "credentials_secret": secret},
    )
    with TestExecutor(bed.api, bed.namespace) as played:
        started = time.monotonic()
        result = builder.build()
        took = time.monotonic() - started
    assert played.errors == []
    (run,) = played.runs
    _assert_pushed(run, result.image)
    # The executor reached moto only through what the pod's env says, the keys from the Secret.
    assert run.fetched["endpoint"] == aws.url
    assert run.fetched["path_style"] is True
    assert run.fetched["region"] == "us-east-1"
    assert run.fetched["access_key"] == aws.access_key
    assert run.args["context"] == f"s3://{BUCKET}/{run.fetched['key']}"
    assert run.fetched["key"].startswith("ocibuild/contexts/")
    assert run.files["files/app/train.py"] == (project / "train.py").read_bytes()
    assert _objects(aws) == []
    assert bed.left() == NOTHING
    print(f"cluster build (s3, kaniko): {took:.2f} s")


def test_the_endpoint_from_aws_endpoint_url_s3_reaches_the_pod(
    bed: Bed,
    project: Path,
    registry: Registry,
    base_in_registry: BaseInRegistry,
    aws: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.url)
    secret = _credentials_secret(bed, aws)
    builder = _builder(
        bed,
        registry,
        base_in_registry,
        context_source="s3",
        context_options={"bucket": BUCKET, "credentials_secret": secret},
    )
    with TestExecutor(bed.api, bed.namespace) as played:
        result = builder.build()
    assert played.errors == []
    (run,) = played.runs
    _assert_pushed(run, result.image)
    assert run.fetched["endpoint"] == aws.url
    assert _objects(aws) == []
    assert bed.left() == NOTHING


def test_a_failed_s3_build_leaves_nothing_in_the_bucket(
    bed: Bed, project: Path, registry: Registry, base_in_registry: BaseInRegistry, aws: MotoServer
) -> None:
    builder = _builder(
        bed,
        registry,
        base_in_registry,
        context_source="s3",
        bucket=BUCKET,
        endpoint_url=aws.url,
        context_options={"credentials_secret": _credentials_secret(bed, aws)},
        tag="never-pushed",  # the context's own tag is the passing builds'
    )
    failing = TestExecutor(bed.api, bed.namespace, fail_with=ERROR_LINE)
    with failing, pytest.raises(ClusterBuildError) as caught:
        builder.build()
    assert caught.value.line == ERROR_LINE
    (run,) = failing.runs
    assert run.fetched["endpoint"] == aws.url  # it was there while the build ran
    with pytest.raises(ToolError, match=r"manifest unknown"):
        skopeo_inspect("docker://" + run.args["destination"], tls_verify=False)
    assert _objects(aws) == []
    assert bed.left() == NOTHING


def test_a_pvc_build_reads_the_claims_volume_and_deletes_the_file(
    bed: Bed, project: Path, registry: Registry, base_in_registry: BaseInRegistry, claim: Path
) -> None:
    builder = _builder(bed, registry, base_in_registry, context_source="pvc", pvc_name=CLAIM)
    with TestExecutor(bed.api, bed.namespace) as played:
        started = time.monotonic()
        result = builder.build()
        took = time.monotonic() - started
    assert played.errors == []
    (run,) = played.runs
    _assert_pushed(run, result.image)
    # The pod mounted the claim read-only; the executor read the file through its PV.
    volume = next(v for v in run.spec["volumes"] if "persistentVolumeClaim" in v)
    assert volume["persistentVolumeClaim"] == {"claimName": CLAIM, "readOnly": True}
    assert run.args["context"].startswith("tar:///ocibuild-context/ocibuild/contexts/")
    assert Path(run.fetched["host_path"]).parent == claim / "ocibuild" / "contexts"
    assert run.files["files/app/data/labels.csv"] == b"a,b\n1,2\n"
    assert _files(claim) == []
    assert bed.left() == NOTHING
    print(f"cluster build (pvc, kaniko): {took:.2f} s")


def test_a_failed_pvc_build_leaves_nothing_on_the_claim(
    bed: Bed, project: Path, registry: Registry, base_in_registry: BaseInRegistry, claim: Path
) -> None:
    builder = _builder(bed, registry, base_in_registry, context_source="pvc", pvc_name=CLAIM)
    failing = TestExecutor(bed.api, bed.namespace, fail_with=ERROR_LINE)
    with failing, pytest.raises(ClusterBuildError):
        builder.build()
    (run,) = failing.runs
    assert run.fetched["host_path"].name.endswith(".tar.gz")
    assert _files(claim) == []
    assert bed.left() == NOTHING


@pytest.mark.parametrize("store", ["configmap", "s3"])
def test_a_buildkit_build_unpacks_in_its_init_container_and_reports_by_metadata_file(
    bed: Bed,
    project: Path,
    registry: Registry,
    base_in_registry: BaseInRegistry,
    s3_server: MotoServer,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    options: dict[str, Any] = {}
    if store == "s3":
        aws = request.getfixturevalue("aws")
        options = {"context_source": "s3", "bucket": BUCKET, "endpoint_url": aws.url}
    builder = _builder(bed, registry, base_in_registry, executor="buildkit", **options)
    with TestExecutor(bed.api, bed.namespace) as played:
        started = time.monotonic()
        result = builder.build()
        took = time.monotonic() - started
    assert played.errors == []
    (run,) = played.runs
    assert run.executor == "buildkit"
    _assert_pushed(run, result.image)
    assert run.args["push"] == "true" and "insecure" in run.args
    assert run.files["Dockerfile"].decode() == builder.docker_context.text  # type: ignore[union-attr]
    if store == "s3":
        # The init container fetched the presigned URL; the object is gone since.
        assert run.fetched["fetch_url"].startswith(f"{s3_server.url}/{BUCKET}/ocibuild/contexts/")
        assert _objects(s3_server) == []
    assert bed.left() == NOTHING
    print(f"cluster build ({store}, buildkit): {took:.2f} s")


def test_the_cli_builds_through_the_s3_store_and_prints_the_pinned_reference(
    bed: Bed,
    project: Path,
    registry: Registry,
    base_in_registry: BaseInRegistry,
    aws: MotoServer,
    tmp_path: Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(context_namespace(bed.cluster.kubeconfig.read_text(), bed.namespace))
    with TestExecutor(bed.api, bed.namespace) as played:
        proc = ocibuild_cli(
            "build",
            str(project / "train.py"),
            "--builder",
            "cluster",
            "--registry",
            f"{registry.host}/team",
            "--base",
            base_in_registry.oci,
            "--builder-option",
            "context_source=s3",
            "--builder-option",
            f"bucket={BUCKET}",
            "--builder-option",
            f"endpoint_url={aws.url}",
            "--builder-option",
            f"credentials_secret={_credentials_secret(bed, aws)}",
            env=child_env(
                HOME=str(tmp_path / "home"),
                KUBECONFIG=str(kubeconfig),
                OCIBUILD_CACHE_DIR=str(tmp_path / "cache"),
            ),
            cwd=project,
        )
    assert played.errors == []
    assert proc.returncode == 0, proc.stderr
    (run,) = played.runs
    assert proc.stdout.strip().splitlines()[-1] == f"{run.args['destination']}@{run.digest}"
    assert run.fetched["endpoint"] == aws.url
    _assert_pushed(run, proc.stdout.strip().splitlines()[-1])
    assert _objects(aws) == []
    assert bed.left() == NOTHING


@pytest.mark.parametrize("source", ["S3ContextSource", "PvcContextSource"])
def test_fairings_context_sources_build_through_their_stores(
    bed: Bed,
    project: Path,
    registry: Registry,
    base_in_registry: BaseInRegistry,
    request: pytest.FixtureRequest,
    source: str,
) -> None:
    from ocibuild.builders import cluster as fairing

    if source == "S3ContextSource":
        aws = request.getfixturevalue("aws")
        secret = _credentials_secret(bed, aws)
        context_source: Any = fairing.S3ContextSource(
            bucket_name=BUCKET, region="us-east-1", endpoint_url=aws.url, credentials_secret=secret
        )
    else:
        host = request.getfixturevalue("claim")
        context_source = fairing.PvcContextSource(pvc_name=CLAIM)  # no namespace: the Job's
    builder = fairing.ClusterBuilder(
        registry=f"{registry.host}/team",
        image_name="facade-stores",
        base_image=base_in_registry.oci,
        context_source=context_source,
        preprocessor=PythonPreprocessor(executable="train.py"),
        namespace=bed.namespace,
        config_file=str(bed.cluster.kubeconfig),
    )
    with TestExecutor(bed.api, bed.namespace) as played:
        result = builder.build()
    assert played.errors == []
    (run,) = played.runs
    _assert_pushed(run, result.image)
    if source == "S3ContextSource":
        assert run.fetched["access_key"] == aws.access_key
        assert _objects(aws) == []
    else:
        assert Path(run.fetched["host_path"]).is_relative_to(host)
        assert _files(host) == []
    assert bed.left() == NOTHING
