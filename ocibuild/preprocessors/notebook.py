"""The ``notebook`` preprocessor: a notebook's code cells converted to a script and run."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from ._context import DEFAULT_DEST_PREFIX, BuildContext, ContextFile, host_files, in_image
from ._notebook_file import notebook_to_script, resolve_notebook
from ._shipped import runtime_files
from .python import PathLike, output_files, resolve_requirements

__all__ = ["ConvertNotebookPreprocessor", "NotebookPreprocessor"]


class NotebookPreprocessor:
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
        self.path_prefix = path_prefix
        self.output_map = dict(output_map or {})
        self.overwrite = overwrite
        self.input_files = [os.path.normpath(f) for f in input_files or ()]
        self.requirements = requirements
        self.env = dict(env or {})

    @property
    def workdir(self) -> str:
        """The in-image work dir."""
        return in_image(self.path_prefix, ".")

    def get_command(self) -> list[str]:
        """``python <notebook>.py``, relative to the work dir."""
        script = in_image(self.path_prefix, self.executable)
        return [*self.command, posixpath.relpath(script, self.workdir)]

    def preprocess(self) -> BuildContext:
        """Convert the notebook and collect the files."""
        script = notebook_to_script(self.notebook_file).encode("utf-8")
        files = runtime_files()
        user = host_files(self.input_files, self.path_prefix)
        files.update(user)
        files.update(output_files(self.output_map, self.path_prefix))
        files[in_image(self.path_prefix, self.executable)] = ContextFile(script, 0o644)
        return BuildContext(
            files=files,
            command=tuple(self.get_command()),
            workdir=self.workdir,
            env=self.env,
            requirements=resolve_requirements(self.requirements, user, self.workdir),
        )


# Fairing's name for the same preprocessor.
ConvertNotebookPreprocessor = NotebookPreprocessor
