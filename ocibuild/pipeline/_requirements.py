"""What a build context asks to install: requirement lines, from a file, a list or a pyproject."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import DependencyError

__all__ = ["Requirements"]

_INCLUDE = re.compile(r"^\s*(-r|--requirement|-c|--constraint)\s*=?\s*(\S+)")


@dataclass(frozen=True)
class Requirements:
    """Requirement lines, and the file pip should read them from when there is one."""

    lines: tuple[str, ...]
    origin: str  # for messages: a path, or "a list"
    path: Path | None = None  # a requirements file (its -r/-c includes are relative to it)

    @classmethod
    def coerce(cls, value: Any) -> Requirements:
        """A requirements file, a ``pyproject.toml``, a list of requirement strings, or as is."""
        if isinstance(value, Requirements):
            return value
        if isinstance(value, (str, os.PathLike)):
            path = Path(value)
            if path.name == "pyproject.toml":
                return cls.from_pyproject(path)
            return cls.from_file(path)
        if isinstance(value, Iterable):
            items = list(value)
            if all(isinstance(item, str) for item in items):
                return cls(tuple(item.strip() for item in items if item.strip()), "a list")
        raise DependencyError(
            "requirements must be a file path, a pyproject.toml or a list of strings, "
            f"got {value!r}"
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Requirements:
        """A pip requirements file."""
        file = Path(path).absolute()
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as err:
            raise DependencyError(f"cannot read requirements file {file}: {err.strerror}") from err
        return cls(tuple(text.splitlines()), str(file), file)

    @classmethod
    def from_pyproject(cls, path: str | os.PathLike[str]) -> Requirements:
        """The ``[project] dependencies`` of a ``pyproject.toml``."""
        file = Path(path).absolute()
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            try:
                import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
            except ImportError as err:
                raise DependencyError(
                    "reading pyproject.toml needs Python 3.11 or the tomli package"
                ) from err
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as err:
            raise DependencyError(f"cannot read {file}: {err.strerror}") from err
        except ValueError as err:
            raise DependencyError(f"{file} is not valid TOML: {err}") from err
        deps = data.get("project", {}).get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise DependencyError(f"{file}: [project] dependencies must be a list of strings")
        return cls(tuple(deps), str(file))

    def fingerprint_text(self) -> str:
        """The text that decides what pip installs: the lines plus any included files."""
        parts = list(self.lines)
        if self.path is not None:
            parts += _included(self.path, self.lines, seen={self.path})
        return "\n".join(parts)

    def is_empty(self) -> bool:
        """Whether nothing would be installed (only blanks and comments)."""
        return not any(line.strip() and not line.strip().startswith("#") for line in self.lines)


def _included(base: Path, lines: Sequence[str], seen: set[Path]) -> list[str]:
    out: list[str] = []
    for line in lines:
        match = _INCLUDE.match(line)
        if not match:
            continue
        child = (base.parent / match.group(2)).resolve()
        if child in seen or not child.is_file():
            continue
        seen.add(child)
        child_lines = child.read_text(encoding="utf-8").splitlines()
        out += [f"# {match.group(2)}", *child_lines, *_included(child, child_lines, seen)]
    return out
