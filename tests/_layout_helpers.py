"""Helpers shared by the OCI layout and docker-archive tests: tars, blob streams, tools."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from ocibuild._errors import SourceError
from ocibuild.oci import Digest
from ocibuild.oci._layer import BlobStream, LayerDigests


def tar_of(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of regular files (made with tarfile: this is test data)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class ChunkStream(BlobStream):
    """A real blob stream: ``data`` in ``chunk``-sized pieces, digests known only at the end.

    ``fail_after`` raises SourceError after that many chunks, the way a layer whose source file
    vanished mid-read does.
    """

    def __init__(
        self, data: bytes, media_type: str, chunk: int = 1 << 16, fail_after: int | None = None
    ) -> None:
        self._data, self._media_type, self._chunk = data, media_type, chunk
        self._pos, self._count, self._fail_after = 0, 0, fail_after
        self.closed = False

    def __next__(self) -> bytes:
        if self._fail_after is not None and self._count == self._fail_after:
            raise SourceError("source file vanished while being read")
        if self._pos >= len(self._data):
            digest = Digest.of(self._data)
            self.digests = LayerDigests(self._media_type, digest, digest, len(self._data))
            raise StopIteration
        chunk = self._data[self._pos : self._pos + self._chunk]
        self._pos += len(chunk)
        self._count += 1
        return chunk

    def close(self) -> None:
        self.closed = True


def run(*args: str | Path) -> str:
    """Run a real tool; fail the test with its stderr when it fails."""
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{args[0]} failed: {proc.stderr}"
    return proc.stdout


def skopeo(*args: str | Path) -> str:
    return run("skopeo", "--insecure-policy", *args)


def one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    """The error's message, checked to be one non-empty line."""
    text = str(err.value)
    assert text and "\n" not in text
    return text
