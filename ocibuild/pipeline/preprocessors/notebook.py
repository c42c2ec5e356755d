"""The ``notebook`` preprocessor: a notebook's code cells converted to a script and run."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from .._context import DEFAULT_DEST_PREFIX, BuildContext, ContextFile, in_image
from ._notebook_file import notebook_to_script, resolve_notebook
from ._shipped import runtime_files
from ._workdir import PathLike, WorkdirPreprocessor

__all__ = ["ConvertNotebookPreprocessor", "NotebookPreprocessor"]


class NotebookPreprocessor(WorkdirPreprocessor):
    """Fairing's ``ConvertNotebookPreprocessor``: the code cells become ``<notebook>.py``.

    IPython magics and shell escapes are dropped (each line becomes ``pass``) with a warning.
    The script is made in memory: unlike Fairing nothing is written next to the notebook, so
    ``overwrite`` is accepted and ignored. ``executable`` names the script in the image.
    """

    def __init__(
        self,
        notebook_file: PathLike | None = None,
        executable: str | None = None,
        command: Sequence[str] | None = None,
        path_prefix: str = DEFAULT_DEST_PREFIX,
        output_map: Mapping[PathLike, str] | None = None,
        overwrite: bool = True,
        input_files: Sequence[PathLike] | None = None,
        *,
        requirements: Any = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.notebook_file = resolve_notebook(notebook_file)
        self.executable = executable or self.notebook_file.with_suffix(".py").name
        self.command = list(command) if command is not None else ["python"]
        self.overwrite = overwrite
        self._set_inputs(input_files, path_prefix, output_map, requirements, env)

    def get_command(self) -> list[str]:
        """``python <notebook>.py``, relative to the work dir."""
        script = in_image(self.path_prefix, self.executable)
        return [*self.command, posixpath.relpath(script, self.workdir)]

    def preprocess(self) -> BuildContext:
        """Convert the notebook and collect the files."""
        script = notebook_to_script(self.notebook_file).encode("utf-8")
        generated = {in_image(self.path_prefix, self.executable): ContextFile(script, 0o644)}
        return self._context(runtime_files(), generated=generated)


# Fairing's name for the same preprocessor.
ConvertNotebookPreprocessor = NotebookPreprocessor
