"""The runtime files every built image carries under ``/opt/ocibuild/runtime``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .._context import RUNTIME_DIR, ContextFile
from .._errors import PipelineError

__all__ = ["cloudpickle_files", "runtime_files"]

_RUNTIME_SRC = Path(__file__).resolve().parent.parent / "_runtime"
# source in this package -> path under RUNTIME_DIR
_SHIPPED = {
    "shim/__init__.py": "ocibuild/__init__.py",
    "shim/config.py": "ocibuild/config.py",
    "__init__.py": "ocibuild/_runtime/__init__.py",
    "notebook.py": "ocibuild/_runtime/notebook.py",
    "function.py": "ocibuild/_runtime/function.py",
}


def runtime_files() -> dict[str, ContextFile]:
    """The ``ocibuild`` stand-in and the runners, at their in-image paths."""
    return {
        f"{RUNTIME_DIR}/{dest}": ContextFile(_RUNTIME_SRC / src, 0o644)
        for src, dest in _SHIPPED.items()
    }


def cloudpickle_files() -> dict[str, ContextFile]:
    """The local cloudpickle package, so the image unpickles with the version that pickled."""
    spec = importlib.util.find_spec("cloudpickle")
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError(
            "the function preprocessor needs cloudpickle: pip install 'ocibuild[function]'"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    return {
        f"{RUNTIME_DIR}/cloudpickle/{path.name}": ContextFile(path, 0o644)
        for path in sorted(package.glob("*.py"))
    }
