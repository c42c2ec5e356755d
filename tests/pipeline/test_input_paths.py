"""Input files with ``..`` after a symlink name the file the kernel opens, in the context and
in the layer built from it (the lexical reading names another, existing file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.layer import LayerOptions
from ocibuild.pipeline._context import dest_for, input_path
from ocibuild.pipeline.builders._layers import code_layer
from ocibuild.preprocessors import PythonPreprocessor


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    proj = tmp_path / "proj"
    (proj / "real" / "x").mkdir(parents=True)
    (proj / "real" / "f.py").write_text("print('real')\n")
    (proj / "sub").mkdir()
    (proj / "sub" / "f.py").write_text("print('lexical')\n")
    (proj / "sub" / "link").symlink_to("../real/x")
    (tmp_path / "elsewhere" / "target").mkdir(parents=True)
    (tmp_path / "elsewhere" / "g.py").write_text("print('outside')\n")
    (proj / "out").symlink_to("../elsewhere/target")
    monkeypatch.chdir(proj)
    return proj


def test_dest_for_follows_the_link_before_dotdot(proj: Path) -> None:
    assert Path("sub/link/../f.py").read_text() == "print('real')\n"  # what open() reads
    assert input_path("sub/link/../f.py") == str(proj / "real" / "f.py")
    assert dest_for("sub/link/../f.py", "/app/") == "/app/real/f.py"
    assert dest_for("out/../g.py", "/app/") == "/app/g.py"  # outside the cwd: its name
    assert dest_for("sub/f.py", "/app/") == "/app/sub/f.py"  # no '..': the shape as given


def test_preprocessor_and_code_layer_take_the_kernels_file(proj: Path) -> None:
    inputs = ["sub/link/../f.py", "out/../g.py"]
    context = PythonPreprocessor(inputs, executable="out/../g.py").preprocess()
    assert Path(context.files["/app/real/f.py"].source).read_text() == "print('real')\n"  # type: ignore[arg-type]
    assert "/app/sub/f.py" not in context.files
    entries = {e.path: e for e in code_layer(context, LayerOptions(), None).entries}
    assert Path(entries["app/real/f.py"].source or "").read_text() == "print('real')\n"
    assert Path(entries["app/g.py"].source or "").read_text() == "print('outside')\n"


def test_executable_with_dotdot_after_a_link(proj: Path) -> None:
    pre = PythonPreprocessor(input_files=["sub/link/../f.py"], executable="sub/link/../f.py")
    assert pre.get_command() == ["python", "real/f.py"]
    assert len(pre.input_files) == 1  # the same file, however it was spelled
