"""The file tree of a layer: ``SRC[:DEST]`` sources walked into sorted, de-duplicated entries.

Sources are applied in order like layers: a later source may replace a file an earlier one put
at the same path, and directories merge. Parent directories of each destination are implied
(mode 0o755, mtime 0) unless a real directory supplies them. Symlinks are stored as symlinks;
files sharing an inode become one file plus hardlinks to it.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .._errors import SourceError
from ._ignore import IgnoreRules

__all__ = ["Entry", "Source", "host_path", "walk"]

_AUTO_IGNORE_FILES = (".ocibuildignore", ".dockerignore")
_WHITEOUT = ".wh."
_IMPLIED_MODE = 0o755


@dataclass(frozen=True)
class Source:
    """One ``SRC[:DEST]`` argument: a host path and where it goes in the image."""

    src: Path
    dest: str  # absolute and normalized; a trailing '/' is kept: it means "into this directory"

    def __post_init__(self) -> None:
        object.__setattr__(self, "src", Path(self.src))
        object.__setattr__(self, "dest", _normalize_dest(self.dest))

    @classmethod
    def parse(cls, spec: str) -> Source:
        """Parse ``SRC[:DEST]``; DEST defaults to ``/`` + the basename of SRC."""
        src, sep, dest = spec.rpartition(":")
        if not sep or not dest.startswith("/") or not src:
            src, dest = spec, ""
        if not src:
            raise SourceError("empty source: give a path, optionally followed by ':/dest'")
        if not dest:
            try:
                resolved = host_path(src)
            except OSError:
                resolved = os.path.abspath(src)  # the walk says what is wrong with it
            dest = "/" + os.path.basename(resolved)
        return cls(Path(src), dest)


def host_path(path: str | os.PathLike[str]) -> str:
    """``path`` made absolute and clean as the kernel resolves it: ``..`` after a symlink
    leads to the parent of the link's target, not back to the directory holding the link.

    The part up to the last ``..`` is resolved with its links followed (OSError if it does
    not exist, as ``ls`` would say); what follows has no ``..``, so cleaning it as text means
    what the kernel means, and a last component that is a link keeps its own name.
    """
    text = os.fspath(path)
    parts = text.split(os.sep)
    if ".." not in parts:
        return os.path.abspath(text)
    last = len(parts) - 1 - parts[::-1].index("..")
    head = os.sep.join(parts[: last + 1]) or os.sep
    os.stat(head)  # the kernel's own errors: realpath lets 'file/..' through
    return os.path.normpath(os.path.join(os.path.realpath(head, strict=True), *parts[last + 1 :]))


@dataclass(frozen=True)
class Entry:
    """One path of the layer, as the tar writer needs it."""

    path: str  # in-image, relative, '/'-separated, no leading or trailing '/'
    kind: str  # "file" | "dir" | "symlink" | "hardlink"
    mode: int  # permission bits including setuid, setgid and sticky
    size: int  # bytes for a file, else 0
    mtime: float  # host mtime; the tar writer decides whether to use it
    source: str | None  # absolute host path of a file; None for directories and links
    linkname: str = ""  # symlink target as on disk; for a hardlink the in-image path of the file
    uid: int = 0
    gid: int = 0
    # For a file: (size, mtime_ns, ctime_ns, inode, device) as the walk saw them, so the layer
    # cache need not stat the file again.
    state: tuple[int, ...] = ()


def walk(
    sources: Sequence[Source],
    *,
    excludes: Sequence[str] = (),
    ignore_file: str | Path | None = None,
    follow_symlinks: bool = False,
) -> list[Entry]:
    """Walk the sources into entries sorted so that parents come before their children.

    Directory sources are filtered by their own ``.ocibuildignore`` (else ``.dockerignore``),
    then ``ignore_file``, then ``excludes``: later rules win. A file named as a source is always
    packed. With ``follow_symlinks`` links inside directories are replaced by what they point
    to (a dangling link stays a link); a SRC argument that is a link is always followed.
    """
    rules = IgnoreRules.from_file(ignore_file) if ignore_file is not None else IgnoreRules()
    rules += IgnoreRules.parse(excludes)
    tree = _Tree()
    for source in sources:
        _add_source(tree, source, rules, follow_symlinks)
    return tree.finish()


def _normalize_dest(dest: str) -> str:
    """Make DEST absolute and clean, refusing one that climbs out of the root."""
    depth = 0
    for part in dest.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise SourceError(
                    f"destination '{dest}' escapes the image root with '..'; "
                    "give an absolute path inside the image"
                )
        elif part not in ("", "."):
            depth += 1
            if part.startswith(_WHITEOUT):
                raise SourceError(_whiteout_message(dest))
    clean = "/" + posixpath.normpath("/" + dest).lstrip("/")
    if dest.endswith("/") and clean != "/":
        clean += "/"
    return clean


def _whiteout_message(path: str) -> str:
    return (
        f"'{path}' starts with '{_WHITEOUT}', which OCI layers reserve for whiteouts; "
        "rename it or exclude it with --exclude"
    )


def _add_source(tree: _Tree, source: Source, rules: IgnoreRules, follow_symlinks: bool) -> None:
    """Add one source: a directory's contents under DEST, or a file at DEST."""
    label = str(source.src)
    host = os.path.join(os.getcwd(), source.src)  # as given, for the errors
    try:
        host = host_path(source.src)
        st = os.stat(host)  # a SRC argument that is a symlink is followed
    except FileNotFoundError as err:
        raise SourceError(f"source '{label}' does not exist: {host}") from err
    except OSError as err:
        raise SourceError(f"cannot read source '{label}': {err.strerror}: {host}") from err
    dest = source.dest.strip("/")
    if stat.S_ISDIR(st.st_mode):
        tree.imply_dirs(dest, label)
        walker = _Walker(tree, label, _auto_ignore(host) + rules, follow_symlinks)
        walker.seen.add((st.st_dev, st.st_ino))
        walker.walk_dir(host, dest + "/" if dest else "", "", -1)
    elif stat.S_ISREG(st.st_mode):
        name = os.path.basename(host)
        if name.startswith(_WHITEOUT):
            raise SourceError(_whiteout_message(host))
        if not os.access(host, os.R_OK):
            raise SourceError(f"cannot read '{host}': permission denied")
        path = posixpath.join(dest, name) if source.dest.endswith("/") else dest
        tree.imply_dirs(posixpath.dirname(path), label)
        tree.put(_file_entry(path, host, st), label, st)
    else:
        raise SourceError(_special_message(host))


def _auto_ignore(root: str) -> IgnoreRules:
    """The ignore file at the root of a directory source, if it has one."""
    for name in _AUTO_IGNORE_FILES:
        candidate = os.path.join(root, name)
        if os.path.isfile(candidate):
            return IgnoreRules.from_file(candidate)
    return IgnoreRules()


def _special_message(path: str) -> str:
    return (
        f"'{path}' cannot be packed into a layer (sockets, FIFOs and devices are not supported); "
        "exclude it with --exclude"
    )


def _file_entry(path: str, host: str, st: os.stat_result) -> Entry:
    mode, mtime, uid, gid = st.st_mode & 0o7777, st.st_mtime, st.st_uid, st.st_gid
    state = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    return Entry(path, "file", mode, st.st_size, mtime, host, "", uid, gid, state)


def _dir_entry(path: str, st: os.stat_result) -> Entry:
    mode, mtime, uid, gid = st.st_mode & 0o7777, st.st_mtime, st.st_uid, st.st_gid
    return Entry(path, "dir", mode, 0, mtime, None, "", uid, gid)


def _symlink_entry(path: str, target: str, st: os.stat_result) -> Entry:
    mode, mtime, uid, gid = st.st_mode & 0o7777, st.st_mtime, st.st_uid, st.st_gid
    return Entry(path, "symlink", mode, 0, mtime, None, target, uid, gid)


class _Tree:
    """The entries collected so far, keyed by in-image path, with the source of each."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.owners: dict[str, str] = {}  # path -> label of the source that put it there
        self.inodes: dict[str, tuple[int, int]] = {}  # file path -> (st_dev, st_ino) if nlink > 1

    def put(self, entry: Entry, label: str, st: os.stat_result | None = None) -> None:
        """Add or replace the entry at its path; a file and a directory may not share one."""
        path = entry.path
        old = self.entries.get(path)
        if old is not None:
            if (old.kind == "dir") != (entry.kind == "dir"):
                self._conflict(path, old, label)
            self.inodes.pop(path, None)
        self.entries[path] = entry
        self.owners[path] = label
        if st is not None and st.st_nlink > 1 and entry.kind == "file":
            self.inodes[path] = (st.st_dev, st.st_ino)

    def imply_dirs(self, path: str, label: str) -> None:
        """Make sure ``path`` and its parents exist as directories."""
        prefix = ""
        for part in path.split("/") if path else ():
            prefix = f"{prefix}/{part}" if prefix else part
            old = self.entries.get(prefix)
            if old is None:
                self.entries[prefix] = Entry(prefix, "dir", _IMPLIED_MODE, 0, 0.0, None)
                self.owners[prefix] = label
            elif old.kind != "dir":
                self._conflict(prefix, old, label)

    def _conflict(self, path: str, old: Entry, label: str) -> None:
        was = "a directory" if old.kind == "dir" else "a file"
        now = "a file" if old.kind == "dir" else "a directory"
        raise SourceError(
            f"'/{path}' is {was} in source '{self.owners[path]}' but {now} in source '{label}'; "
            "give them different destinations"
        )

    def finish(self) -> list[Entry]:
        """The entries sorted by path components, with repeated inodes turned into hardlinks."""
        ordered = sorted(self.entries.values(), key=_sort_key)
        if self.inodes:
            first: dict[tuple[int, int], str] = {}
            for index, entry in enumerate(ordered):
                inode = self.inodes.get(entry.path)
                if inode is None:
                    continue
                if inode in first:
                    ordered[index] = replace(
                        entry, kind="hardlink", size=0, source=None, linkname=first[inode]
                    )
                else:
                    first[inode] = entry.path
        return ordered


def _sort_key(entry: Entry) -> bytes:
    # NUL sorts below every other byte, so this orders by component: "a" < "a/b" < "a-b".
    return os.fsencode(entry.path).replace(b"/", b"\0")


@dataclass
class _Frame:
    """A directory being walked: its remaining children and what to do when they are done."""

    children: Iterator[os.DirEntry[str]]
    image_prefix: str  # ends in '/' (or is empty)
    rel_prefix: str  # likewise
    decided: int  # the index of the ignore pattern that decided the directory (-1: none)
    inode: tuple[int, int] | None = None  # when following symlinks: leave `seen` when done
    excluded: tuple[str, os.stat_result] | None = None  # an excluded dir: added if not empty
    added: int = 0  # entries added inside so far


class _Walker:
    """Walks one directory source with os.scandir, applying its ignore rules.

    The walk keeps its own stack, so a tree of any depth is walked (a recursive walk met
    Python's recursion limit about 500 directories down).
    """

    def __init__(self, tree: _Tree, label: str, rules: IgnoreRules, follow: bool) -> None:
        self.tree = tree
        self.label = label
        self.rules = rules
        self.follow = follow
        self.check_access = os.geteuid() != 0  # root reads everything; skip the syscall
        self.seen: set[tuple[int, int]] = set()  # directories being walked, to catch symlink loops

    def walk_dir(self, host_dir: str, image_prefix: str, rel_prefix: str, decided: int) -> int:
        """Add the contents of ``host_dir``; returns how many entries were added.

        ``image_prefix`` and ``rel_prefix`` end in '/' (or are empty); ``decided`` is the index
        of the ignore pattern that decided the directory itself (-1 for none).
        """
        stack = [_Frame(self._list(host_dir), image_prefix, rel_prefix, decided)]
        while True:
            frame = stack[-1]
            child = next(frame.children, None)
            if child is not None:
                inner = self._visit(frame, child)
                if inner is not None:
                    stack.append(inner)
                continue
            stack.pop()
            added = self._finish(frame)
            if not stack:
                return added
            stack[-1].added += added

    def _list(self, host_dir: str) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(host_dir) as listing:
                children = list(listing)  # close the directory before descending: fds are finite
        except OSError as err:
            raise SourceError(f"cannot read directory '{host_dir}': {err.strerror}") from err
        return iter(children)

    def _visit(self, frame: _Frame, child: os.DirEntry[str]) -> _Frame | None:
        """Add one child of ``frame``'s directory; a directory to walk comes back as a frame."""
        rules, tree, label = self.rules, self.tree, self.label
        name = child.name
        rel = frame.rel_prefix + name
        path = frame.image_prefix + name
        st = self._stat(child)
        fmt = stat.S_IFMT(st.st_mode)
        index = frame.decided
        if rules:
            index = rules.match_index(rel, fmt == stat.S_IFDIR, frame.decided)
            if rules.excludes(index):
                if fmt == stat.S_IFDIR and rules.may_reinclude_under(rel, index):
                    return self._enter(child.path, path, rel, index, st, excluded=True)
                return None
        if name.startswith(_WHITEOUT):
            raise SourceError(_whiteout_message(child.path))
        frame.added += 1
        if fmt == stat.S_IFREG:
            if self.check_access and not os.access(child.path, os.R_OK):
                raise SourceError(f"cannot read '{child.path}': permission denied")
            tree.put(_file_entry(path, child.path, st), label, st)
        elif fmt == stat.S_IFDIR:
            tree.put(_dir_entry(path, st), label)
            return self._enter(child.path, path, rel, index, st, excluded=False)
        elif fmt == stat.S_IFLNK:
            tree.put(_symlink_entry(path, os.readlink(child.path), st), label)
        else:
            raise SourceError(_special_message(child.path))
        return None

    def _stat(self, child: os.DirEntry[str]) -> os.stat_result:
        """lstat the child, or stat it when following symlinks."""
        if self.follow:
            try:
                return child.stat()
            except OSError:
                pass  # a dangling or looping link has nothing to follow: keep the link itself
        try:
            return child.stat(follow_symlinks=False)
        except FileNotFoundError as err:
            raise SourceError(f"'{child.path}' vanished while the source was being read") from err
        except OSError as err:
            raise SourceError(f"cannot read '{child.path}': {err.strerror}") from err

    def _enter(
        self, host: str, path: str, rel: str, decided: int, st: os.stat_result, *, excluded: bool
    ) -> _Frame:
        """The frame of a subdirectory; when following symlinks, refuse to walk into a loop.

        An excluded directory that a later '!' pattern may re-include parts of is walked too,
        and added only if something inside it was.
        """
        inode = None
        if self.follow:
            inode = (st.st_dev, st.st_ino)
            if inode in self.seen:
                raise SourceError(
                    f"'{host}' leads back to a directory above it (a symlink loop); exclude it"
                )
            self.seen.add(inode)
        children = self._list(host)
        return _Frame(
            children, path + "/", rel + "/", decided, inode, (path, st) if excluded else None
        )

    def _finish(self, frame: _Frame) -> int:
        """Close a walked directory; returns the entries it added, itself if excluded."""
        if frame.inode is not None:
            self.seen.discard(frame.inode)
        added = frame.added
        if frame.excluded is not None and added:
            path, st = frame.excluded
            self.tree.put(_dir_entry(path, st), self.label)
            added += 1
        return added
