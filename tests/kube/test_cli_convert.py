"""``--deployer-option K=V`` values typed by the real ``Job`` deployer's annotations, and the
deployer flags refused by a deployer that does not take them (no cluster needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

from ocibuild.cli._convert import NotConvertible, Parameters, convert
from ocibuild.cli._options import UsageError
from ocibuild.pipeline.deployers import Job, LocalDeployer
from tests.pipeline._support import child_env, ocibuild_cli
from tests.support import BaseImage

JOB = Parameters(Job)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("wait", "no", False),
        ("wait", "TRUE", True),
        ("stream_log", "0", False),
        ("runs", "3", 3),
        ("timeout", "90", 90.0),
        ("timeout", "none", None),
        ("pending_timeout", "2.5", 2.5),
        ("active_deadline_seconds", "", None),
        ("cleanup", "always", "always"),
        ("cleanup", "false", False),
        ("image_pull_secret", "yes", True),  # str | bool: the bool words first
        ("image_pull_secret", "regcred", "regcred"),
        ("labels", '{"team": "ml"}', {"team": "ml"}),
        ("pod_spec_mutators", '["add_gpu"]', ["add_gpu"]),  # names, resolved by create()
        ("namespace", "team-a", "team-a"),
        ("output", "anything", "anything"),  # Any stays a string
    ],
)
def test_job_options_take_their_annotated_types(name: str, value: str, expected: Any) -> None:
    converted = JOB.convert({name: value}, "deployer-option")
    assert converted == {name: expected}
    assert type(converted[name]) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("wait", "maybe", "expected bool (true/false/yes/no/1/0)"),
        ("runs", "1.5", "expected int"),
        ("timeout", "soon", "expected float | none"),
        ("cleanup", "sometimes", "expected bool (true/false/yes/no/1/0) | 'always'"),
        ("labels", '{"team": 1}', "expected JSON Mapping[str, str] | none"),
        ("labels", "team=ml", "expected JSON Mapping[str, str] | none"),
        ("log_stream", "stderr", "expected TextIO | none"),
    ],
)
def test_bad_values_name_the_option_and_the_type(name: str, value: str, expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        JOB.convert({name: value}, "deployer-option")
    assert str(caught.value) == f"--deployer-option {name}={value!r}: {expected}"


def test_an_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"--deployer-option colour: no such option \(options: "):
        JOB.convert({"colour": "blue"}, "deployer-option")


def test_flags_and_defaults_come_from_the_signature() -> None:
    assert JOB.takes("wait") and JOB.takes("dry_run") and JOB.takes("log_stream")
    assert JOB.defaults["wait"] is True
    local = Parameters(LocalDeployer)
    assert not local.takes("namespace") and local.takes("stream_log")


def test_unannotated_and_keyword_factories_keep_strings() -> None:
    def factory(depth, **more):  # type: ignore[no-untyped-def]
        return None

    params = Parameters(factory)
    assert params.convert({"depth": "3", "extra": "yes"}, "deployer-option") == {
        "depth": "3",
        "extra": "yes",
    }


def test_converter_corners() -> None:
    assert convert("[1, 2]", tuple[int, ...]) == (1, 2)
    assert convert("b", Literal["a", "b"]) == "b"
    assert convert("/tmp/x", Path) == Path("/tmp/x")
    assert convert("3", int | str) == 3
    assert convert("three", int | str) == "three"
    with pytest.raises(NotConvertible):
        convert("c", Literal["a", "b"])
    with pytest.raises(NotConvertible):
        convert("[1, true]", list[int])


def test_cli_refuses_a_flag_the_deployer_does_not_take(tmp_path: Path) -> None:
    proc = ocibuild_cli(
        "deploy",
        "127.0.0.1:1/none:1",
        "--deployer",
        "local",
        "--namespace",
        "x",
        env=child_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "ocibuild: error: --namespace: the deployer 'local' has no 'namespace' option "
        "(its options: cleanup, stream_log, timeout, env)"
    ]


def test_cli_refuses_a_bad_value_before_building(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("print('job')\n")
    proc = ocibuild_cli(
        "run",
        "job.py",
        "--to",
        f"oci:{tmp_path / 'never'}:1",
        "--deployer-option",
        "timeout=soon",
        env=child_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "ocibuild: error: --deployer-option timeout='soon': expected float | none"
    )
    assert not (tmp_path / "never").exists()


def test_json_with_the_local_deployer_keeps_stdout_for_the_object(
    tmp_path: Path, base_layout: BaseImage
) -> None:
    (tmp_path / "job.py").write_text("print('from the job')\n")
    proc = ocibuild_cli(
        "run",
        "job.py",
        "--base",
        base_layout.ref,
        "--python-version",
        "{}.{}".format(*sys.version_info[:2]),
        "--to",
        f"oci:{tmp_path / 'out'}:1",
        "--deployer",
        "local",
        "--json",
        env=child_env(OCIBUILD_CACHE_DIR=str(tmp_path / "cache")),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["state"] == "Succeeded" and out["kind"] == "LocalRun"
    assert "from the job" in proc.stderr.splitlines()
