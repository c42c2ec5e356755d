"""Ignore-pattern globs matched in time linear in the path, whatever the pattern.

A glob compiled to a backtracking regex (``[^/]*a[^/]*a...b``) can take minutes on one
60-character name; Docker's Go regexps never backtrack. Here a glob is a list of tokens read
as an automaton: the set of pattern positions a path prefix can have reached. Each distinct
set becomes a state the first time it is met and each (state, character) step is kept, so a
match costs one dictionary lookup per character. Two cheaper paths keep common patterns fast:
those without wildcards are compared as strings, and those whose regex cannot backtrack more
than linearly use it (see :func:`_regex_is_linear`).

Tokens: a literal character; ``?`` (one character but ``/``); a ``[...]`` class (never ``/``);
``*`` (a run without ``/``); ``**`` (any run); ``**/`` (nothing, or any run ending in ``/``),
which is two tokens: a fork that skips the group or enters it, then the run up to its ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import SourceError

__all__ = ["Glob"]

_MAX_STATES = 4096  # past this, steps are computed without being kept: still linear
_SKIPPABLE = frozenset({"star", "any"})  # tokens that may match nothing


@dataclass(frozen=True)
class _Token:
    kind: str  # "char" | "one" | "class" | "star" | "any" | "dirs" (a fork) | "inner"
    char: str = ""
    cls: re.Pattern[str] | None = None  # for a class: a one-character regex

    def takes(self, char: str) -> bool:
        """Whether this token consumes ``char`` and moves on (loops aside)."""
        if self.kind == "char":
            return char == self.char
        if char == "/":
            return self.kind == "inner"
        if self.kind == "one":
            return True
        return self.kind == "class" and self.cls is not None and self.cls.match(char) is not None

    def loops_on(self, char: str) -> bool:
        """Whether this token consumes ``char`` and stays."""
        return self.kind in ("any", "inner") or (self.kind == "star" and char != "/")


class Glob:
    """One Docker-style glob over '/'-separated paths, matched whole by :meth:`fullmatch`."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._tokens = _tokens(pattern)
        self._ids: dict[frozenset[int], int] = {}
        self._sets: list[frozenset[int]] = []
        self._steps: list[dict[str, int]] = []
        self._accepts: list[bool] = []
        self._dead = self._state(frozenset())
        self._start = self._state(self._closure({0}))
        # The matcher is a C function where one will do: it is called per path and pattern.
        self.matches: Callable[[str], object] = self._run
        if all(t.kind == "char" for t in self._tokens):
            self.matches = "".join(t.char for t in self._tokens).__eq__
        elif _regex_is_linear(self._tokens):
            self.matches = re.compile("".join(map(_regex, self._tokens)), re.DOTALL).fullmatch

    def fullmatch(self, text: str) -> bool:
        """Whether the glob matches all of ``text``."""
        return bool(self.matches(text))

    def _run(self, text: str) -> bool:
        """Run the automaton over ``text``, adding the states and steps it meets."""
        state, steps, dead = self._start, self._steps, self._dead
        for index, char in enumerate(text):
            following = steps[state].get(char)
            if following is None:
                following = self._step(state, char)
                if following < 0:  # too many states to keep: finish without the table
                    return self._simulate(self._sets[state], text[index:])
            if following == dead:
                return False
            state = following
        return self._accepts[state]

    def _step(self, state: int, char: str) -> int:
        target = self._advance(self._sets[state], char)
        if target not in self._ids and len(self._sets) >= _MAX_STATES:
            return -1
        following = self._state(target)
        self._steps[state][char] = following
        return following

    def _simulate(self, positions: frozenset[int], text: str) -> bool:
        for char in text:
            positions = self._advance(positions, char)
            if not positions:
                return False
        return len(self._tokens) in positions

    def _state(self, positions: frozenset[int]) -> int:
        known = self._ids.get(positions)
        if known is not None:
            return known
        self._ids[positions] = len(self._sets)
        self._sets.append(positions)
        self._steps.append({})
        self._accepts.append(len(self._tokens) in positions)
        return len(self._sets) - 1

    def _advance(self, positions: frozenset[int], char: str) -> frozenset[int]:
        tokens = self._tokens
        reached: set[int] = set()
        for position in positions:
            if position == len(tokens):
                continue
            token = tokens[position]
            if token.loops_on(char):
                reached.add(position)
            if token.takes(char):
                reached.add(position + 1)
        return self._closure(reached)

    def _closure(self, positions: set[int]) -> frozenset[int]:
        """``positions`` and every position reachable from them without consuming a character."""
        tokens, todo, seen = self._tokens, list(positions), set(positions)
        while todo:
            position = todo.pop()
            kind = tokens[position].kind if position < len(tokens) else ""
            if kind in _SKIPPABLE:
                following: tuple[int, ...] = (position + 1,)
            elif kind == "dirs":
                following = (position + 1, position + 2)  # enter the group, or skip it
            else:
                continue
            for reached in following:
                if reached not in seen:
                    seen.add(reached)
                    todo.append(reached)
        return frozenset(seen)


def _regex_is_linear(tokens: list[_Token]) -> bool:
    """Whether a backtracking regex for ``tokens`` takes time linear in the path.

    True for one run wildcard at most (each of its extents is tried once), and for a leading
    ``**/`` followed by at most one ``*`` per path segment (``**/*.pyc``): the ``**/`` can only
    end at a ``/``, and each ``*`` is confined to its segment, so the attempts from all the
    slashes add up to a few passes over the path. Everything else uses the automaton.
    """
    runs = [t for t in tokens if t.kind in ("star", "any", "dirs")]
    if len(runs) <= 1:
        return True
    rest = tokens[2:] if tokens[0].kind == "dirs" else tokens
    if any(t.kind in ("any", "dirs") for t in rest):
        return False
    stars = 0
    for token in rest:
        if token.kind == "char" and token.char == "/":
            stars = 0
        elif token.kind == "star":
            stars += 1
            if stars > 1:
                return False
    return True


def _regex(token: _Token) -> str:
    if token.kind == "char":
        return re.escape(token.char)
    if token.kind == "class":
        assert token.cls is not None
        return f"(?!/){token.cls.pattern}"
    return {"one": "[^/]", "star": "[^/]*", "any": ".*", "dirs": "(?:.*/)?", "inner": ""}[
        token.kind
    ]


def _tokens(pattern: str) -> list[_Token]:
    """The tokens of a glob; raises :class:`SourceError` for a dangling ``\\`` or ``[``."""
    out: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**/", i):
                out += [_Token("dirs"), _Token("inner")]
                i += 3
            elif pattern.startswith("**", i):
                out.append(_Token("any"))
                i += 2
            else:
                out.append(_Token("star"))
                i += 1
            continue
        if char == "?":
            out.append(_Token("one"))
        elif char == "\\":
            if i + 1 == n:
                raise SourceError(f"invalid ignore pattern {pattern!r}: it ends with '\\'")
            i += 1
            out.append(_Token("char", pattern[i]))
        elif char == "[":
            i, cls = _char_class(pattern, i)
            out.append(_Token("class", cls=re.compile(cls, re.DOTALL)))
            continue
        else:
            out.append(_Token("char", char))
        i += 1
    return out


def _char_class(pattern: str, start: int) -> tuple[int, str]:
    """Translate the ``[...]`` class at ``start``; returns (index after it, one-char regex)."""
    i = start + 1
    out = ["["]
    if i < len(pattern) and pattern[i] in "!^":
        out.append("^")
        i += 1
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            i += 1
            char = pattern[i]
        out.append("\\" + char if char in "\\]^[" else char)
        first = False
        i += 1
    if i >= len(pattern):
        raise SourceError(f"invalid ignore pattern {pattern!r}: '[' without a closing ']'")
    out.append("]")
    return i + 1, "".join(out)
