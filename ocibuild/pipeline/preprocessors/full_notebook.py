"""The ``full_notebook`` preprocessor: the whole notebook executed in the image, output kept."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from .._context import DEFAULT_DEST_PREFIX, BuildContext, ContextFile, dest_for
from ._notebook_file import read_notebook, resolve_notebook
from ._shipped import runtime_files
from ._workdir import PathLike, WorkdirPreprocessor

__all__ = ["FullNotebookPreProcessor", "FullNotebookPreprocessor"]

RUNNER = ("python", "-m", "ocibuild._runtime.notebook")


class FullNotebookPreprocessor(WorkdirPreprocessor):
    """Fairing's ``FullNotebookPreProcessor``, without papermill or Jupyter in the image.

    The notebook is copied under the work dir and the command runs ocibuild's small notebook
    runner, which writes the executed notebook to ``output_file`` in the work dir: its code
    cells run top to bottom in one namespace with the image's Python, IPython magics and shell
    escapes dropped, text outputs kept, the first exception stopping the run (exit status 1);
    no Jupyter kernel, rich outputs, widgets or papermill parameters. A ``command`` replaces
    the runner.
    """

    def __init__(
        self,
        notebook_file: PathLike | None = None,
        output_file: str = "fairing_output_notebook.ipynb",
        input_files: Sequence[PathLike] | None = None,
        command: Sequence[str] | None = None,
        path_prefix: str = DEFAULT_DEST_PREFIX,
        output_map: Mapping[PathLike, str] | None = None,
        *,
        requirements: Any = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.notebook_file = resolve_notebook(notebook_file)
        self.output_file = output_file
        self.command = list(command) if command is not None else None
        self._set_inputs(input_files, path_prefix, output_map, requirements, env)

    @property
    def notebook_in_image(self) -> str:
        """Where the notebook goes, relative paths kept as with input files."""
        return dest_for(self.notebook_file, self.path_prefix)

    def get_command(self) -> list[str]:
        """The runner with the notebook and output paths relative to the work dir."""
        if self.command is not None:
            return list(self.command)
        notebook = posixpath.relpath(self.notebook_in_image, self.workdir)
        return [*RUNNER, notebook, self.output_file]

    def preprocess(self) -> BuildContext:
        """Check the notebook parses, and collect the files."""
        read_notebook(self.notebook_file)
        notebook = {self.notebook_in_image: ContextFile(self.notebook_file.absolute())}
        return self._context(runtime_files(), more_inputs=notebook)


# Fairing's name for the same preprocessor.
FullNotebookPreProcessor = FullNotebookPreprocessor
