"""What the built-in preprocessors share: Fairing's input files, ``output_map``, ``path_prefix``,
``requirements`` and ``env``, and the :class:`BuildContext` made of them."""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._errors import SourceError
from .._context import BuildContext, ContextFile, host_files, in_image, input_path

if TYPE_CHECKING:
    from .._requirements import Requirements

__all__ = ["PathLike", "WorkdirPreprocessor", "output_files", "resolve_requirements"]

PathLike = str | os.PathLike[str]


class WorkdirPreprocessor(abc.ABC):
    """A preprocessor whose files go under the work dir ``path_prefix``; subclasses add the rest.

    A subclass calls :meth:`_set_inputs` in its ``__init__``, defines :meth:`get_command`, and
    builds its context with :meth:`_context`.
    """

    input_files: list[str]
    path_prefix: str
    output_map: dict[PathLike, str]
    requirements: Any
    env: dict[str, str]

    def _set_inputs(
        self,
        input_files: Sequence[PathLike] | None,
        path_prefix: str,
        output_map: Mapping[PathLike, str] | None,
        requirements: Any,
        env: Mapping[str, str] | None,
    ) -> None:
        self.input_files = [input_path(f) for f in input_files or ()]
        self.path_prefix = path_prefix
        self.output_map = dict(output_map or {})
        self.requirements = requirements
        self.env = dict(env or {})

    @property
    def workdir(self) -> str:
        """The in-image work dir (``path_prefix`` without its trailing slash)."""
        return in_image(self.path_prefix, ".")

    @abc.abstractmethod
    def get_command(self) -> list[str]:
        """The command the image runs."""

    def _context(
        self,
        runtime: Mapping[str, ContextFile],
        *,
        more_inputs: Mapping[str, ContextFile] | None = None,
        generated: Mapping[str, ContextFile] | None = None,
        python_version: str | None = None,
    ) -> BuildContext:
        """``runtime`` files, the input files and ``more_inputs``, output_map, then ``generated``.

        Later files win at the same path; a ``requirements.txt`` among the inputs is the
        requirements when none were given.
        """
        files = dict(runtime)
        inputs = host_files(self.input_files, self.path_prefix)
        inputs.update(more_inputs or {})
        files.update(inputs)
        files.update(output_files(self.output_map, self.path_prefix))
        files.update(generated or {})
        requirements = resolve_requirements(self.requirements, inputs, self.workdir)
        return BuildContext(
            files=files,
            command=tuple(self.get_command()),
            workdir=self.workdir,
            env=self.env,
            requirements=requirements,
            python_version=python_version,
        )


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
    from .._requirements import Requirements

    if given is not None:
        return Requirements.coerce(given)
    found = files.get(f"{workdir}/requirements.txt")
    if found is not None and isinstance(found.source, Path) and found.source.is_file():
        return Requirements.from_file(found.source)
    return None
