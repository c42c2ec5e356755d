"""``ocibuild build``/``run`` as a command-line user meets them: ``--registry``, an
``--executable`` in the target directory, ``--command``, ``--builder-option`` and
``--preprocessor-option`` typed like ``--deployer-option``, and errors that speak flags."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import zipfile
from pathlib import Path

import pytest

from ocibuild import DependencyError
from ocibuild.cli._convert import Parameters
from ocibuild.oci import Platform
from ocibuild.pipeline.builders import AppendBuilder
from ocibuild.pipeline.builders._deps import pip_platform_tags
from ocibuild.preprocessors import PythonPreprocessor
from tests.pipeline._support import child_env, ocibuild_cli, unpack
from tests.pipeline.conftest import PythonBases
from tests.support import Registry, skopeo_inspect


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``src/`` with two scripts (so it has no default executable), and a decoy ``main.py``
    in the directory the commands run from."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.py").write_text("print('main in src')\n")
    (src / "other.py").write_text("print('other')\n")
    (tmp_path / "main.py").write_text("print('the decoy in the current directory')\n")
    return tmp_path


def build(project: Path, *args: str, **env: str) -> tuple[int, str, str]:
    proc = ocibuild_cli(
        "build",
        *args,
        env=child_env(OCIBUILD_CACHE_DIR=str(project / "cache"), **env),
        cwd=project,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_build_pushes_to_registry_with_a_content_tag(
    project: Path, python_bases: PythonBases, registry: Registry
) -> None:
    args = ["src", "--executable", "main.py", "--base", python_bases.local]
    status, out, err = build(project, *args, "--registry", f"{registry.host}/team")
    assert status == 0, err
    name, _, digest = out.strip().partition("@")
    repo, _, tag = name.rpartition(":")
    assert repo == f"{registry.host}/team/ocibuild-job"
    assert len(tag) == 16 and digest.startswith("sha256:")
    assert skopeo_inspect(f"docker://{name}")["Digest"] == digest

    named = ["--registry", f"{registry.host}/team", "--image-name", "trainer", "--tag", "v1"]
    status, out, err = build(project, *args, *named)
    assert status == 0, err
    assert out.startswith(f"{registry.host}/team/trainer:v1@sha256:")

    status, out, err = build(project, *args, "--registry", registry.host, "--to", "oci:x:1")
    assert status == 2
    assert err == (
        "ocibuild: error: give one of --to REF and --registry HOST[/NAMESPACE], not both\n"
    )
    status, out, err = build(project, *args, OCIBUILD_REPO="")  # neither given
    assert status == 2
    assert err == (
        "ocibuild: error: say where the image goes: --to REF, --registry HOST[/NAMESPACE], "
        "or set $OCIBUILD_REPO\n"
    )


def test_executable_is_a_path_in_the_target_directory(
    project: Path, python_bases: PythonBases
) -> None:
    dest = f"oci:{project / 'out'}:1"
    status, out, err = build(
        project, "src", "--executable", "main.py", "--base", python_bases.local, "--to", dest
    )
    assert status == 0, err
    image = unpack(out.strip(), project / "unpacked")
    assert image.process["args"] == ["python", "src/main.py"]
    assert image.run().stdout == "main in src\n"  # not the decoy beside the command

    # The spelling from the current directory into TARGET still names the same file.
    status, out, err = build(
        project, "src", "--executable", "src/main.py", "--base", python_bases.local, "--to", dest
    )
    assert status == 0, err
    assert unpack(out.strip(), project / "again").process["args"] == ["python", "src/main.py"]

    status, out, err = build(project, "src", "--executable", "nope.py", "--to", dest)
    assert status == 2
    assert err == (
        "ocibuild: error: --executable nope.py: no such file in src (a relative --executable "
        "is a path in the TARGET directory)\n"
    )


def test_command_flag_runs_the_executable(project: Path, python_bases: PythonBases) -> None:
    status, out, err = build(
        project,
        "src",
        "--executable",
        "other.py",
        "--command",
        "python -u",
        "--base",
        python_bases.local,
        "--to",
        f"oci:{project / 'out'}:1",
    )
    assert status == 0, err
    image = unpack(out.strip(), project / "unpacked")
    assert image.process["args"] == ["python", "-u", "src/other.py"]


def test_no_executable_is_a_usage_error_in_flags(project: Path) -> None:
    status, out, err = build(project, "src", "--to", f"oci:{project / 'out'}:1")
    assert status == 2
    assert err.count("\n") == 1 and out == ""
    assert err.startswith("ocibuild: error: no executable: ")
    assert "--executable FILE" in err and "--command" in err
    assert "executable=" not in err and "command=[" not in err  # no Python spelling
    assert not (project / "out").exists()


def test_builder_options_are_typed_by_the_builders_annotations() -> None:
    # The builder's TYPE_CHECKING-only imports (RegistryOptions) do not leave every value a string.
    params = Parameters(AppendBuilder)
    typed = params.convert(
        {"pip_args": '["--find-links=w"]', "push": "no", "platform_tags": "null"}, "builder-option"
    )
    assert typed == {"pip_args": ["--find-links=w"], "push": False, "platform_tags": None}


@pytest.mark.parametrize(
    ("option", "pair", "message"),
    [
        ("--builder-option", "base_image=x", "--builder-option base_image: give it as --base"),
        ("--builder-option", "to=oci:x", "--builder-option to: give it as --to"),
        (
            "--builder-option",
            "push=maybe",
            "--builder-option push='maybe': expected bool (true/false/yes/no/1/0)",
        ),
        (
            "--builder-option",
            "colour=red",
            "--builder-option colour: no such option (options: registry, image_name, ",
        ),
        (
            "--preprocessor-option",
            "executable=main.py",
            "--preprocessor-option executable: give it as --executable",
        ),
        (
            "--preprocessor-option",
            "output_map=[1]",
            "--preprocessor-option output_map='[1]': expected JSON Mapping",
        ),
    ],
)
def test_component_options_refused_before_building(
    project: Path, option: str, pair: str, message: str
) -> None:
    status, _, err = build(project, "src/main.py", "--to", f"oci:{project / 'out'}:1", option, pair)
    assert status == 2
    assert err.startswith(f"ocibuild: error: {message}"), err
    assert err.count("\n") == 1
    assert not (project / "out").exists()


def test_preprocessor_option_reaches_the_preprocessor(
    project: Path, python_bases: PythonBases
) -> None:
    (project / "data.csv").write_text("a,b\n")
    mapping = json.dumps({"data.csv": "data/rows.csv"})
    status, out, err = build(
        project,
        "src/main.py",
        "--preprocessor-option",
        f"output_map={mapping}",
        "--base",
        python_bases.local,
        "--to",
        f"oci:{project / 'out'}:1",
    )
    assert status == 0, err
    image = unpack(out.strip(), project / "unpacked")
    assert image.files("/app/data") == {"/app/data/rows.csv": b"a,b\n"}


def _wheel(wheelhouse: Path, name: str) -> Path:
    """A pure-Python wheel of ``name`` 1.0 (one module printing its name), made by hand."""
    files = {
        f"{name}.py": f"NAME = {name!r}\n".encode(),
        f"{name}-1.0.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode()
        ),
        f"{name}-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{name}-1.0.dist-info/RECORD"] = (
        "\n".join([*record, f"{name}-1.0.dist-info/RECORD,,"]) + "\n"
    ).encode()
    wheelhouse.mkdir(exist_ok=True)
    path = wheelhouse / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return path


def test_no_wheel_advice_names_options_that_work(project: Path, python_bases: PythonBases) -> None:
    """The dependency error's advice, followed word for word, builds the image."""
    (project / "src" / "requirements.txt").write_text("tinydep\n")
    (project / "src" / "main.py").write_text("import tinydep\nprint(tinydep.NAME)\n")
    wheelhouse = project / "wheels"
    _wheel(wheelhouse, "tinydep")
    common = ["src", "--executable", "main.py", "-r", "src/requirements.txt"]
    common += ["--base", python_bases.local]
    dest = ["--to", f"oci:{project / 'out'}:1"]
    offline = {"PIP_NO_INDEX": "1"}  # no index: only a wheelhouse can have it

    status, out, err = build(project, *common, *dest, **offline)
    assert status == 1 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("ocibuild: error: no wheel of tinydep for linux/amd64, CPython ")
    advice = "--builder-option pip_args='[\"--find-links=DIR\"]'"
    assert advice in err
    assert "use a --base that has tinydep installed" in err
    assert "build with --builder docker" in err
    assert "builder=" not in err and "pip_args=[" not in err  # flags, not Python

    # Every flag the advice names is one `build` has.
    _, help_text, _ = build(project, "--help")
    for flag in ("--builder-option", "--base", "--builder"):
        assert f"{flag} " in help_text

    followed = [word.replace("DIR", str(wheelhouse)) for word in shlex.split(advice)]
    status, out, err = build(project, *common, *dest, *followed, **offline)
    assert status == 0, err
    assert unpack(out.strip(), project / "unpacked").run().stdout == "tinydep\n"


def test_no_wheel_advice_in_python_for_the_library(
    project: Path, python_bases: PythonBases, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "src" / "requirements.txt").write_text("tinydep\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    pre = PythonPreprocessor(
        input_files=["src"], executable="src/main.py", requirements="src/requirements.txt"
    )

    def builder(**options: object) -> AppendBuilder:
        return AppendBuilder(
            base_image=python_bases.local,
            preprocessor=pre,
            to=f"oci:{project / 'out'}:1",
            cache_dir=project / "cache",
            **options,  # type: ignore[arg-type]
        )

    with pytest.raises(DependencyError) as caught:
        builder().build()
    message = str(caught.value)
    assert 'pip_args=["--find-links=DIR"]' in message
    assert "use a base_image that has tinydep installed" in message
    assert 'builder="docker"' in message
    assert "--builder" not in message
    assert not (project / "out").exists()

    _wheel(project / "wheels", "tinydep")
    result = builder(pip_args=[f"--find-links={project / 'wheels'}"]).build()
    assert result.image.startswith(f"oci:{project / 'out'}:1@sha256:")


def test_platform_tags_advice_names_a_builder_option() -> None:
    with pytest.raises(DependencyError) as caught:
        pip_platform_tags(Platform("linux", "riscv64"))
    err = caught.value
    assert "pass platform_tags=[...]" in str(err) and "--builder" not in str(err)
    assert err.flags is not None
    advice = err.flags.split("give ", 1)[1].split(" (", 1)[0]
    flag, pair = shlex.split(advice.replace("[...]", '["manylinux_2_28_riscv64"]'))
    assert flag == "--builder-option"
    name, _, value = pair.partition("=")
    assert Parameters(AppendBuilder).convert({name: value}, "builder-option") == {
        "platform_tags": ["manylinux_2_28_riscv64"]
    }


def test_docker_builder_errors_name_flags(project: Path) -> None:
    (project / "train.py").write_text("print(1)\n")
    to = "127.0.0.1:1/x@sha256:" + "b" * 64
    pinned = "python:3.11-slim@sha256:" + "a" * 64
    args = ["train.py", "--builder", "docker", "--dry-run", "--base", pinned, "--to", to]
    status, _, err = build(project, *args)
    assert status == 1
    assert (
        err == f"ocibuild: error: --to {to}: give a tag, not a digest (the push makes the digest)\n"
    )
