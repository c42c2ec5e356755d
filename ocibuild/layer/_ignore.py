""".dockerignore rules: which paths of a directory source to leave out of a layer.

The semantics are Docker's, so an existing ``.dockerignore`` means the same thing here:

- one pattern per line; blank lines and lines starting with ``#`` are skipped;
- paths are relative to the source root, ``/``-separated; a leading ``/`` is dropped and the
  pattern is cleaned (``a/./b/`` is ``a/b/``);
- ``*`` matches within one path component, ``?`` one character, ``[...]`` a class, ``\\``
  escapes, and ``**`` any number of components (``**/x`` matches ``x`` at every depth, while a
  bare ``*.pyc`` matches only at the root, as in Docker);
- a pattern that matches a directory also matches everything below it;
- ``!pattern`` re-includes what an earlier pattern excluded; the last matching pattern wins.

One deliberate addition: a pattern ending in ``/`` (``build/``) matches directories only, the
way ``.gitignore`` reads it (Docker cleans the slash away and would also match a file).
Matching takes time linear in the path, as Docker's does (see :mod:`._glob`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import SourceError

if TYPE_CHECKING:
    from ._glob import Glob

__all__ = ["IgnoreRules"]

_BOM = "\ufeff"


@dataclass(frozen=True)
class _Pattern:
    """One cleaned pattern and the glob it compiles to."""

    text: str
    negated: bool
    dir_only: bool
    glob: Glob
    parts: tuple[Glob | None, ...]  # per '/'-separated part, for prefix checks; None for '**'


@dataclass(frozen=True)
class IgnoreRules:
    """An ordered list of ignore patterns; the last one that matches a path decides."""

    patterns: tuple[_Pattern, ...] = ()

    @classmethod
    def parse(cls, lines: Iterable[str]) -> IgnoreRules:
        """Rules from pattern lines (the lines of an ignore file or ``--exclude`` values)."""
        patterns = []
        for line in lines:
            pattern = _parse_line(line)
            if pattern is not None:
                patterns.append(pattern)
        return cls(tuple(patterns))

    @classmethod
    def from_file(cls, path: str | Path) -> IgnoreRules:
        """Rules read from an ignore file such as ``.dockerignore``."""
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as err:
            raise SourceError(f"cannot read ignore file '{path}': {err}") from err
        return cls.parse(text.removeprefix(_BOM).splitlines())

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        """These rules followed by ``other`` (whose patterns then take precedence)."""
        return IgnoreRules(self.patterns + other.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, relpath: str, is_dir: bool) -> bool:
        """Whether ``relpath`` (relative to the source root) is excluded."""
        parts = relpath.strip("/").split("/")
        index = -1
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            index = self.match_index(prefix, is_dir or depth < len(parts), index)
        return self.excludes(index)

    def match_index(self, relpath: str, is_dir: bool, inherited: int = -1) -> int:
        """The index of the deciding pattern for ``relpath``, given its parent's (``inherited``).

        A pattern matching a directory matches everything below it, so a path is decided by the
        later of its own last match and its parent's. -1 means no pattern matched.
        """
        patterns = self.patterns
        for index in range(len(patterns) - 1, inherited, -1):
            pattern = patterns[index]
            if (is_dir or not pattern.dir_only) and pattern.glob.matches(relpath):
                return index
        return inherited

    def excludes(self, index: int) -> bool:
        """Whether the pattern at ``index`` (from :meth:`match_index`) excludes its path."""
        return index >= 0 and not self.patterns[index].negated

    def may_reinclude_under(self, dir_relpath: str, index: int) -> bool:
        """Whether a ``!`` pattern after ``index`` could re-include something inside the dir.

        Used to prune excluded directories: when this is False nothing below can come back.
        """
        dir_parts = dir_relpath.split("/")
        return any(
            p.negated and _could_match_below(p.parts, dir_parts) for p in self.patterns[index + 1 :]
        )


def _parse_line(line: str) -> _Pattern | None:
    """Clean one line the way Docker does; None for blanks and comments."""
    if line.startswith("#"):
        return None
    text = line.strip()
    if not text:
        return None
    negated = text.startswith("!")
    if negated:
        text = text[1:].strip()
    dir_only = text.endswith("/")
    text = posixpath.normpath(text).lstrip("/") if text else text
    if text in ("", "."):
        # "/" or "." would exclude the whole source; Docker ignores such patterns too.
        return None
    from ._glob import Glob  # only builds that have patterns pay for the matcher

    parts = tuple(None if "**" in part else Glob(part) for part in text.split("/"))
    return _Pattern(text, negated, dir_only, Glob(text), parts)


def _could_match_below(parts: tuple[Glob | None, ...], dir_parts: list[str]) -> bool:
    """Whether a pattern (split at '/') could match some path inside the directory."""
    for depth, part in enumerate(parts):
        if part is None:
            return True
        if depth == len(dir_parts):
            return True  # the pattern continues below the directory
        if not part.fullmatch(dir_parts[depth]):
            return False
    # The pattern matches the directory itself or one of its ancestors, hence all of its contents.
    return True
