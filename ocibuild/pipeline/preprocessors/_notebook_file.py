"""Reading notebooks as plain JSON (nbformat 4), and turning their code cells into a script."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .._errors import PipelineError
from .._runtime.notebook import cell_source, strip_magics
from ._kernel import in_notebook_kernel, notebook_path

__all__ = ["notebook_to_script", "read_notebook", "resolve_notebook"]

_log = logging.getLogger("ocibuild.preprocessors")


def resolve_notebook(notebook_file: str | os.PathLike[str] | None) -> Path:
    """The notebook to use: the one given, else the running kernel's."""
    if notebook_file is not None:
        return Path(notebook_file)
    if in_notebook_kernel():
        return notebook_path()
    raise PipelineError("no notebook: pass notebook_file='path/to/notebook.ipynb'")


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook's JSON; clear errors for a missing file, bad JSON, or nbformat < 4."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise PipelineError(f"notebook {path} does not exist") from err
    except OSError as err:
        raise PipelineError(f"cannot read notebook {path}: {err.strerror}") from err
    except ValueError as err:
        raise PipelineError(f"{path} is not a notebook (invalid JSON: {err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise PipelineError(f"{path} is not an nbformat 4 notebook (no 'cells' list)")
    if int(data.get("nbformat", 0)) < 4:
        raise PipelineError(f"{path} is nbformat {data.get('nbformat')}: save it as nbformat 4")
    return data


def notebook_to_script(path: Path) -> str:
    """The code cells as one script; magics and shell escapes dropped with a warning."""
    notebook = read_notebook(path)
    parts = [f"# Converted from {path.name} by ocibuild: the code cells, in order.\n"]
    dropped = 0
    for number, cell in enumerate(notebook["cells"], start=1):
        if cell.get("cell_type") != "code":
            continue
        source, n = strip_magics(cell_source(cell))
        dropped += n
        parts.append(f"\n# In[{number}]:\n{source}\n")
    if dropped:
        _log.warning(
            "%s: %d IPython magic/shell escape line(s) dropped from the script", path.name, dropped
        )
    return "".join(parts)
