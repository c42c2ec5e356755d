"""The cluster builder's options, context sources and CLI spelling, without a cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild import PipelineError
from ocibuild.builders.cluster import (
    ConfigMapContextSource,
    GCSContextSource,
    PvcContextSource,
    S3ContextSource,
)
from ocibuild.pipeline._protocols import ExecutorContext
from ocibuild.pipeline.builders import ClusterBuilder
from ocibuild.pipeline.builders._executors import ExecutorBuild, executor_pod_spec
from ocibuild.pipeline.preprocessors import PythonPreprocessor
from tests.pipeline._support import child_env, ocibuild_cli


def test_fairings_context_sources_name_the_stores_and_their_options() -> None:
    s3 = S3ContextSource(bucket_name="builds", region="eu-west-1")
    assert (s3.store_name, s3.options) == ("s3", {"bucket": "builds", "region": "eu-west-1"})
    pvc = PvcContextSource(pvc_name="contexts")
    assert (pvc.store_name, pvc.options) == ("pvc", {"pvc_name": "contexts"})
    gcs = GCSContextSource(gcp_project="proj")
    assert (gcs.store_name, gcs.options) == ("gcs", {"bucket": "proj", "project": "proj"})
    assert ConfigMapContextSource().store_name == "configmap"
    with pytest.raises(PipelineError, match="bucket_name"):
        GCSContextSource()


def test_the_facade_imports_no_store_until_a_build_needs_one() -> None:
    code = (
        "import sys, ocibuild.builders.cluster as c; c.S3ContextSource(bucket_name='b'); "
        "print([m for m in sys.modules if m.startswith('ocibuild.pipeline.context_stores')"
        " or m in ('boto3', 'botocore', 'kubernetes')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_builder_options_from_text_are_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text("print(1)\n")
    builder = ClusterBuilder(
        registry="r.test.invalid/team",
        preprocessor=PythonPreprocessor(executable="main.py"),
        executor_cache="false",  # type: ignore[arg-type]
        cleanup="true",  # type: ignore[arg-type]
        ttl_seconds_after_finished="30",  # type: ignore[arg-type]
        bucket="b",
    )
    assert (builder.executor_cache, builder.cleanup) == (False, True)
    assert builder.ttl_seconds_after_finished == 30
    assert builder.context_options == {"bucket": "b"}
    with pytest.raises(PipelineError, match="executor_cache='maybe': expected true or false"):
        ClusterBuilder(registry="r/t", preprocessor=builder.preprocessor, executor_cache="maybe")  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="executor='docker'"):
        ClusterBuilder(registry="r/t", preprocessor=builder.preprocessor, executor="docker")


def test_the_executor_cache_is_opt_in_for_both_executors() -> None:
    context = ExecutorContext("tar:///workspace-context/context.tar.gz")
    plain = ExecutorBuild("r.test.invalid/t/i:1", "Dockerfile", context, image="x:1")
    cached = ExecutorBuild("r.test.invalid/t/i:1", "Dockerfile", context, image="x:1", cache=True)
    assert not any(
        "cache" in a for a in executor_pod_spec("kaniko", plain)["containers"][0]["args"]
    )
    assert (
        "--cache-repo=r.test.invalid/t/i/cache"
        in executor_pod_spec("kaniko", cached)["containers"][0]["args"]
    )
    script = executor_pod_spec("buildkit", cached)["containers"][0]["command"][2]
    assert "--export-cache type=registry,ref=r.test.invalid/t/i:buildcache,mode=max" in script
    assert "--import-cache type=registry,ref=r.test.invalid/t/i:buildcache" in script
    assert "cache" not in executor_pod_spec("buildkit", plain)["containers"][0]["command"][2]


def test_buildkit_refuses_a_context_it_cannot_fetch() -> None:
    build = ExecutorBuild("r/t/i:1", "Dockerfile", ExecutorContext("gs://b/c.tar.gz"), image="x")
    with pytest.raises(PipelineError, match=r"BuildKit executor cannot fetch gs://b/c\.tar\.gz"):
        executor_pod_spec("buildkit", build)


def test_the_cli_takes_builder_options_and_names_a_wrong_one(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print(1)\n")
    proc = ocibuild_cli(
        "build",
        "main.py",
        "--builder",
        "cluster",
        "--to",
        "r.test.invalid/t/i:1",
        "--builder-option",
        "no_such_option=1",
        env=child_env(HOME=str(tmp_path)),
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--builder-option no_such_option: no such option" in proc.stderr
    assert "Traceback" not in proc.stderr


# What buildctl's --metadata-file holds after a push (indented JSON, one key a line).
METADATA = json.dumps(
    {
        "containerimage.config.digest": "sha256:" + "1" * 64,
        "containerimage.digest": "sha256:" + "2" * 64,
        "image.name": "r.test.invalid/t/i:1",
    },
    indent=2,
)


def test_the_buildkit_script_copies_the_pushed_digest_to_the_termination_log(
    tmp_path: Path,
) -> None:
    # buildctl itself does not run here: a stand-in writes the metadata file as buildctl does,
    # and the pod's own shell script (run by sh) must leave exactly the image digest behind.
    stand_in = tmp_path / "buildctl-daemonless.sh"
    stand_in.write_text(f"#!/bin/sh\ncat > /tmp/ocibuild-build.json <<'EOF'\n{METADATA}EOF\n")
    stand_in.chmod(0o755)
    context = ExecutorContext("tar:///workspace-context/context.tar.gz")
    build = ExecutorBuild("r.test.invalid/t/i:1", "Dockerfile", context, image="x:1")
    script = executor_pod_spec("buildkit", build)["containers"][0]["command"][2]
    log = tmp_path / "termination-log"
    subprocess.run(
        ["sh", "-c", script.replace("/dev/termination-log", str(log))],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        check=True,
    )
    assert log.read_text() == "sha256:" + "2" * 64
