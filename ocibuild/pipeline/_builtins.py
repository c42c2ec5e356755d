"""ocibuild's own preprocessors, builders and deployers, provided through the plugin hooks.

Registered directly by :class:`ocibuild.plugins.Plugins` (not through an entry point), so
``OCIBUILD_DISABLE_PLUGIN_AUTOLOAD`` never removes them. Imports happen inside the hooks, so
loading the plugin manager does not import the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._hookspecs import BuilderFactory, DeployerFactory, PreprocessorFactory, hookimpl

__all__ = ["ocibuild_builders", "ocibuild_deployers", "ocibuild_preprocessors"]


@hookimpl
def ocibuild_preprocessors() -> Mapping[str, PreprocessorFactory]:
    """``python``, ``notebook``, ``full_notebook``, ``function``."""
    from .preprocessors import (
        FullNotebookPreprocessor,
        FunctionPreprocessor,
        NotebookPreprocessor,
        PythonPreprocessor,
    )

    return {
        "python": PythonPreprocessor,
        "notebook": NotebookPreprocessor,
        "full_notebook": FullNotebookPreprocessor,
        "function": FunctionPreprocessor,
    }


@hookimpl
def ocibuild_builders() -> Mapping[str, BuilderFactory]:
    """``append``."""
    from .builders import AppendBuilder

    return {"append": AppendBuilder}


@hookimpl
def ocibuild_deployers() -> Mapping[str, DeployerFactory]:
    """``job`` (needs a cluster; see :mod:`ocibuild.deployers.job`) and ``local``."""
    from .deployers import Job, LocalDeployer

    return {"job": Job, "local": LocalDeployer}
