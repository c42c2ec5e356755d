"""``TarballLayer(strict=True)`` and ``--tarball-strict``: hostile members are refused as the
layer streams; without it they pass through byte for byte, as crane passes them.

Each tarball is made with Python's tarfile and holds one hostile member after a harmless one,
so a check that only looked at the first header would miss it.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild._errors import TarballError
from ocibuild.cli._main import main
from ocibuild.image import Image, write
from ocibuild.layer import TarballLayer

Add = Callable[[tarfile.TarFile], None]


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> Add:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        for key, value in fields.items():
            setattr(info, key, value)
        data = b"data" if kind == tarfile.REGTYPE else b""
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    return add


def make_tar(
    path: Path, *adds: Add, fmt: int = tarfile.PAX_FORMAT, pax: dict[str, str] | None = None
) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax or {}) as tar:
        member("ok/file")(tar)
        for add in adds:
            add(tar)
    path.write_bytes(buf.getvalue())
    return path


SYMLINK, HARDLINK = tarfile.SYMTYPE, tarfile.LNKTYPE
LONG = "d/" * 60

# (id, members, what the one-line error must say); the refused member is the last one.
HOSTILE: list[tuple[str, list[Add], str, str]] = [
    ("dotdot", [member("../escape")], "'../escape'", "'..' in its path"),
    ("dotdot-inside", [member("ok/../../escape")], "'ok/../../escape'", "'..' in its path"),
    ("absolute", [member("/etc/cron.d/x")], "'/etc/cron.d/x'", "absolute path"),
    ("pax-long-name", [member(LONG + "../../x")], "../../x", "'..' in its path"),
    ("hardlink-out", [member("h", HARDLINK, linkname="../../etc/shadow")], "'h'", "hard link"),
    ("hardlink-abs", [member("h", HARDLINK, linkname="/etc/shadow")], "'h'", "hard link"),
    ("symlink-climbs", [member("a/s", SYMLINK, linkname="../../x")], "'a/s'", "above the"),
    (
        "beneath-symlink",
        [member("s", SYMLINK, linkname="/etc"), member("s/passwd")],
        "'s/passwd'",
        "beneath 's'",
    ),
    (
        "hardlink-beneath-symlink",
        [member("s", SYMLINK, linkname="/etc"), member("h", HARDLINK, linkname="s/shadow")],
        "'h'",
        "beneath 's'",
    ),
    ("chardev", [member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)], "", "device"),
    ("blockdev", [member("dev/sda", tarfile.BLKTYPE, devmajor=8)], "'dev/sda'", "block device"),
    ("fifo", [member("pipe", tarfile.FIFOTYPE)], "'pipe'", "a FIFO"),
    ("setuid", [member("bin/su", mode=0o4755)], "'bin/su'", "setuid or setgid bit (mode 4755)"),
    ("setgid-dir", [member("srv", tarfile.DIRTYPE, mode=0o2775)], "'srv/'", "mode 2775"),
    ("sparse", [member("sp", tarfile.GNUTYPE_SPARSE)], "'sp'", "type 'S'"),
]
ACCEPTED: list[tuple[str, list[Add]]] = [
    ("absolute-symlink", [member("etc/localtime", SYMLINK, linkname="/usr/share/zoneinfo/UTC")]),
    ("symlink-up-inside", [member("a/b/s", SYMLINK, linkname="../../c")]),
    ("hardlink-inside", [member("h", HARDLINK, linkname="ok/file")]),
    ("sticky-dir", [member("tmp", tarfile.DIRTYPE, mode=0o1777)]),
    ("dot-names", [member("./ok/./x")]),
]


@pytest.fixture
def hostile(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str, str]:
    _, adds, name, why = request.param
    return make_tar(tmp_path / "evil.tar", *adds), name, why


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h[0] for h in HOSTILE], indirect=True)
def test_strict_refuses_with_one_line_and_writes_nothing(
    hostile: tuple[Path, str, str],
    tmp_path: Path,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, name, why = hostile
    out = tmp_path / "out"
    code = main(["append", "--tarball-strict", "--tarball", str(path), "--to", f"oci:{out}:t"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1, err
    assert f"layer tarball '{path}'" in err
    assert name in err and why in err, err
    assert "strict check refuses it" in err
    assert not out.exists()


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h[0] for h in HOSTILE], indirect=True)
def test_the_default_passes_them_through(hostile: tuple[Path, str, str], tmp_path: Path) -> None:
    path, _, _ = hostile
    out = tmp_path / "out"
    write(Image.scratch().append(TarballLayer(path)), f"oci:{out}:t")
    index = json.loads((out / "index.json").read_text())
    manifest = json.loads(blob(out, index["manifests"][0]["digest"]).decode())
    layer = blob(out, manifest["layers"][0]["digest"])
    assert layer == path.read_bytes()  # byte for byte
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar, tarfile.open(path) as original:
        assert [m.get_info() for m in tar.getmembers()] == [
            m.get_info() for m in original.getmembers()
        ]


@pytest.mark.parametrize("adds", [a[1] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_strict_keeps_what_is_harmless(adds: list[Add], tmp_path: Path) -> None:
    path = make_tar(tmp_path / "fine.tar", *adds)
    layer = TarballLayer(path, strict=True)
    assert b"".join(layer.uncompressed()) == path.read_bytes()


def test_strict_checks_inside_compressed_tarballs_and_when_recompressing(tmp_path: Path) -> None:
    plain = make_tar(tmp_path / "evil.tar", member("../x"))
    packed = tmp_path / "evil.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for layer in (
        TarballLayer(packed, strict=True),
        TarballLayer(packed, strict=True, compression="zstd"),
        TarballLayer(plain, strict=True, compression="gzip"),
    ):
        with pytest.raises(TarballError, match=r"member '\.\./x' has '\.\.' in its path"):
            b"".join(layer.compressed())


def test_strict_refuses_a_global_pax_header_that_renames_members(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "g.tar", pax={"path": "../../x"})
    with pytest.raises(TarballError, match="global pax header sets 'path'"):
        b"".join(TarballLayer(path, strict=True).uncompressed())


def test_gnu_long_names_are_checked_too(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "gnu.tar", member(LONG + "../../../x"), fmt=tarfile.GNU_FORMAT)
    with pytest.raises(TarballError, match=r"'\.\.' in its path"):
        b"".join(TarballLayer(path, strict=True).uncompressed())


def test_a_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "nl.tar", member("a\n/../../x"))
    with pytest.raises(TarballError) as caught:
        b"".join(TarballLayer(path, strict=True).uncompressed())
    assert "\n" not in str(caught.value) and r"a\n" in str(caught.value)


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
