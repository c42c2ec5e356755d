"""Fairing parity of ``config.run()``: Fairing's tuple by index, its phases logged unless
quiet, and a value to use from the in-image stand-in."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocibuild.config import Config
from tests.pipeline._support import child_env, ocibuild_cli, unpack
from tests.pipeline.conftest import PythonBases
from tests.support import Registry


def local_config(tmp_path: Path, base: str) -> Config:
    (tmp_path / "job.py").write_text("print('job ran')\n")
    config = Config()
    config.set_preprocessor("python", input_files=[tmp_path / "job.py"])
    config.set_builder(
        "append", base_image=base, to=f"oci:{tmp_path / 'out'}:1", cache_dir=tmp_path / "cache"
    )
    config.set_deployer("local", stream_log=False)
    return config


def test_run_result_indexes_like_fairings_tuple_and_logs_phases(
    tmp_path: Path, python_bases: PythonBases, caplog: pytest.LogCaptureFixture
) -> None:
    config = local_config(tmp_path, python_bases.local)
    with caplog.at_level(logging.INFO, logger="ocibuild.config"):
        result = config.run()
    assert result.handle.output == "job ran\n"  # type: ignore[attr-defined]
    assert len(result) == 3
    assert result[0] is result.preprocessor and result[1] is result.builder
    assert result[-1] is result.deployer
    assert result[1:] == (result.builder, result.deployer)
    preprocessor, builder, deployer = result
    assert (preprocessor, builder, deployer) == tuple(result[:])
    phases = [r.getMessage() for r in caplog.records if r.name == "ocibuild.config"]
    assert phases[0] == "Building the image with the append builder..."
    assert phases[1].startswith(f"Wrote {result.image} (")
    assert phases[2:] == ["Deploying with the local deployer...", f"Deployed {result.image}"]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ocibuild.config"):
        config.run(quiet=True)
        config.build(quiet=True)
    assert [r for r in caplog.records if r.name == "ocibuild.config"] == []


_PORTED = """\
import sys
from pathlib import Path
from tests.pipeline.test_config_fairing import local_config

config = local_config(Path(sys.argv[1]), sys.argv[2])
config.run(quiet=sys.argv[3] == "quiet")
"""


@pytest.mark.parametrize("quiet", [False, True])
def test_phases_reach_stderr_when_the_program_sets_up_no_logging(
    tmp_path: Path, python_bases: PythonBases, quiet: bool
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _PORTED,
            str(tmp_path),
            python_bases.local,
            "quiet" if quiet else "loud",
        ],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    if quiet:
        assert lines == []
        return
    out = f"oci:{tmp_path / 'out'}:1"
    assert lines[:2] == ["Building the image with the append builder...", f"writing {out}"]
    assert lines[2].startswith(f"Wrote {out}@sha256:")  # Fairing: "Pushing image ..."
    image = lines[2].split()[1]
    assert lines[3] == "Deploying with the local deployer..."
    assert lines[4].startswith("running [") and "'job.py'" in lines[4]  # the deployer's step
    assert lines[5:] == [f"Deployed {image}"]


_IN_IMAGE = """\
import ocibuild as fairing

fairing.config.set_preprocessor("python", input_files=["job.py"])
fairing.config.set_builder("append", registry="registry.invalid/team", push=True)
fairing.config.set_deployer("job", namespace="ml")
preprocessor, builder, deployer = fairing.config.run()
result = fairing.config.run(quiet=True)
print(preprocessor, builder, deployer)
print(result[1], result.deployer, result.image, result.handle, len(result))
print(fairing.run("job.py", deployer="local").deployer, fairing.config.build())
fairing.config.reset()
print(tuple(fairing.config.run()))  # the library's defaults
"""


def test_the_in_image_stand_in_returns_what_ported_code_uses(
    tmp_path: Path, python_bases: PythonBases
) -> None:
    (tmp_path / "job.py").write_text(textwrap.dedent(_IN_IMAGE))
    proc = ocibuild_cli(
        "build",
        "job.py",
        "--base",
        python_bases.local,
        "--to",
        f"oci:{tmp_path / 'out'}:1",
        env=child_env(OCIBUILD_CACHE_DIR=str(tmp_path / "cache")),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    ran = unpack(proc.stdout.strip(), tmp_path / "unpacked").run()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "python append job",
        "append job None None 3",
        "local None",
        "(None, 'append', 'job')",
    ]
    assert ran.stderr == ""  # the stand-in builds nothing, so it logs nothing


def test_a_push_is_logged_as_one(
    tmp_path: Path,
    python_bases: PythonBases,
    registry: Registry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "job.py").write_text("print('job ran')\n")
    config = Config()
    config.set_preprocessor("python", input_files=[tmp_path / "job.py"])
    config.set_builder(
        "append",
        base_image=python_bases.registry,
        registry=f"{registry.host}/team",
        cache_dir=tmp_path / "cache",
    )
    with caplog.at_level(logging.INFO, logger="ocibuild"):
        image = config.build()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("ocibuild.")]
    assert said[0] == "Building the image with the append builder..."
    assert f"pushing to {registry.host}/team/ocibuild-job" in said
    assert said[-1].startswith(f"Pushed {image} (")
