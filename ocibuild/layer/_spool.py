"""The bytes of a layer tarball path: a regular file, or a pipe that can be read only once.

A regular file is opened afresh for every stream. Anything else (a pipe such as bash's
``<(tar -cf - dir)``, a named FIFO, ``/dev/stdin``) is opened once, on its first read, never
when the layer object is made: opening a FIFO blocks until a writer opens the other end. What
the pipe gives is spooled as it is read (in memory up to a few MiB, then in an unlinked temp
file), so the layer can be streamed again, when a registry loses an upload session, without
reading the pipe twice.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from collections.abc import Generator
from pathlib import Path
from typing import IO

from .._errors import TarballError

__all__ = ["TarballInput"]

_READ_SIZE = 1 << 20
_IN_MEMORY = 8 << 20  # a spool larger than this moves to a temp file


class TarballInput:
    """Chunks of the file at ``path``, as often as asked for, reading a pipe only once."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label  # the path as errors print it
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            raise self._error(err) from err
        if stat.S_ISDIR(mode):
            raise TarballError(f"layer tarball '{label}' is a directory, not a tar file")
        self.regular = stat.S_ISREG(mode)
        self._lock = threading.Lock()
        self._pipe: IO[bytes] | None = None
        self._spool: IO[bytes] | None = None
        self._spooled = 0  # bytes read from the pipe, all of them in the spool
        self._drained = False

    def chunks(self, size: int = _READ_SIZE) -> Generator[bytes, None, None]:
        """The file's bytes from the start, in chunks of at most ``size``."""
        if self.regular:
            yield from self._file_chunks(size)
            return
        offset = 0
        while chunk := self._pipe_chunk(offset, size):
            offset += len(chunk)
            yield chunk

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer if the file is shorter)."""
        got = b""
        reader = self.chunks(size)
        try:
            for chunk in reader:
                got += chunk
                if len(got) >= size:
                    break
        finally:
            reader.close()
        return got[:size]

    def _file_chunks(self, size: int) -> Generator[bytes, None, None]:
        try:
            with open(self.path, "rb", buffering=0) as f:
                while chunk := f.read(size):
                    yield chunk
        except OSError as err:
            raise self._error(err) from err

    def _pipe_chunk(self, offset: int, size: int) -> bytes:
        """The bytes at ``offset``: from the spool if read before, else the pipe's next."""
        with self._lock:
            spool = self._spool
            if spool is None:
                spool = self._spool = tempfile.SpooledTemporaryFile(_IN_MEMORY)  # noqa: SIM115
            if offset < self._spooled:
                spool.seek(offset)
                return spool.read(min(size, self._spooled - offset))
            if self._drained:
                return b""
            try:
                if self._pipe is None:
                    self._pipe = open(self.path, "rb", buffering=0)  # noqa: SIM115
                chunk = self._pipe.read(size) or b""
            except OSError as err:
                raise self._error(err) from err
            if not chunk:
                self._drained = True
                self._pipe.close()
                return b""
            spool.seek(self._spooled)
            spool.write(chunk)
            self._spooled += len(chunk)
            return chunk

    def _error(self, err: OSError) -> TarballError:
        return TarballError(f"cannot read layer tarball '{self.label}': {err.strerror}")
