"""`ocibuild export`: the flattened filesystem, whiteouts applied, checked against umoci."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import BaseImage, BaseInRegistry, run, umoci_unpack

from ._util import ocibuild


def _tar(path: Path, members: list[tuple[str, bytes | None]]) -> Path:
    """A layer tarball: ``(name, data)`` files, ``(name/, None)`` directories,
    ``(name, b"->target")`` symlinks."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif data.startswith(b"->"):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:].decode()
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def layered(tmp_path: Path) -> str:
    """Three layers with every whiteout case, in an OCI layout: ``oci:DIR:top``."""
    lower = _tar(tmp_path / "1.tar", [
        ("etc/", None), ("etc/conf", b"v1"), ("etc/old", b"old"),
        ("gone/", None), ("gone/a", b"a"), ("gone/sub/", None), ("gone/sub/b", b"b"),
        ("opq/", None), ("opq/x", b"x"), ("opq/deep/", None), ("opq/deep/y", b"y"),
        ("dirfile/", None), ("dirfile/inner", b"inner"), ("link", b"->etc/conf"),
        ("big", os.urandom(3 << 20)),
    ])  # fmt: skip
    middle = _tar(tmp_path / "2.tar", [
        ("etc/", None), ("etc/conf", b"v2"), ("etc/.wh.old", b""),
        (".wh.gone", b""), ("opq/", None), ("opq/.wh..wh..opq", b""), ("opq/z", b"z"),
        ("dirfile", b"now a file"),
    ])  # fmt: skip
    upper = _tar(tmp_path / "3.tar", [
        ("etc/conf", b"v3"), ("gone/", None), ("gone/new", b"back"), ("link", b"->etc/other"),
    ])  # fmt: skip
    layout = tmp_path / "layout"
    ocibuild("append", "--tarball", str(lower), "--to", f"oci:{layout}:1")
    ocibuild(
        "append", "--base", f"oci:{layout}:1", "--tarball", str(middle), "--to", f"oci:{layout}:2"
    )
    ocibuild(
        "append", "--base", f"oci:{layout}:2", "--tarball", str(upper), "--to", f"oci:{layout}:top"
    )
    return f"oci:{layout}:top"


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root``: a file's bytes, a link's target, or "dir"."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            out[rel] = "-> " + os.readlink(path)
        elif stat.S_ISDIR(mode):
            out[rel] = "dir"
        else:
            out[rel] = path.read_bytes().hex()[:64] + f" {path.stat().st_size}"
    return out


def _extract(tar: Path, where: Path) -> Path:
    where.mkdir()
    run(["tar", "-xf", tar, "-C", where])  # GNU tar reads it: a valid archive
    return where


def test_export_applies_whiteouts_as_umoci_does(layered: str, tmp_path: Path) -> None:
    out = tmp_path / "rootfs.tar"
    ocibuild("export", layered, "-o", str(out))
    exported = _tree(_extract(out, tmp_path / "exported"))

    layout, _, tag = layered[len("oci:") :].rpartition(":")
    unpacked = _tree(umoci_unpack(layout, tag, tmp_path / "bundle"))
    assert exported == unpacked

    assert bytes.fromhex(exported["etc/conf"].split()[0]) == b"v3"  # the top layer wins
    assert "etc/old" not in exported  # .wh.old
    assert sorted(p for p in exported if p.startswith("gone")) == ["gone", "gone/new"]
    assert sorted(p for p in exported if p.startswith("opq")) == ["opq", "opq/z"]  # opaque
    assert exported["dirfile"].endswith(" 10") and "dirfile/inner" not in exported
    assert exported["link"] == "-> etc/other"
    assert not [p for p in exported if ".wh." in p]


def test_export_to_stdout_streams_the_same_tar(layered: str, tmp_path: Path) -> None:
    ocibuild("export", layered, "-o", str(tmp_path / "file.tar"))
    piped = subprocess.run(
        [sys.executable, "-m", "ocibuild", "export", layered], capture_output=True, check=True
    ).stdout
    assert piped == (tmp_path / "file.tar").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(piped)) as tar:
        names = tar.getnames()
    assert len(names) == len(set(names))  # each path once: nothing left for "last wins"


def test_export_of_a_registry_image_matches_umoci(
    base_in_registry: BaseInRegistry, base_layout: BaseImage, tmp_path: Path
) -> None:
    out = tmp_path / "base.tar"
    ocibuild("export", base_in_registry.oci, "-o", str(out))
    exported = _tree(_extract(out, tmp_path / "exported"))
    unpacked = _tree(umoci_unpack(base_layout.path, base_layout.tag, tmp_path / "bundle"))
    assert exported == unpacked and len(exported) > 5


def test_export_of_a_corrupt_layer_fails_and_writes_nothing(layered: str, tmp_path: Path) -> None:
    layout = Path(layered[len("oci:") :].rpartition(":")[0])
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    biggest = blobs[-1]  # the lower layer, with 3 MiB of random bytes
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    out = tmp_path / "never.tar"
    proc = ocibuild("export", layered, "-o", str(out), check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "ocibuild: error:" in proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ocibuild-export-")]
