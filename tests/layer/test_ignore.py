"""Ignore patterns match in time linear in the name, as Docker's (Go regexp) do."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ocibuild.layer import Source, walk
from ocibuild.layer._glob import Glob
from ocibuild.layer._ignore import IgnoreRules
from tests._bounded import in_child

PATHOLOGICAL = [
    "*a*a*a*a*a*a*a*a*a*a*a*a*b",  # the reported one: stars within one name
    "**a**a**a**a**a**a**a**a**b",  # stars that cross '/'
    "**/**/**/**/**/**/**/**/**/b",  # nested directory wildcards, on a deep path
    "?*?*?*?*?*?*?*?*?*?*?*?*b",
    "*[a]*[a]*[a]*[a]*[a]*[a]*[a]*b",
]


@pytest.mark.parametrize("pattern", PATHOLOGICAL)
def test_pathological_patterns_match_fast(pattern: str) -> None:
    rules = IgnoreRules.parse([pattern])
    for name in ["a" * 60, "a/" * 200 + "a", ("a" * 30 + "/") * 4]:
        started = time.perf_counter()
        assert in_child(10, lambda name=name: rules.matches(name, False)) is False  # type: ignore[misc]
        assert time.perf_counter() - started < 0.5, f"{pattern} on {name[:20]}..."


def test_a_pathological_dockerignore_does_not_stall_the_walk(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("*a*a*a*a*a*a*a*a*a*a*a*a*b\n")
    (tmp_path / ("a" * 60)).write_text("x")
    started = time.perf_counter()
    entries = in_child(10, lambda: walk([Source(tmp_path, "/")]))
    assert time.perf_counter() - started < 1
    assert sorted(e.path for e in entries) == [".dockerignore", "a" * 60]


def test_matching_time_grows_linearly_with_the_name() -> None:
    glob = Glob("*a*a*a*a*a*a*a*a*a*a*a*a*b")
    short, long = "a" * 2_000, "a" * 20_000
    glob.fullmatch(short)  # build the states once
    started = time.perf_counter()
    glob.fullmatch(short)
    small = time.perf_counter() - started
    started = time.perf_counter()
    glob.fullmatch(long)
    large = time.perf_counter() - started
    assert large < 40 * small + 0.01  # 10x the input: about 10x the time, never the square


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*a*b", "xxaxxb", True),
        ("*a*b", "xxaxx/b", False),
        ("**a**b", "x/a/y/b", True),
        ("**/b", "b", True),
        ("**/b", "x/y/b", True),
        ("**/b", "x/yb", False),
        ("a/**", "a/", True),
        ("a/**", "a", False),
        ("a**", "a/b/c", True),
        ("[!a]", "/", False),
        ("[a-c]x", "bx", True),
        ("?", "/", False),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("", "", True),
    ],
)
def test_glob_semantics(pattern: str, text: str, expected: bool) -> None:
    assert Glob(pattern).fullmatch(text) is expected


def test_the_state_table_is_bounded() -> None:
    glob = Glob("*" + "?*" * 40 + "[xyz]")
    names = ["".join(chr(97 + (i * j) % 26) for j in range(80)) for i in range(300)]
    for name in names:
        glob.fullmatch(name)
    assert len(glob._sets) <= 4096
