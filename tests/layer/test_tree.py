"""The file-tree walk: SRC[:DEST] parsing, layering of sources, links, errors and ignore rules."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocibuild._errors import SourceError
from ocibuild.layer._ignore import IgnoreRules
from ocibuild.layer._tree import Entry, Source, walk
from tests.layer._helpers import run_unprivileged


def write(path: Path, data: bytes = b"x", mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)
    return path


def paths(entries: list[Entry]) -> list[str]:
    return [e.path for e in entries]


def by_path(entries: list[Entry]) -> dict[str, Entry]:
    return {e.path: e for e in entries}


# --- Source.parse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "src", "dest"),
    [
        ("src:/app", "src", "/app"),
        ("src", "src", "/src"),
        ("./a/b/", "a/b", "/b"),
        ("/abs/dir:/", "/abs/dir", "/"),
        ("a:b", "a:b", "/a:b"),  # ':' not followed by '/' is part of SRC
        ("a:b:/x", "a:b", "/x"),  # split at the last ':'
        ("s:/app/../lib", "s", "/lib"),
        ("s:/app/", "s", "/app/"),  # the trailing '/' means "into this directory"
        ("s://x//./y/", "s", "/x/y/"),
        ("s:/./", "s", "/"),
    ],
)
def test_parse(spec: str, src: str, dest: str) -> None:
    source = Source.parse(spec)
    assert source.src == Path(src)
    assert source.dest == dest


def test_parse_default_dest_of_dot_is_the_directory_name(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert Source.parse(".").dest == "/" + tmp_path.name
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("spec", ["s:/../etc", "s:/a/../../b", "s:/a/b/../../../c"])
def test_parse_refuses_dest_escaping_the_root(spec: str) -> None:
    with pytest.raises(SourceError, match="escapes the image root"):
        Source.parse(spec)


def test_dest_with_a_whiteout_name_is_refused() -> None:
    with pytest.raises(SourceError, match=r"reserve for whiteouts"):
        Source.parse("s:/app/.wh.x")


def test_source_constructed_directly_is_normalized() -> None:
    source = Source("x", "app//lib/.")  # type: ignore[arg-type]
    assert source.src == Path("x")
    assert source.dest == "/app/lib"


# --- directory and file sources -------------------------------------------------------------


def test_directory_contents_go_under_dest_with_implied_parents(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "a.txt", b"hello", 0o640)
    write(src / "pkg" / "m.py", b"")
    (src / "empty").mkdir()
    (src / "pkg").chmod(0o750)
    entries = walk([Source(src, "/opt/app")])
    assert paths(entries) == [
        "opt",
        "opt/app",
        "opt/app/a.txt",
        "opt/app/empty",
        "opt/app/pkg",
        "opt/app/pkg/m.py",
    ]
    got = by_path(entries)
    for implied in ("opt", "opt/app"):
        assert got[implied] == Entry(implied, "dir", 0o755, 0, 0.0, None)
    a = got["opt/app/a.txt"]
    st = os.stat(src / "a.txt")
    assert (a.kind, a.mode, a.size, a.source) == ("file", 0o640, 5, str(src / "a.txt"))
    assert (a.mtime, a.uid, a.gid) == (st.st_mtime, st.st_uid, st.st_gid)
    assert (got["opt/app/pkg"].kind, got["opt/app/pkg"].mode) == ("dir", 0o750)
    assert got["opt/app/pkg"].source is None


def test_directory_source_at_root(tmp_path: Path) -> None:
    write(tmp_path / "s" / "x")
    assert paths(walk([Source(tmp_path / "s", "/")])) == ["x"]


@pytest.mark.parametrize(
    ("dest", "expected"),
    [("/bin/tool", "bin/tool"), ("/bin/", "bin/tool.sh"), ("/", "tool.sh")],
)
def test_file_source_dest(tmp_path: Path, dest: str, expected: str) -> None:
    tool = write(tmp_path / "tool.sh", b"#!/bin/sh\n", 0o755)
    entries = walk([Source(tool, dest)])
    assert paths(entries)[-1] == expected
    assert entries[-1].mode == 0o755
    assert entries[-1].source == str(tool)
    assert all(e.kind == "dir" and e.mode == 0o755 for e in entries[:-1])


def test_relative_source_paths_become_absolute(tmp_path: Path) -> None:
    write(tmp_path / "rel" / "f")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        entries = walk([Source.parse("rel")])
    finally:
        os.chdir(cwd)
    assert by_path(entries)["rel/f"].source == str(tmp_path / "rel" / "f")


def test_sorted_by_path_components(tmp_path: Path) -> None:
    src = tmp_path / "s"
    for name in ["a/b", "a-b", "a.b", "B", "é", "a/a/z", "ab"]:
        write(src / name)
    assert paths(walk([Source(src, "/")])) == [
        "B",
        "a",
        "a/a",
        "a/a/z",
        "a/b",
        "a-b",
        "a.b",
        "ab",
        "é",
    ]


# --- layering of several sources ------------------------------------------------------------


def test_later_source_replaces_a_file_and_directories_merge(tmp_path: Path) -> None:
    write(tmp_path / "one" / "conf" / "a.ini", b"first")
    write(tmp_path / "one" / "keep.txt")
    write(tmp_path / "two" / "conf" / "a.ini", b"second!")
    write(tmp_path / "two" / "conf" / "b.ini")
    entries = walk([Source(tmp_path / "one", "/app"), Source(tmp_path / "two", "/app")])
    assert paths(entries) == ["app", "app/conf", "app/conf/a.ini", "app/conf/b.ini", "app/keep.txt"]
    a = by_path(entries)["app/conf/a.ini"]
    assert (a.size, a.source) == (7, str(tmp_path / "two" / "conf" / "a.ini"))


def test_real_directory_wins_over_implied_in_either_order(tmp_path: Path) -> None:
    (tmp_path / "root" / "app").mkdir(parents=True)
    (tmp_path / "root" / "app").chmod(0o700)
    tool = write(tmp_path / "tool")
    for order in ([Source(tmp_path / "root", "/"), Source(tool, "/app/tool")], None):
        sources = order or [Source(tool, "/app/tool"), Source(tmp_path / "root", "/")]
        app = by_path(walk(sources))["app"]
        assert app.mode == 0o700
        assert app.mtime == os.stat(tmp_path / "root" / "app").st_mtime


def test_file_versus_directory_conflict_names_both_sources(tmp_path: Path) -> None:
    write(tmp_path / "one" / "lib")  # a file called lib
    write(tmp_path / "two" / "lib" / "x")  # a directory called lib
    with pytest.raises(
        SourceError, match=r"'/app/lib' is a file in source '.*one' .* source '.*two'"
    ):
        walk([Source(tmp_path / "one", "/app"), Source(tmp_path / "two", "/app")])
    with pytest.raises(SourceError, match=r"is a directory in source '.*two' but a file in .*one"):
        walk([Source(tmp_path / "two", "/app"), Source(tmp_path / "one", "/app")])


def test_file_where_a_later_source_needs_a_parent_directory(tmp_path: Path) -> None:
    f = write(tmp_path / "f")
    with pytest.raises(SourceError, match=r"'/app' is a file in source"):
        walk([Source(f, "/app"), Source(f, "/app/sub/f")])


# --- symlinks and hardlinks -----------------------------------------------------------------


def test_symlinks_are_kept_not_followed(tmp_path: Path) -> None:
    src = tmp_path / "s"
    write(src / "real" / "f")
    (src / "to_file").symlink_to("real/f")
    (src / "to_dir").symlink_to("real")
    (src / "dangling").symlink_to("../../nowhere")
    got = by_path(walk([Source(src, "/")]))
    assert sorted(got) == ["dangling", "real", "real/f", "to_dir", "to_file"]
    assert (got["to_file"].kind, got["to_file"].linkname) == ("symlink", "real/f")
    assert (got["to_dir"].kind, got["to_dir"].linkname) == ("symlink", "real")
    assert got["dangling"].linkname == "../../nowhere"
    assert got["to_dir"].size == 0
    assert got["to_dir"].source is None


def test_a_source_argument_that_is_a_symlink_is_followed(tmp_path: Path) -> None:
    write(tmp_path / "realdir" / "inside", b"abc")
    write(tmp_path / "realfile", b"abcd")
    (tmp_path / "linkdir").symlink_to("realdir")
    (tmp_path / "linkfile").symlink_to("realfile")
    got = by_path(walk([Source(tmp_path / "linkdir", "/d"), Source(tmp_path / "linkfile", "/f")]))
    assert got["d"].kind == "dir"
    assert (got["d/inside"].kind, got["d/inside"].size) == ("file", 3)
    assert (got["f"].kind, got["f"].size) == ("file", 4)


def test_follow_symlinks_packs_what_links_point_to(tmp_path: Path) -> None:
    src = tmp_path / "s"
    write(src / "real" / "f", b"12345")
    (src / "to_file").symlink_to("real/f")
    (src / "to_dir").symlink_to("real")
    (src / "dangling").symlink_to("nowhere")
    got = by_path(walk([Source(src, "/")], follow_symlinks=True))
    assert (got["to_file"].kind, got["to_file"].size) == ("file", 5)
    assert got["to_dir"].kind == "dir"
    assert got["to_dir/f"].kind == "file"
    assert (got["dangling"].kind, got["dangling"].linkname) == ("symlink", "nowhere")


def test_follow_symlinks_refuses_a_loop(tmp_path: Path) -> None:
    src = tmp_path / "s"
    (src / "a").mkdir(parents=True)
    (src / "a" / "up").symlink_to("..")
    with pytest.raises(SourceError, match="symlink loop"):
        walk([Source(src, "/")], follow_symlinks=True)
    assert by_path(walk([Source(src, "/")]))["a/up"].kind == "symlink"


def test_hardlinks_become_one_file_and_links_to_it(tmp_path: Path) -> None:
    src = tmp_path / "s"
    first = write(src / "b" / "data", b"shared")
    os.link(first, src / "a_copy")
    os.link(first, src / "c_copy")
    outside = write(tmp_path / "lonely", b"x")
    os.link(outside, src / "only_one_inside")  # nlink 2, but its twin is not in the walk
    got = by_path(walk([Source(src, "/r")]))
    assert (got["r/a_copy"].kind, got["r/a_copy"].size) == ("file", 6)  # first in sorted order
    for other in ("r/b/data", "r/c_copy"):
        assert got[other].kind == "hardlink"
        assert got[other].linkname == "r/a_copy"
        assert (got[other].size, got[other].source) == (0, None)
    assert got["r/only_one_inside"].kind == "file"


def test_replacing_the_first_hardlink_promotes_the_next(tmp_path: Path) -> None:
    src = tmp_path / "s"
    x = write(src / "x", b"linked")
    os.link(x, src / "y")
    other = write(tmp_path / "other", b"replacement")
    got = by_path(walk([Source(src, "/"), Source(other, "/x")]))
    assert (got["x"].kind, got["x"].source) == ("file", str(other))
    assert (got["y"].kind, got["y"].size) == ("file", 6)


# --- things that cannot be packed -----------------------------------------------------------


def test_missing_source() -> None:
    with pytest.raises(SourceError, match=r"source 'no/such/dir' does not exist: /.*no/such/dir"):
        walk([Source.parse("no/such/dir:/x")])


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to about 107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="oci") as name:
        yield Path(name)


def test_socket_is_refused_unless_excluded(short_dir: Path) -> None:
    src = short_dir / "s"
    write(src / "ok")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
        with pytest.raises(
            SourceError, match=r"'.*/s/sock' cannot be packed into a layer .*--exclude"
        ):
            walk([Source(src, "/")])
        assert paths(walk([Source(src, "/")], excludes=["sock"])) == ["ok"]


def test_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(SourceError, match=r"pipe' cannot be packed .*sockets, FIFOs and devices"):
        walk([Source(tmp_path, "/")])


def test_device_is_refused_as_a_source_argument() -> None:
    with pytest.raises(SourceError, match=r"'/dev/null' cannot be packed into a layer"):
        walk([Source.parse("/dev/null:/null")])


def test_whiteout_names_are_refused_unless_excluded(tmp_path: Path) -> None:
    write(tmp_path / "d" / ".wh.gone")
    with pytest.raises(SourceError, match=r"\.wh\.gone' starts with '\.wh\.'"):
        walk([Source(tmp_path, "/")])
    assert paths(walk([Source(tmp_path, "/")], excludes=["**/.wh.*"])) == ["d"]


def walk_report(source: Source, excludes: list[str] | None = None) -> Callable[[], str]:
    def action() -> str:
        try:
            return repr(paths(walk([source], excludes=excludes or [])))
        except SourceError as err:
            return f"SourceError: {err}"

    return action


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A temporary directory that an unprivileged user can reach."""
    with tempfile.TemporaryDirectory() as name:
        os.chmod(name, 0o755)
        yield Path(name)


def test_unreadable_file_and_directory(shared_dir: Path) -> None:
    write(shared_dir / "ok", mode=0o644)
    write(shared_dir / "secret", mode=0o000)
    denied = f"SourceError: cannot read '{shared_dir}/secret': permission denied"
    assert run_unprivileged(walk_report(Source(shared_dir, "/"))) == denied
    assert run_unprivileged(walk_report(Source(shared_dir / "secret", "/s"))) == denied
    (shared_dir / "secret").unlink()
    (shared_dir / "locked").mkdir(mode=0o000)
    assert run_unprivileged(walk_report(Source(shared_dir, "/"))) == (
        f"SourceError: cannot read directory '{shared_dir}/locked': Permission denied"
    )
    assert run_unprivileged(walk_report(Source(shared_dir, "/"), ["locked"])) == "['ok']"


# --- ignore rules in the walk ---------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    src = tmp_path / "project"
    for name in [
        "main.py",
        "main.pyc",
        "pkg/mod.py",
        "pkg/mod.pyc",
        "pkg/__pycache__/mod.cpython-311.pyc",
        "__pycache__/main.cpython-311.pyc",
        "build/out.o",
        "build/keep.txt",
        "notes.txt",
        "keep.txt",
        "dist",  # a file, not a directory
    ]:
        write(src / name)
    return src


def walked(src: Path, **kwargs: object) -> list[str]:
    return paths(walk([Source(src, "/")], **kwargs))  # type: ignore[arg-type]


def test_excludes_use_dockerignore_semantics(project: Path) -> None:
    assert walked(project, excludes=["*.pyc", "**/__pycache__", "dist/", "build/", "*.txt"]) == [
        "dist",  # 'dist/' matches directories only
        "main.py",
        "pkg",
        "pkg/mod.py",
        "pkg/mod.pyc",  # '*.pyc' matches at the root only, as in Docker
    ]


def test_negation_reincludes_inside_an_excluded_directory(project: Path) -> None:
    os.chmod(project / "build", 0o711)
    got = walk([Source(project, "/")], excludes=["build", "*.txt", "!build/keep.txt", "!keep.txt"])
    names = paths(got)
    assert "build/keep.txt" in names
    assert "build/out.o" not in names
    assert "keep.txt" in names
    assert "notes.txt" not in names
    assert by_path(got)["build"].mode == 0o711  # the real directory, not an implied one


def test_excluded_directory_is_pruned_unless_something_could_come_back(tmp_path: Path) -> None:
    src = tmp_path / "s"
    (src / "cache").mkdir(parents=True)
    (src / "cache" / "up").symlink_to("..")  # a loop when followed: walking into it raises
    write(src / "main.py")
    assert walked(src, excludes=["cache"], follow_symlinks=True) == ["main.py"]
    with pytest.raises(SourceError, match="symlink loop"):
        walked(src, excludes=["cache", "!cache/**/keep"], follow_symlinks=True)
    # a '!' pattern before the exclusion, or for another directory, cannot bring anything back
    assert walked(src, excludes=["!cache/**/keep", "cache", "!other/**"], follow_symlinks=True) == [
        "main.py"
    ]
    # an excluded directory whose walk adds nothing is left out entirely
    assert walked(src, excludes=["cache", "!cache/keep"]) == ["main.py"]


def test_dockerignore_at_the_source_root_applies_and_is_packed(project: Path) -> None:
    write(project / ".dockerignore", b"# comment\n**/*.pyc\n**/__pycache__\nbuild\n")
    assert walked(project) == [
        ".dockerignore",
        "dist",
        "keep.txt",
        "main.py",
        "notes.txt",
        "pkg",
        "pkg/mod.py",
    ]


def test_ocibuildignore_takes_precedence_over_dockerignore(project: Path) -> None:
    write(project / ".dockerignore", b"*.py\n")
    write(project / ".ocibuildignore", b"**/*.pyc\n**/__pycache__\nbuild\n*.txt\n.*\n")
    assert walked(project) == ["dist", "main.py", "pkg", "pkg/mod.py"]


def test_ignore_file_applies_to_every_directory_source_and_excludes_win(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write(one / "a.log")
    write(one / "keep.log")
    write(two / "b.log")
    write(two / "b.py")
    lone = write(tmp_path / "explicit.log")
    ignore = write(tmp_path / "rules", "\ufeff*.log\n".encode())  # a BOM is tolerated
    entries = walk(
        [Source(one, "/one"), Source(two, "/two"), Source(lone, "/explicit.log")],
        ignore_file=ignore,
        excludes=["!keep.log"],
    )
    # a file named as a source is packed whatever the rules say
    assert paths(entries) == ["explicit.log", "one", "one/keep.log", "two", "two/b.py"]


def test_patterns_are_relative_to_the_source_root_not_the_dest(tmp_path: Path) -> None:
    write(tmp_path / "s" / "a.txt")
    write(tmp_path / "s" / "b.txt")
    assert paths(walk([Source(tmp_path / "s", "/app")], excludes=["/a.txt", "app"])) == [
        "app",
        "app/b.txt",
    ]


def test_unreadable_ignore_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read ignore file"):
        walk([Source(tmp_path, "/")], ignore_file=tmp_path / "missing")


# --- the matcher itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "excluded"),
    [
        (["*.pyc"], "a.pyc", False, True),
        (["*.pyc"], "d/a.pyc", False, False),
        (["**/*.pyc"], "a.pyc", False, True),
        (["**/*.pyc"], "d/e/a.pyc", False, True),
        (["**/__pycache__"], "__pycache__", True, True),
        (["**/__pycache__"], "a/b/__pycache__/x.pyc", False, True),
        (["build/"], "build", True, True),
        (["build/"], "build", False, False),
        (["build/"], "build/x", False, True),
        (["build"], "build", False, True),
        (["/docs"], "docs/x.md", False, True),
        (["docs"], "src/docs", True, False),
        (["*.txt", "!keep.txt"], "keep.txt", False, False),
        (["*.txt", "!keep.txt"], "a.txt", False, True),
        (["!keep.txt", "*.txt"], "keep.txt", False, True),
        (["*", "!src"], "src/a/b.py", False, False),
        (["*", "!src"], "other/b.py", False, True),
        (["a?c"], "abc", False, True),
        (["a?c"], "a/c", False, False),
        (["[a-c].md"], "b.md", False, True),
        (["[a-c].md"], "d.md", False, False),
        (["[!a].md"], "a.md", False, False),
        (["[!a].md"], "b.md", False, True),
        (["[^a].md"], "b.md", False, True),
        (["\\*.md"], "*.md", False, True),
        (["\\*.md"], "x.md", False, False),
        (["# comment", "", "  x  "], "x", False, True),
        (["# comment"], "# comment", False, False),
        (["a/**"], "a/b/c", False, True),
        (["a/**"], "a", True, False),
        (["**"], "any/thing", False, True),
        (["a/**/b"], "a/b", False, True),
        (["a/**/b"], "a/x/y/b", False, True),
        (["a/**/b"], "a/x/y/c", False, False),
        (["./a/../b/"], "b", True, True),
        (["*.py"], "new\nline.py", False, True),
        (["/", "."], "x", False, False),
        (["! keep"], "keep", False, False),
    ],
)
def test_ignore_rules(patterns: list[str], path: str, is_dir: bool, excluded: bool) -> None:
    assert IgnoreRules.parse(patterns).matches(path, is_dir) is excluded


@pytest.mark.parametrize("pattern", ["[abc", "abc\\"])
def test_invalid_ignore_pattern(pattern: str) -> None:
    with pytest.raises(SourceError, match="invalid ignore pattern"):
        IgnoreRules.parse([pattern])


@pytest.mark.parametrize(
    ("patterns", "dir_path", "could"),
    [
        (["build", "!build/keep.txt"], "build", True),
        (["build", "!build/*/keep.txt"], "build", True),
        (["build", "!other/keep.txt"], "build", False),
        (["!build/keep.txt", "build"], "build", False),
        (["build", "!**/keep.txt"], "build", True),
        (["build", "!*/keep"], "build", True),
        (["a", "!a/b/c"], "a/x", False),
        (["a", "!a/b/c"], "a/b", True),
        (["a", "!**/keep"], "a/b", True),
        (["a", "!a/**/keep"], "a/b/c", True),
    ],
)
def test_may_reinclude_under(patterns: list[str], dir_path: str, could: bool) -> None:
    rules = IgnoreRules.parse(patterns)
    index = -1
    parts = dir_path.split("/")
    for depth in range(1, len(parts) + 1):
        index = rules.match_index("/".join(parts[:depth]), True, index)
    assert rules.may_reinclude_under(dir_path, index) is could


def test_rules_concatenate_with_later_ones_winning() -> None:
    rules = IgnoreRules.parse(["*.log"]) + IgnoreRules.parse(["!a.log"])
    assert not rules.matches("a.log", False)
    assert rules.matches("b.log", False)
    assert not IgnoreRules()
