"""The hand-written tar writer, read back by Python's tarfile and by GNU tar."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocibuild._errors import SourceError
from ocibuild.layer._tar import TarOptions, encode_header, tar_stream
from ocibuild.layer._tree import Entry, Source, walk
from tests.layer._helpers import run_unprivileged

END = bytes(1024)
GIB = 1 << 30


def tar_bytes(entries: list[Entry], options: TarOptions | None = None) -> bytes:
    return b"".join(tar_stream(entries, options or TarOptions()))


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        return archive.getmembers()


def first_member(data: bytes) -> tarfile.TarInfo:
    """Parse only the first member: the data after it may be absent (a huge size)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        member = archive.next()
    assert member is not None
    return member


# --- a generated tree on disk ---------------------------------------------------------------

NAME_CHARS = "abcXYZ019 _-.,'$#=+~éñß日本語Ω"


def valid_name(name: str) -> bool:
    return name not in (".", "..") and not name.startswith(".wh.") and len(name.encode()) <= 255


NAMES = st.one_of(
    st.text(alphabet=NAME_CHARS, min_size=1, max_size=12),
    # long components: over 100 bytes, up to 240 (NAME_MAX is 255)
    st.builds(lambda char, n: char * n, st.sampled_from("lé"), st.integers(101, 120)),
).filter(valid_name)
TARGETS = st.one_of(
    st.text(alphabet=NAME_CHARS + "/", min_size=1, max_size=20),
    st.builds(lambda char, n: "../" + char * n, st.sampled_from("té"), st.integers(98, 300)),
)
FILE_MODES = st.sampled_from([0o644, 0o755, 0o600, 0o444, 0o000, 0o4755, 0o2755, 0o1777, 0o6711])
DIR_MODES = st.sampled_from([0o755, 0o700, 0o555, 0o1777, 0o2775])
CONTENTS = st.one_of(
    st.sampled_from([b"", b"\0", b"x" * 511, b"y" * 512, b"z" * 513]),
    st.binary(max_size=3000),
)


@dataclass
class Tree:
    """A description of a file tree: relative paths and what to put there."""

    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (data, mode)
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target
    hardlinks: dict[str, str] = field(default_factory=dict)  # path -> existing file path

    def taken(self) -> set[str]:
        return {*self.dirs, *self.files, *self.symlinks, *self.hardlinks}

    def write(self, root: Path) -> None:
        for path in self.dirs:
            (root / path).mkdir()
        for path, (data, mode) in self.files.items():
            (root / path).write_bytes(data)
            os.chmod(root / path, mode)
        for path, target in self.symlinks.items():
            os.symlink(target, root / path)
        for path, existing in self.hardlinks.items():
            os.link(root / existing, root / path)
        for path in sorted(self.dirs, key=len, reverse=True):
            os.chmod(root / path, self.dirs[path])


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    tree = Tree()

    def new_path() -> str | None:
        parents = ["", *tree.dirs]
        # half the time under the newest directory, so trees also grow deep
        parent = draw(st.one_of(st.just(parents[-1]), st.sampled_from(parents)))
        path = f"{parent}/{draw(NAMES)}".lstrip("/")
        return None if path in tree.taken() else path

    for _ in range(draw(st.integers(0, 8))):
        if path := new_path():
            tree.dirs[path] = draw(DIR_MODES)
    for _ in range(draw(st.integers(0, 8))):
        if path := new_path():
            tree.files[path] = (draw(CONTENTS), draw(FILE_MODES))
    for _ in range(draw(st.integers(0, 3))):
        if path := new_path():
            tree.symlinks[path] = draw(TARGETS)
    if tree.files:
        for _ in range(draw(st.integers(0, 3))):
            if path := new_path():
                tree.hardlinks[path] = draw(st.sampled_from(sorted(tree.files)))
    return tree


def snapshot(root: Path) -> tuple[dict[str, tuple[str, int, bytes]], set[frozenset[str]]]:
    """Every path under root as (kind, mode, content or link target), and the hardlink groups."""
    found: dict[str, tuple[str, int, bytes]] = {}
    inodes: dict[tuple[int, int], set[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st_ = os.lstat(full)
            mode = stat.S_IMODE(st_.st_mode)
            if stat.S_ISLNK(st_.st_mode):
                found[rel] = ("symlink", 0, os.fsencode(os.readlink(full)))
            elif stat.S_ISDIR(st_.st_mode):
                found[rel] = ("dir", mode, b"")
            else:
                found[rel] = ("file", mode, Path(full).read_bytes())
                inodes.setdefault((st_.st_dev, st_.st_ino), set()).add(rel)
    return found, {frozenset(group) for group in inodes.values() if len(group) > 1}


def check_with_tarfile(data: bytes, entries: list[Entry], root: Path) -> None:
    got = members(data)
    assert [m.name for m in got] == [e.path for e in entries]
    for member, entry in zip(got, entries, strict=True):
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 0
        assert member.mode == entry.mode
        if entry.path == "t":
            assert member.isdir()
            continue
        host = root / entry.path[2:]
        if entry.kind == "file":
            assert member.isfile()
            assert member.size == host.stat().st_size
        elif entry.kind == "hardlink":
            assert member.islnk()
            assert os.path.samefile(root / member.linkname[2:], host)
        elif entry.kind == "symlink":
            assert member.issym()
            assert member.linkname == os.readlink(host)
        else:
            assert member.isdir()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive:
            if member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                assert extracted.read() == (root / member.name[2:]).read_bytes()


def check_with_gnu_tar(archive: Path, entries: list[Entry], root: Path, out: Path) -> None:
    listing = subprocess.run(["tar", "-tvf", archive], capture_output=True, check=False)
    assert (listing.returncode, listing.stderr) == (0, b"")
    assert len(listing.stdout.splitlines()) == len(entries)
    extract = subprocess.run(["tar", "-xpf", archive, "-C", out], capture_output=True, check=False)
    assert (extract.returncode, extract.stderr) == (0, b"")
    assert snapshot(out / "t") == snapshot(root)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), chunk_size=st.sampled_from([512, 4096, 1 << 20]))
def test_generated_trees_read_back_by_tarfile_and_gnu_tar(tree: Tree, chunk_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "root", Path(tmp) / "out"
        root.mkdir()
        out.mkdir()
        tree.write(root)
        entries = walk([Source(root, "/t")])
        chunks = list(tar_stream(entries, TarOptions(chunk_size=chunk_size)))
        assert all(type(chunk) is bytes for chunk in chunks)
        data = b"".join(chunks)
        assert len(data) % 512 == 0
        assert data.endswith(END)
        check_with_tarfile(data, entries, root)
        archive = Path(tmp) / "layer.tar"
        archive.write_bytes(data)
        check_with_gnu_tar(archive, entries, root, out)


# --- headers --------------------------------------------------------------------------------


def file_entry(path: str, size: int = 0, **kwargs: object) -> Entry:
    fields: dict[str, object] = {"mode": 0o644, "mtime": 0.0, "source": None, **kwargs}
    return Entry(path, "file", size=size, **fields)  # type: ignore[arg-type]


def test_short_ascii_path_is_one_ustar_block() -> None:
    header = encode_header(file_entry("app/main.py", 10, mode=0o4755))
    assert len(header) == 512
    assert header[257:265] == b"ustar\x0000"
    assert header[265:329] == bytes(64)  # no user or group name
    member = first_member(header + bytes(512) + END)
    assert (member.name, member.size, member.mode, member.type) == (
        "app/main.py",
        10,
        0o4755,
        tarfile.REGTYPE,
    )


def test_long_ascii_path_splits_into_prefix_and_name() -> None:
    path = "p" * 150 + "/" + "n" * 100
    header = encode_header(file_entry(path))
    assert len(header) == 512  # no PAX header needed
    assert header[345:500].rstrip(b"\0") == b"p" * 150
    assert first_member(header + END).name == path


@pytest.mark.parametrize(
    "path",
    [
        "n" * 101,  # no '/' to split at
        "p" * 156 + "/" + "n" * 10,  # prefix too long
        "p/" + "n" * 101,  # name part too long
        "d" * 300 + "/" + "e" * 300,
        "é",  # not ASCII
        "app/日本語/ファイル.txt",
    ],
)
def test_paths_ustar_cannot_hold_get_a_pax_record(path: str) -> None:
    header = encode_header(file_entry(path))
    assert len(header) > 512
    assert header[156:157] == b"x"
    assert header[:11] == b"PaxHeaders/"
    member = first_member(header + END)
    assert member.name == path
    assert member.pax_headers["path"] == path


def test_directory_names_end_with_a_slash_even_when_split() -> None:
    path = "p" * 120 + "/" + "d" * 99  # with the '/' the name part is exactly 100 bytes
    header = encode_header(Entry(path, "dir", 0o1777, 0, 0.0, None))
    assert len(header) == 512
    assert header[:100] == b"d" * 99 + b"/"
    assert header[156:157] == b"5"
    member = first_member(header + END)
    assert (member.name, member.mode, member.isdir()) == (path, 0o1777, True)


@pytest.mark.parametrize("length", range(80, 1100, 7))
def test_pax_record_lengths_around_digit_boundaries(length: int) -> None:
    path = "é" * (length // 2) + "x" * (length % 2)
    member = first_member(encode_header(file_entry(path)) + END)
    assert member.name == path


def test_long_or_non_ascii_link_targets_get_a_pax_linkpath() -> None:
    for target in ["t" * 100, "t" * 101, "../" + "é" * 200, "ünïcode"]:
        header = encode_header(Entry("l", "symlink", 0o777, 0, 0.0, None, target))
        member = first_member(header + END)
        assert (member.issym(), member.linkname) == (True, target)
        assert ("linkpath" in member.pax_headers) == (
            len(target.encode()) > 100 or len(target) != len(target.encode())
        )


def test_hardlink_header() -> None:
    header = encode_header(Entry("b", "hardlink", 0o755, 0, 0.0, None, "a"))
    member = first_member(header + END)
    assert (member.islnk(), member.linkname, member.size) == (True, "a", 0)


def test_size_of_8_gib_or_more_goes_to_pax() -> None:
    limit = 0o77777777777
    assert len(encode_header(file_entry("f", limit))) == 512
    header = encode_header(file_entry("big", 9 * GIB))
    assert b" size=9663676416\n" in header
    assert header[-512:][124:136] == b"00000000000\x00"  # the ustar field says 0
    member = first_member(header + END)
    assert member.size == 9 * GIB
    assert member.pax_headers["size"] == str(9 * GIB)


def test_sparse_file_over_8_gib_walks_and_starts_to_stream(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as handle:
        handle.truncate(9 * GIB)
    entries = walk([Source(big, "/big")])
    assert entries[-1].size == 9 * GIB
    stream = tar_stream(entries, TarOptions(chunk_size=1 << 16))
    head = next(stream) + next(stream)
    member = first_member(head)
    assert (member.name, member.size) == ("big", 9 * GIB)
    stream.close()
    assert str(big) not in _open_files()


def test_owner_ids() -> None:
    entry = file_entry("f", uid=1234, gid=3_000_000)
    assert first_member(encode_header(entry) + END).uid == 0
    header = encode_header(entry, TarOptions(keep_owner=True))
    member = first_member(header + END)
    assert (member.uid, member.gid) == (1234, 3_000_000)
    assert set(member.pax_headers) == {"gid"}


@pytest.mark.parametrize(
    ("mtime", "pax", "read_back"),
    [
        (1_700_000_000.0, None, 1_700_000_000),
        (1_700_000_000.25, "1700000000.25", 1_700_000_000.25),
        (-86400.0, "-86400", -86400),
        (-1.5, "-1.5", -1.5),
        (float(0o77777777777 + 1), "8589934592", 0o77777777777 + 1),
        (4.9999999999, None, 5),  # finer than the nanoseconds PAX keeps
    ],
)
def test_real_mtimes_that_ustar_cannot_hold_get_a_pax_record(
    mtime: float, pax: str | None, read_back: float
) -> None:
    header = encode_header(file_entry("f", mtime=mtime), TarOptions(mtime=None))
    assert (len(header) == 512) is (pax is None)
    member = first_member(header + END)
    assert member.pax_headers.get("mtime") == pax
    assert member.mtime == read_back
    fixed = encode_header(file_entry("f", mtime=mtime), TarOptions(mtime=1234))
    assert len(fixed) == 512
    assert first_member(fixed + END).mtime == 1234


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown entry kind"):
        encode_header(Entry("x", "fifo", 0o644, 0, 0.0, None))


# --- the stream -----------------------------------------------------------------------------


def test_archive_is_not_padded_beyond_the_end_blocks() -> None:
    data = tar_bytes([Entry("d", "dir", 0o755, 0, 0.0, None)])
    assert len(data) == 512 + 1024


def test_chunks_batch_small_files_and_split_large_ones(tmp_path: Path) -> None:
    for index in range(40):
        (tmp_path / f"small{index:02d}").write_bytes(b"s" * 700)
    (tmp_path / "zbig").write_bytes(os.urandom(10_000))
    entries = walk([Source(tmp_path, "/")])
    chunks = list(tar_stream(entries, TarOptions(chunk_size=4096)))
    assert all(type(chunk) is bytes for chunk in chunks)
    sizes = [len(chunk) for chunk in chunks]
    # the large file is read in blocks of exactly chunk_size, after a flush of what came before
    assert sizes[-4:-1] == [4096, 4096, 10_000 - 8192]
    assert all(4096 <= size < 4096 + 512 + 1024 for size in sizes[:-5])
    data = b"".join(chunks)
    assert [m.name for m in members(data)] == [e.path for e in entries]
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        extracted = archive.extractfile("zbig")
        assert extracted is not None
        assert extracted.read() == (tmp_path / "zbig").read_bytes()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for index in range(5):
        path = root / f"d{index}" / f"f{index}.txt"
        path.parent.mkdir(parents=True)
        path.write_text(f"content {index}")
    (root / "link").symlink_to("d0/f0.txt")
    return root


def test_same_tree_gives_identical_bytes(tree: Path) -> None:
    first = tar_bytes(walk([Source(tree, "/app")]))
    assert first == tar_bytes(walk([Source(tree, "/app")]))
    for dirpath, _, filenames in os.walk(tree):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (1e9, 1e9 + 0.5))
    assert tar_bytes(walk([Source(tree, "/app")])) == first
    real_times = TarOptions(mtime=None)
    assert tar_bytes(walk([Source(tree, "/app")]), real_times) != first
    before = tar_bytes(walk([Source(tree, "/app")]), real_times)
    os.utime(tree / "d1" / "f1.txt", (2e9, 2e9))
    assert tar_bytes(walk([Source(tree, "/app")]), real_times) != before


@pytest.mark.parametrize("chunk_size", [512, 1 << 20])  # the large-file path and the small one
@pytest.mark.parametrize("change", ["shrink", "grow", "vanish", "empty"])
def test_file_changing_between_walk_and_tar(tree: Path, chunk_size: int, change: str) -> None:
    target = tree / "d2" / "f2.txt"
    target.write_bytes(b"x" * 2000)
    entries = walk([Source(tree, "/app")])
    if change == "shrink":
        os.truncate(target, 1000)
    elif change == "grow":
        with open(target, "ab") as handle:
            handle.write(b"more")
    elif change == "vanish":
        target.unlink()
    else:
        os.truncate(target, 0)
    with pytest.raises(SourceError, match=rf"'{target}' changed while it was being packed; retry"):
        tar_bytes(entries, TarOptions(chunk_size=chunk_size))


def test_file_replaced_by_a_directory(tree: Path) -> None:
    entries = walk([Source(tree, "/app")])
    (tree / "d3" / "f3.txt").unlink()
    (tree / "d3" / "f3.txt").mkdir()  # open() works on a directory, read() does not
    with pytest.raises(SourceError, match=r"f3\.txt' changed while it was being packed"):
        tar_bytes(entries)


def test_file_made_unreadable_between_walk_and_tar() -> None:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        root.chmod(0o755)
        victim = root / "victim"
        victim.write_bytes(b"data")
        os.chown(victim, 65534, 65534)  # so that the unprivileged child may chmod it

        def action() -> str:
            entries = walk([Source(root, "/")])
            victim.chmod(0)
            try:
                tar_bytes(entries)
            except SourceError as err:
                return f"SourceError: {err}"
            return "packed"

        answer = run_unprivileged(action)
    assert answer == f"SourceError: cannot read '{victim}': Permission denied"


def test_keep_owner_reads_ids_from_the_walk(tree: Path) -> None:
    os.chown(tree / "d0" / "f0.txt", 1234, 5678)
    entries = walk([Source(tree, "/app")])
    got = {m.name: m for m in members(tar_bytes(entries, TarOptions(keep_owner=True)))}
    assert (got["app/d0/f0.txt"].uid, got["app/d0/f0.txt"].gid) == (1234, 5678)
    got = {m.name: m for m in members(tar_bytes(entries))}
    assert (got["app/d0/f0.txt"].uid, got["app/d0/f0.txt"].gid) == (0, 0)


def test_stream_closed_early_closes_the_file(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"b" * 8192)
    stream = tar_stream(walk([Source(tmp_path, "/")]), TarOptions(chunk_size=1024))
    next(stream)
    next(stream)
    open_files = _open_files()
    assert str(tmp_path / "big") in open_files
    stream.close()
    assert str(tmp_path / "big") not in _open_files()


def _open_files() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd of the listing itself is gone by now
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_options_validation() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        TarOptions(chunk_size=100)


def test_empty_archive() -> None:
    assert tar_bytes([]) == END
