"""Run a notebook's code cells top to bottom in one namespace and write the executed notebook.

Usage in the image: ``python -m ocibuild._runtime.notebook INPUT.ipynb OUTPUT.ipynb``.

What it does: every code cell runs in one shared ``__main__`` namespace, in order, with the
image's Python; IPython magics (``%...``, ``%%...`` cells) and shell escapes (``!...``) are
dropped; each cell's stdout and stderr are shown live and kept as ``stream`` outputs, the value
of a cell's last expression is kept as a ``text/plain`` result, and the first exception stops the
run, is kept as an ``error`` output and makes the exit status 1. The output notebook is rewritten
after every cell, so a failed or killed run still leaves what ran.

What it does not do: no Jupyter kernel, no rich outputs (``display()``, images, HTML: only text),
no widgets, no papermill parameters, no IPython features (``get_ipython()`` is not defined).
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import linecache
import os
import sys
import traceback
from typing import Any, TextIO

__all__ = ["MAGIC_REPLACEMENT", "cell_source", "main", "run_notebook", "strip_magics"]

MAGIC_REPLACEMENT = "pass  # ocibuild: IPython magic or shell escape dropped"


def cell_source(cell: dict[str, Any]) -> str:
    """The source of a cell as one string (notebooks store it as a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def strip_magics(source: str) -> tuple[str, int]:
    """``source`` without IPython magics and shell escapes, and how many lines were dropped.

    A cell magic (first line ``%%...``) drops the whole cell; a line magic or shell escape
    becomes ``pass`` at the same indentation, so an indented block stays valid Python.
    """
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return "", len(lines)
    kept: list[str] = []
    dropped = 0
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            kept.append(line[: len(line) - len(stripped)] + MAGIC_REPLACEMENT)
            dropped += 1
        else:
            kept.append(line)
    return "\n".join(kept), dropped


def load_notebook(path: str) -> dict[str, Any]:
    """Read a notebook file (nbformat 4) as JSON."""
    with open(path, encoding="utf-8") as f:
        notebook = json.load(f)
    if not isinstance(notebook, dict) or int(notebook.get("nbformat", 0)) < 4:
        raise ValueError(f"{path} is not an nbformat 4 notebook")
    return notebook


class _Tee(io.TextIOBase):
    """Writes to the real stream and keeps a copy for the cell's outputs."""

    def __init__(self, real: TextIO, name: str) -> None:
        self.real = real
        self.stream_name = name
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.real.write(text)
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def output(self) -> dict[str, Any] | None:
        text = "".join(self.parts)
        return {"output_type": "stream", "name": self.stream_name, "text": text} if text else None


def _execute(source: str, filename: str, namespace: dict[str, Any]) -> Any:
    """Run a cell; return the value of its last expression (``None`` when it has none)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tree = ast.parse(source, filename, "exec")
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):  # shown like Jupyter's Out[n]
        tree.body.pop()
        last = ast.Expression(final.value)
    exec(compile(tree, filename, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(last, filename, "eval"), namespace)


def _error_output(err: BaseException) -> dict[str, Any]:
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    return {
        "output_type": "error",
        "ename": type(err).__name__,
        "evalue": str(err),
        "traceback": [line.rstrip("\n") for line in lines],
    }


def _write(notebook: dict[str, Any], path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(notebook, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def run_notebook(input_path: str, output_path: str) -> int:
    """Execute ``input_path`` and write the executed notebook; return 0, or 1 after an error."""
    notebook = load_notebook(input_path)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    meta = notebook.setdefault("metadata", {})
    meta["ocibuild"] = {"runner": "ocibuild._runtime.notebook", "status": "running"}
    count = 0
    status = 0
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        count += 1
        cell["execution_count"] = count
        outputs: list[dict[str, Any]] = []
        cell["outputs"] = outputs
        source, dropped = strip_magics(cell_source(cell))
        if dropped:
            print(
                f"[ocibuild] cell {index}: {dropped} magic/shell line(s) dropped", file=sys.stderr
            )
        out, err = _Tee(sys.stdout, "stdout"), _Tee(sys.stderr, "stderr")
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        failure: Exception | None = None
        value: Any = None
        try:
            value = _execute(source, f"<cell {index}>", namespace)
        except Exception as exc:  # the notebook's own error: record it like Jupyter does
            failure = exc
        finally:
            sys.stdout, sys.stderr = saved
        outputs.extend(o for o in (out.output(), err.output()) if o is not None)
        if value is not None:
            outputs.append(
                {
                    "output_type": "execute_result",
                    "execution_count": count,
                    "data": {"text/plain": repr(value)},
                    "metadata": {},
                }
            )
        if failure is not None:
            outputs.append(_error_output(failure))
            traceback.print_exception(type(failure), failure, failure.__traceback__)
            status = 1
            break
        _write(notebook, output_path)
    meta["ocibuild"]["status"] = "failed" if status else "completed"
    _write(notebook, output_path)
    return status


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``INPUT.ipynb OUTPUT.ipynb``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(
            "usage: python -m ocibuild._runtime.notebook INPUT.ipynb OUTPUT.ipynb", file=sys.stderr
        )
        return 2
    return run_notebook(args[0], args[1])


if __name__ == "__main__":
    sys.exit(main())
