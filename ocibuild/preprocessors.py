"""Preprocessors: turn a target (files, a notebook, a function) into a :class:`BuildContext`.

Built-in names: ``python``, ``notebook``, ``full_notebook``, ``function``.
"""

from ._public import publish
from .pipeline.preprocessors import (
    DEFAULT_DEST_PREFIX,
    RUNTIME_DIR,
    RUNTIME_ENV,
    SITE_PACKAGES,
    BasePreProcessor,
    BuildContext,
    ContextFile,
    ConvertNotebookPreprocessor,
    FullNotebookPreProcessor,
    FullNotebookPreprocessor,
    FunctionPreProcessor,
    FunctionPreprocessor,
    NotebookPreprocessor,
    Preprocessor,
    PythonPreprocessor,
    default_preprocessor,
    in_notebook_kernel,
)

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

publish(__name__, globals(), __all__)
