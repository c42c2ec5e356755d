"""Layer tarballs that end badly, and tarballs read from pipes and FIFOs."""

from __future__ import annotations

import errno
import gzip
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zstandard

from ocibuild._errors import TarballError
from ocibuild.image import Image, write
from ocibuild.layer import TarballLayer
from tests._bounded import bounded

OCIBUILD = [sys.executable, "-m", "ocibuild"]


@pytest.fixture
def gnu_tar(tmp_path: Path) -> Path:
    """A GNU tar of a small tree: a directory, a 3000-byte file, a short one."""
    src = tmp_path / "tree"
    (src / "dir").mkdir(parents=True)
    (src / "dir/big.bin").write_bytes(os.urandom(3000))
    (src / "small.txt").write_bytes(b"hello\n")
    out = tmp_path / "tree.tar"
    subprocess.run(["tar", "--sort=name", "-cf", str(out), "-C", str(src), "."], check=True)
    return out


def members_end(tar: bytes) -> int:
    """The offset of the end-of-archive zero block."""
    pos = 0
    while tar[pos : pos + 512] != bytes(512):
        size = int(tar[pos + 124 : pos + 135], 8)
        pos += 512 + -(-size // 512) * 512
    return pos


def stream(path: Path, **kwargs: object) -> bytes:
    with TarballLayer(path, **kwargs).compressed() as blob:  # type: ignore[arg-type]
        return b"".join(blob)


def damaged(tmp_path: Path, data: bytes, codec: str) -> Path:
    path = tmp_path / f"damaged.{codec}"
    if codec == "gzip":
        data = gzip.compress(data, mtime=0)
    elif codec == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


CUTS = {
    "mid-member": lambda tar: tar[: 512 * 4 + 100],
    "between members": lambda tar: tar[: members_end(tar)],
    "inside a header": lambda tar: tar[: 512 * 2 + 200],
    "data after the end": lambda tar: tar[: members_end(tar) + 1024] + b"trailing junk",
    "a zero block, then a member": lambda tar: bytes(512) + tar,
}


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("recompress", [False, True])
def test_a_tar_that_does_not_end_well_is_refused(
    tmp_path: Path, gnu_tar: Path, codec: str, cut: str, recompress: bool
) -> None:
    path = damaged(tmp_path, CUTS[cut](gnu_tar.read_bytes()), codec)
    listed = subprocess.run(["tar", "-tf", str(path)], capture_output=True)
    # GNU tar fails only mid-member; the rest it reads without an error status: a file cut
    # between members or inside a header loses members unseen, and what follows a zero block
    # is ignored by GNU tar while Go's archive/tar (containerd, Docker) refuses it. So the
    # end-of-archive block is required, and nothing but zeros after it.
    assert (listed.returncode != 0) is (cut == "mid-member")
    kwargs = {"compression": "zstd" if codec != "zstd" else "gzip"} if recompress else {}
    with pytest.raises(TarballError) as err:
        stream(path, **kwargs)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert "truncated" in message or "corrupt" in message or "not a tar" in message


def test_the_truncation_message_names_the_member_and_offset(tmp_path: Path, gnu_tar: Path) -> None:
    path = damaged(tmp_path, gnu_tar.read_bytes()[: 512 * 4 + 100], "none")
    with pytest.raises(TarballError) as err:
        stream(path)
    assert "it ends at byte 2148, inside the data of the member 'dir/big.bin'" in str(err.value)


@pytest.mark.parametrize(
    "ending",
    [
        lambda tar: tar,  # GNU tar's own: two zero blocks and record padding
        lambda tar: tar[: members_end(tar) + 512],  # a lone zero block (tar warns, reads it)
        lambda tar: tar[: members_end(tar) + 1024],
    ],
)
def test_good_endings_are_accepted(tmp_path: Path, gnu_tar: Path, ending: object) -> None:
    path = damaged(tmp_path, ending(gnu_tar.read_bytes()), "none")  # type: ignore[operator]
    assert stream(path) == path.read_bytes()


def test_a_truncated_tarball_leaves_no_blob_in_the_layout(tmp_path: Path, gnu_tar: Path) -> None:
    path = damaged(tmp_path, gnu_tar.read_bytes()[: members_end(gnu_tar.read_bytes())], "none")
    layout = tmp_path / "layout"
    with pytest.raises(TarballError, match="truncated"):
        write(Image.scratch().append(TarballLayer(path)), f"oci:{layout}:v1")
    blobs = layout / "blobs" / "sha256"
    stored = [p.read_bytes() for p in blobs.iterdir()] if blobs.exists() else []
    assert path.read_bytes() not in stored
    index = layout / "index.json"
    assert not index.exists() or json.loads(index.read_bytes())["manifests"] == []


# --- pipes and FIFOs --------------------------------------------------------------------------


def umoci_files(layout: Path, tmp_path: Path) -> list[str]:
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)],
        check=True,
        capture_output=True,
    )
    rootfs = bundle / "rootfs"
    return sorted(str(p.relative_to(rootfs)) for p in rootfs.rglob("*"))


def test_append_reads_a_process_substitution(tmp_path: Path, gnu_tar: Path) -> None:
    """crane's documented ``append -f <(tar -cf - dir)`` form."""
    tree, layout = gnu_tar.parent / "tree", tmp_path / "out"
    to = shlex.quote(f"oci:{layout}:v1")
    substitution = f"<(tar -cf - -C {shlex.quote(str(tree))} .)"
    base = " ".join(map(shlex.quote, OCIBUILD))
    command = f"{base} append --base scratch --to {to} -f {substitution}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert umoci_files(layout, tmp_path) == ["dir", "dir/big.bin", "small.txt"]


def test_a_fifo_is_opened_only_when_the_layer_is_written(tmp_path: Path, gnu_tar: Path) -> None:
    fifo = tmp_path / "layer.fifo"
    os.mkfifo(fifo)
    layer = bounded(5, lambda: TarballLayer(fifo))  # no writer yet: this must not block
    data = gzip.compress(gnu_tar.read_bytes(), mtime=0)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    layout = tmp_path / "out"
    bounded(60, lambda: write(Image.scratch().append(layer), f"oci:{layout}:v1"))
    writer.join(5)
    assert umoci_files(layout, tmp_path) == ["dir", "dir/big.bin", "small.txt"]
    digests = layer.known()
    assert digests is not None and digests.size == len(data)


def test_the_cli_waits_for_a_fifo_writer(tmp_path: Path, gnu_tar: Path) -> None:
    fifo, layout = tmp_path / "layer.fifo", tmp_path / "out"
    os.mkfifo(fifo)
    cli = subprocess.Popen(
        [*OCIBUILD, "append", "--base", "scratch", "--to", f"oci:{layout}:v1", "-f", str(fifo)],
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = _open_writer(fifo, cli)
    with os.fdopen(writer, "wb") as f:
        f.write(gnu_tar.read_bytes())
    _, stderr = cli.communicate(timeout=120)
    assert cli.returncode == 0, stderr
    assert umoci_files(layout, tmp_path) == ["dir", "dir/big.bin", "small.txt"]


def _open_writer(fifo: Path, reader: subprocess.Popen[str]) -> int:
    """The FIFO's write end, once ``reader`` has opened the other (a failed reader fails this)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and reader.poll() is None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as err:
            if err.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            time.sleep(0.05)
            continue
        os.set_blocking(fd, True)
        return fd
    pytest.fail(f"ocibuild never opened the FIFO: {reader.communicate()[1]}")


def test_a_pipe_is_read_once_and_can_be_streamed_again(tmp_path: Path, gnu_tar: Path) -> None:
    data = gnu_tar.read_bytes()
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    layer = TarballLayer(f"/proc/self/fd/{read_end}", compression="zstd")
    first = bounded(30, lambda: b"".join(layer.compressed()))
    second = bounded(30, lambda: b"".join(layer.compressed()))  # as a retried upload does
    os.close(read_end)
    assert first == second
    assert zstandard.ZstdDecompressor().stream_reader(first).read() == data


def test_a_truncated_pipe_fails_the_stream(tmp_path: Path, gnu_tar: Path) -> None:
    tree = gnu_tar.parent / "tree"
    command = f"tar -cf - -C {tree} . | head -c 2148"
    with subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE) as producer:
        assert producer.stdout is not None
        layer = TarballLayer(f"/proc/self/fd/{producer.stdout.fileno()}")
        with pytest.raises(TarballError, match="truncated: it ends at byte 2148"):
            bounded(30, lambda: b"".join(layer.compressed()))
