"""Making files appear whole: temp files held under a lock, and reclaiming those of dead writers.

A writer creates its temp file (or staging directory) with a ``.tmp-`` name and holds an
exclusive ``flock`` on it until the final ``rename``. A killed writer's lock dies with it, so
a later writer can tell a stale temp file from a live one without guessing from process ids
(which other PID namespaces sharing the disk would get wrong): it is stale when nobody holds
its lock and it is older than :data:`STALE_AFTER` (a fresh file may not be locked yet).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["STALE_AFTER", "TEMP_PREFIX", "locked_temp_dir", "locked_temp_file", "reclaim_stale"]

TEMP_PREFIX = ".tmp-"
STALE_AFTER = 60.0  # seconds; far longer than between creating a temp file and locking it


def locked_temp_file(directory: Path, prefix: str = TEMP_PREFIX) -> tuple[int, str]:
    """A new temp file in ``directory``, open for writing and locked; rename it before closing."""
    fd, path = tempfile.mkstemp(prefix=prefix, dir=directory)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, path


def locked_temp_dir(parent: Path, prefix: str) -> tuple[int, Path]:
    """A new directory in ``parent`` and an open, locked descriptor of it (close it last)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, path


def reclaim_stale(directory: Path, prefix: str = TEMP_PREFIX) -> int:
    """Remove the temp files and directories of dead writers in ``directory``; how many."""
    removed = 0
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return 0
    now = time.time()
    for name in names:
        path = directory / name
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime < STALE_AFTER:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live writer: skip
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
                removed += 1
            finally:
                os.close(fd)
    return removed
