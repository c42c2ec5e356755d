"""Preprocessors: turn a target (files, a notebook, a function) into a :class:`BuildContext`.

Built-in names (registered through the plugin hooks like any plugin's): ``python``,
``notebook``, ``full_notebook``, ``function``. :func:`default_preprocessor` picks ``notebook``
inside a notebook kernel and ``python`` elsewhere.
"""

from __future__ import annotations

from .._context import (
    DEFAULT_DEST_PREFIX,
    RUNTIME_DIR,
    RUNTIME_ENV,
    SITE_PACKAGES,
    BuildContext,
    ContextFile,
)
from .._protocols import Preprocessor
from ._kernel import in_notebook_kernel
from .full_notebook import FullNotebookPreProcessor, FullNotebookPreprocessor
from .function import FunctionPreProcessor, FunctionPreprocessor
from .notebook import ConvertNotebookPreprocessor, NotebookPreprocessor
from .python import BasePreProcessor, PythonPreprocessor

__all__ = [
    "DEFAULT_DEST_PREFIX",
    "RUNTIME_DIR",
    "RUNTIME_ENV",
    "SITE_PACKAGES",
    "BasePreProcessor",
    "BuildContext",
    "ContextFile",
    "ConvertNotebookPreprocessor",
    "FullNotebookPreProcessor",
    "FullNotebookPreprocessor",
    "FunctionPreProcessor",
    "FunctionPreprocessor",
    "NotebookPreprocessor",
    "Preprocessor",
    "PythonPreprocessor",
    "default_preprocessor",
    "in_notebook_kernel",
]


def default_preprocessor() -> str:
    """``"notebook"`` when called inside a Jupyter/IPython notebook kernel, else ``"python"``."""
    return "notebook" if in_notebook_kernel() else "python"
