"""The ``function`` preprocessor: a callable pickled with cloudpickle, called by a small runner."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._context import DEFAULT_DEST_PREFIX, BuildContext, ContextFile, in_image
from .._errors import PipelineError
from .._runtime.function import kind_of
from ._shipped import cloudpickle_files, runtime_files
from ._workdir import PathLike, WorkdirPreprocessor

__all__ = ["FunctionPreProcessor", "FunctionPreprocessor", "SERIALIZED_FN_FILE", "local_python"]

SERIALIZED_FN_FILE = "pickled_fn.p"  # Fairing's name
RUNNER = ("python", "-m", "ocibuild._runtime.function")


def local_python() -> str:
    """This interpreter's ``X.Y``."""
    return "{}.{}".format(*sys.version_info[:2])


class FunctionPreprocessor(WorkdirPreprocessor):
    """Fairing's ``FunctionPreProcessor``: ``function_obj`` runs in the image.

    A function is called with no arguments; a class with a ``train`` method is instantiated
    and trained. The object is pickled with cloudpickle (the ``function`` extra), and the local
    cloudpickle is shipped with it. Pickles only load on the same Python minor version: the
    builder compares it with the base image's ``PYTHON_VERSION`` and the runner checks again.
    """

    def __init__(
        self,
        function_obj: Callable[..., Any],
        path_prefix: str = DEFAULT_DEST_PREFIX,
        output_map: Mapping[PathLike, str] | None = None,
        input_files: Sequence[PathLike] | None = None,
        *,
        requirements: Any = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if kind_of(function_obj) == "unsupported":
            raise PipelineError(
                f"the function preprocessor needs a function or a class with train(), "
                f"got {type(function_obj).__name__}"
            )
        self.function_obj = function_obj
        self._set_inputs(input_files, path_prefix, output_map, requirements, env)

    def get_command(self) -> list[str]:
        """The runner, with Fairing's flags."""
        return [
            *RUNNER,
            "--serialized_fn_file",
            SERIALIZED_FN_FILE,
            "--python_version",
            local_python(),
        ]

    def preprocess(self) -> BuildContext:
        """Pickle the function and collect the files."""
        try:
            import cloudpickle
        except ImportError as err:
            raise PipelineError(
                "the function preprocessor needs cloudpickle: pip install 'ocibuild[function]'"
            ) from err
        try:
            payload = cloudpickle.dumps(self.function_obj)
        except Exception as err:  # pickling runs user code (__reduce__): report, don't crash
            raise PipelineError(
                f"cannot pickle {getattr(self.function_obj, '__name__', self.function_obj)!r}: "
                f"{type(err).__name__}: {err}"
            ) from err
        return self._context(
            {**runtime_files(), **cloudpickle_files()},
            generated={in_image(self.path_prefix, SERIALIZED_FN_FILE): ContextFile(payload, 0o644)},
            python_version=local_python(),
        )


# Fairing's name for the same preprocessor.
FunctionPreProcessor = FunctionPreprocessor
