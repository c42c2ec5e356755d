"""notebook, full_notebook and function targets: images checked file by file, commands run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocibuild import PipelineError
from ocibuild.pipeline._runtime.function import check_python_version
from ocibuild.pipeline._runtime.notebook import MAGIC_REPLACEMENT
from ocibuild.pipeline.builders import AppendBuilder
from ocibuild.preprocessors import (
    FullNotebookPreprocessor,
    FunctionPreprocessor,
    NotebookPreprocessor,
    PythonPreprocessor,
    default_preprocessor,
)
from tests.pipeline._support import child_env, ocibuild_cli, unpack
from tests.pipeline.conftest import PythonBases

RUNTIME_FILES = {
    "/opt/ocibuild/runtime/ocibuild/__init__.py",
    "/opt/ocibuild/runtime/ocibuild/config.py",
    "/opt/ocibuild/runtime/ocibuild/_runtime/__init__.py",
    "/opt/ocibuild/runtime/ocibuild/_runtime/notebook.py",
    "/opt/ocibuild/runtime/ocibuild/_runtime/function.py",
}


def code(source: str) -> dict[str, Any]:
    lines = source.splitlines(keepends=True)
    return {
        "cell_type": "code",
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": lines,
    }


NOTEBOOK: dict[str, Any] = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Analysis\n"]},
        code("import os\nvalues = [1, 2, 3]\n%matplotlib inline\nprint('sum', sum(values))"),
        code("!pip install nothing-at-all\nfor v in values:\n    %time v\n    print(v)\n"),
        code("%%bash\necho this is shell, not python\n"),
        code(
            "total = sum(values) * 2\nprint('runtime', os.environ.get('OCIBUILD_RUNTIME'))\ntotal"
        ),
    ],
}


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "analysis.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    return path


Build = Callable[[Any, str, str], str]


@pytest.fixture
def build(tmp_path: Path, cache_dir: Path) -> Build:
    """build(preprocessor, base, tag): the reference of the image appended into oci:OUT:tag."""

    def append(preprocessor: Any, base: str, tag: str) -> str:
        to = f"oci:{tmp_path / 'out'}:{tag}"
        builder = AppendBuilder(
            base_image=base, preprocessor=preprocessor, to=to, cache_dir=cache_dir
        )
        return builder.build().image

    return append


def test_notebook_becomes_a_script(
    notebook: Path,
    tmp_path: Path,
    python_bases: PythonBases,
    build: Build,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ocibuild.preprocessors"):
        ref = build(NotebookPreprocessor(notebook_file=notebook), python_bases.local, "nb")
    assert "analysis.ipynb: 5 IPython magic/shell escape line(s) dropped" in caplog.text

    image = unpack(ref, tmp_path / "unpacked")
    app = image.files("/app")
    assert set(app) == {"/app/analysis.py"}
    script = app["/app/analysis.py"].decode()
    compile(script, "analysis.py", "exec")
    assert "%matplotlib" not in script and "!pip" not in script and "echo" not in script
    assert f"    {MAGIC_REPLACEMENT}" in script  # the indented %time kept the loop valid
    assert set(image.files("/opt/ocibuild")) == RUNTIME_FILES
    assert image.process["args"] == ["python", "analysis.py"]

    ran = image.run()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "sum 6\n1\n2\n3\nruntime 1\n"


def test_full_notebook_runs_every_cell_and_keeps_the_output(
    notebook: Path, tmp_path: Path, python_bases: PythonBases, build: Build
) -> None:
    data = tmp_path / "params.json"
    data.write_text('{"scale": 2}')
    pre = FullNotebookPreprocessor(
        notebook_file=notebook, input_files=[data], output_file="executed.ipynb"
    )
    ref = build(pre, python_bases.local, "full")

    image = unpack(ref, tmp_path / "unpacked")
    assert image.files("/app") == {
        "/app/analysis.ipynb": notebook.read_bytes(),
        "/app/params.json": b'{"scale": 2}',
    }
    assert set(image.files("/opt/ocibuild")) == RUNTIME_FILES
    assert image.process["args"] == [
        "python",
        "-m",
        "ocibuild._runtime.notebook",
        "analysis.ipynb",
        "executed.ipynb",
    ]

    ran = image.run()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "sum 6\n1\n2\n3\nruntime 1\n"
    executed = json.loads((image.rootfs / "app" / "executed.ipynb").read_text())
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in cells] == [1, 2, 3, 4]
    assert cells[0]["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "sum 6\n"}]
    assert cells[1]["outputs"][0]["text"] == "1\n2\n3\n"
    assert cells[2]["outputs"] == []  # a %%bash cell is dropped
    assert cells[3]["outputs"][-1] == {
        "output_type": "execute_result",
        "execution_count": 4,
        "data": {"text/plain": "12"},
        "metadata": {},
    }
    assert executed["metadata"]["ocibuild"]["status"] == "completed"
    assert executed["cells"][0] == NOTEBOOK["cells"][0]  # markdown untouched


def test_full_notebook_stops_at_the_first_error(tmp_path: Path) -> None:
    failing = dict(
        NOTEBOOK, cells=[code("x = 1\nprint('before')"), code("1 / 0"), code("print('never')")]
    )
    source, output = tmp_path / "fail.ipynb", tmp_path / "out.ipynb"
    source.write_text(json.dumps(failing))
    proc = subprocess.run(
        [sys.executable, "-m", "ocibuild.pipeline._runtime.notebook", str(source), str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == "before\n"
    assert "ZeroDivisionError" in proc.stderr
    executed = json.loads(output.read_text())
    error = executed["cells"][1]["outputs"][-1]
    assert error["output_type"] == "error" and error["ename"] == "ZeroDivisionError"
    assert executed["cells"][2]["outputs"] == []
    assert executed["metadata"]["ocibuild"]["status"] == "failed"


def make_main_function() -> Any:
    """A function defined in ``__main__``, as in a notebook or script: pickled by value."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(
        "import os\n"
        "SCALE = 3\n"
        "def train():\n"
        "    print('function ran with runtime', os.environ.get('OCIBUILD_RUNTIME'))\n"
        "    return SCALE * 14\n"
        "class Model:\n"
        "    def train(self):\n"
        "        print('model trained')\n",
        namespace,
    )
    return namespace


def test_function_is_pickled_and_called(
    tmp_path: Path, python_bases: PythonBases, build: Build
) -> None:
    train = make_main_function()["train"]
    ref = build(FunctionPreprocessor(function_obj=train), python_bases.local, "fn")
    image = unpack(ref, tmp_path / "unpacked")
    assert set(image.files("/app")) == {"/app/pickled_fn.p"}
    opt = set(image.files("/opt/ocibuild"))
    assert opt > RUNTIME_FILES
    assert "/opt/ocibuild/runtime/cloudpickle/__init__.py" in opt
    assert all(p.startswith("/opt/ocibuild/runtime/cloudpickle/") for p in opt - RUNTIME_FILES)
    version = "{}.{}".format(*sys.version_info[:2])
    assert image.process["args"] == [
        "python",
        "-m",
        "ocibuild._runtime.function",
        "--serialized_fn_file",
        "pickled_fn.p",
        "--python_version",
        version,
    ]
    ran = image.run()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "function ran with runtime 1\n42\n"


def test_class_with_train_is_trained(
    tmp_path: Path, python_bases: PythonBases, build: Build
) -> None:
    model = make_main_function()["Model"]
    ref = build(FunctionPreprocessor(function_obj=model), python_bases.local, "cls")
    ran = unpack(ref, tmp_path / "unpacked").run()
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "model trained\n"


def test_function_needs_the_same_python_minor(
    tmp_path: Path, python_bases: PythonBases, build: Build
) -> None:
    train = make_main_function()["train"]
    with pytest.raises(PipelineError) as err:
        build(FunctionPreprocessor(function_obj=train), python_bases.other, "fn")
    here = "{}.{}".format(*sys.version_info[:2])
    there = f"3.{sys.version_info[1] - 2}"
    assert f"pickled with Python {here}" in str(err.value)
    assert f"has Python {there}" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written
    with pytest.raises(SystemExit, match=f"pickled with Python {there} but this image runs"):
        check_python_version(there)


def test_function_rejects_what_it_cannot_run() -> None:
    with pytest.raises(PipelineError, match="needs a function or a class with train"):
        FunctionPreprocessor(function_obj=42)  # type: ignore[arg-type]


def test_cli_builds_notebooks(notebook: Path, tmp_path: Path, python_bases: PythonBases) -> None:
    env = child_env(OCIBUILD_CACHE_DIR=str(tmp_path / "cache"))
    out = tmp_path / "out"
    proc = ocibuild_cli(
        "build",
        notebook.name,
        "--base",
        python_bases.local,
        "--to",
        f"oci:{out}:nb",
        env=env,
        cwd=notebook.parent,
    )
    assert proc.returncode == 0, proc.stderr
    image = unpack(proc.stdout.strip(), tmp_path / "nb")
    assert image.run().stdout == "sum 6\n1\n2\n3\nruntime 1\n"

    proc = ocibuild_cli(
        "build",
        notebook.name,
        "--preprocessor",
        "full_notebook",
        "--base",
        python_bases.local,
        "--to",
        f"oci:{out}:full",
        env=env,
        cwd=notebook.parent,
    )
    assert proc.returncode == 0, proc.stderr
    full = unpack(proc.stdout.strip(), tmp_path / "full")
    assert full.process["args"][:3] == ["python", "-m", "ocibuild._runtime.notebook"]
    assert full.run().returncode == 0
    assert (full.rootfs / "app" / "fairing_output_notebook.ipynb").is_file()


def test_python_preprocessor_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "main.py").write_text("print('main')\n")
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    context = PythonPreprocessor(input_files=["src"]).preprocess()
    assert context.command == ("python", "src/main.py")  # the directory's only script
    assert context.files["/app/src"].source == tmp_path / "src"
    assert context.workdir == "/app"

    context = PythonPreprocessor(
        input_files=["src"],
        executable="src/main.py",
        path_prefix="/work/",
        command=["python", "-u"],
    ).preprocess()
    assert context.command == ("python", "-u", "src/main.py")
    assert context.workdir == "/work"
    with pytest.raises(PipelineError, match="no executable"):
        PythonPreprocessor(input_files=["src", "src/pkg/__init__.py"]).preprocess()
    with pytest.raises(Exception, match="does not exist"):
        PythonPreprocessor(input_files=["missing.py"]).preprocess()


def test_default_preprocessor_outside_a_kernel() -> None:
    assert default_preprocessor() == "python"


def test_local_deployer_runs_the_context(
    notebook: Path, tmp_path: Path, python_bases: PythonBases, cache_dir: Path
) -> None:
    from ocibuild.config import Config
    from ocibuild.pipeline.deployers import LocalRun

    config = Config()
    config.set_preprocessor("notebook", notebook_file=notebook)
    config.set_builder(
        "append", base_image=python_bases.local, to=f"oci:{tmp_path}/o:1", cache_dir=cache_dir
    )
    config.set_deployer("local", stream_log=False)
    result = config.run()
    assert isinstance(result.handle, LocalRun)
    assert result.handle.returncode == 0
    assert result.handle.output == "sum 6\n1\n2\n3\nruntime 1\n"
    assert not result.handle.directory.exists()  # cleaned up
    preprocessor, builder, _ = result  # Fairing's run() returned this tuple
    assert isinstance(preprocessor, NotebookPreprocessor)
    assert builder.image_tag == result.image
