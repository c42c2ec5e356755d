"""The ``python`` preprocessor: files and directories under a work dir, run as ``python FILE``."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import PipelineError, SourceError
from ._context import DEFAULT_DEST_PREFIX, BuildContext, ContextFile, dest_for, host_files, in_image
from ._shipped import runtime_files

if TYPE_CHECKING:
    from .._deps import Requirements

__all__ = ["BasePreProcessor", "PythonPreprocessor", "output_files", "resolve_requirements"]

PathLike = str | os.PathLike[str]


class PythonPreprocessor:
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
        self.input_files = [os.path.normpath(f) for f in input_files or ()]
        self.executable = os.path.normpath(executable) if executable is not None else None
        if self.executable is not None and self.executable not in self.input_files:
            self.input_files.append(self.executable)
        self.command_given = command is not None
        self.command = list(command) if command is not None else ["python"]
        self.path_prefix = path_prefix
        self.output_map = dict(output_map or {})
        self.requirements = requirements
        self.env = dict(env or {})
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

    @property
    def workdir(self) -> str:
        """The in-image work dir (``path_prefix`` without its trailing slash)."""
        return in_image(self.path_prefix, ".")

    def get_command(self) -> list[str]:
        """The command, with the executable relative to the work dir."""
        if self.executable is None:
            if not self.command_given:
                raise PipelineError(
                    "no executable: pass executable='train.py' (or one .py input file), "
                    "or a full command=[...]"
                )
            return list(self.command)
        exe = dest_for(self.executable, self.path_prefix)
        return [*self.command, posixpath.relpath(exe, self.workdir)]

    def preprocess(self) -> BuildContext:
        """Collect the files and the command."""
        files = runtime_files()
        user = host_files(self.input_files, self.path_prefix)
        files.update(user)
        files.update(output_files(self.output_map, self.path_prefix))
        requirements = resolve_requirements(self.requirements, user, self.workdir)
        return BuildContext(
            files=files,
            command=tuple(self.get_command()),
            workdir=self.workdir,
            env=self.env,
            requirements=requirements,
        )


# Fairing's name for the same preprocessor.
BasePreProcessor = PythonPreprocessor


def output_files(output_map: Mapping[PathLike, str], prefix: str) -> dict[str, ContextFile]:
    """Fairing's ``output_map``: host path -> in-image path (relative ones under ``prefix``)."""
    out: dict[str, ContextFile] = {}
    for src, dst in output_map.items():
        host = Path(src)
        if not host.exists():
            raise SourceError(f"output_map source '{os.fspath(src)}' does not exist")
        out[in_image(prefix, str(dst))] = ContextFile(host.absolute())
    return out


def resolve_requirements(
    given: Any, files: Mapping[str, ContextFile], workdir: str
) -> Requirements | None:
    """The requirements given, else a ``requirements.txt`` at the top of the work dir, else None."""
    from .._deps import Requirements

    if given is not None:
        return Requirements.coerce(given)
    found = files.get(f"{workdir}/requirements.txt")
    if found is not None and isinstance(found.source, Path) and found.source.is_file():
        return Requirements.from_file(found.source)
    return None
