"""The ``python`` preprocessor: files and directories under a work dir, run as ``python FILE``."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._context import DEFAULT_DEST_PREFIX, BuildContext, dest_for, input_path
from .._errors import PipelineError
from ._shipped import runtime_files
from ._workdir import PathLike, WorkdirPreprocessor, output_files, resolve_requirements

__all__ = ["BasePreProcessor", "PythonPreprocessor", "output_files", "resolve_requirements"]


class PythonPreprocessor(WorkdirPreprocessor):
    """Fairing's ``BasePreProcessor``: input files under ``path_prefix``, run with ``command``.

    ``executable`` is added to the input files; when it is not given, the only input file (or
    the only top-level ``.py`` file of the only input directory), or else the only ``.py``
    input file, is the executable. The command is ``command`` (default
    ``["python"]``) followed by the executable's path relative to the work dir ``path_prefix``.
    ``output_map`` maps more host files to in-image paths (relative ones go under the work dir).
    ``requirements`` (a requirements file, a list, or a ``pyproject.toml``) become a dependency
    layer; without it a ``requirements.txt`` among the input files is used, as Fairing's docker
    builder did.
    """

    def __init__(
        self,
        input_files: Sequence[PathLike] | None = None,
        command: Sequence[str] | None = None,
        executable: PathLike | None = None,
        path_prefix: str = DEFAULT_DEST_PREFIX,
        output_map: Mapping[PathLike, str] | None = None,
        *,
        requirements: Any = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._set_inputs(input_files, path_prefix, output_map, requirements, env)
        self.executable = input_path(executable) if executable is not None else None
        if self.executable is not None and self.executable not in self.input_files:
            self.input_files.append(self.executable)
        self.command_given = command is not None
        self.command = list(command) if command is not None else ["python"]
        if self.executable is None:
            self.executable = self._default_executable()

    def _default_executable(self) -> str | None:
        if len(self.input_files) == 1:
            only = self.input_files[0]
            if not os.path.isdir(only):
                return only
            # A single directory: its only top-level script, if it has exactly one.
            scripts = sorted(p.name for p in Path(only).glob("*.py") if p.name != "__init__.py")
            return os.path.join(only, scripts[0]) if len(scripts) == 1 else None
        python = [
            f
            for f in self.input_files
            if f.endswith(".py") and os.path.basename(f) != "__init__.py"
        ]
        return python[0] if len(python) == 1 else None

    def get_command(self) -> list[str]:
        """The command, with the executable relative to the work dir."""
        if self.executable is None:
            if not self.command_given:
                raise PipelineError(
                    "no executable: pass executable='train.py' (or one .py input file), "
                    "or a full command=[...]",
                    cli="no script to run: give --executable FILE (the .py file TARGET runs), "
                    "or a TARGET with a single .py script",
                )
            return list(self.command)
        exe = dest_for(self.executable, self.path_prefix)
        return [*self.command, posixpath.relpath(exe, self.workdir)]

    def preprocess(self) -> BuildContext:
        """Collect the files and the command."""
        return self._context(runtime_files())


# Fairing's name for the same preprocessor.
BasePreProcessor = PythonPreprocessor
