"""What the context stores share: opening the context, prefixes, whole reads."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import BinaryIO

from ..._errors import InvalidOptionError, SourceError

__all__ = ["normal_prefix", "opened", "read_exact"]


def opened(store: str, context: Path | BinaryIO) -> AbstractContextManager[BinaryIO]:
    """A file to read: ``context`` opened (and closed after), or the caller's stream as is."""
    if isinstance(context, (str, os.PathLike)):
        path = Path(context)
        try:
            return path.open("rb")
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise SourceError(f"{store}: cannot read the build context {path}: {reason}") from None
    return nullcontext(context)


def normal_prefix(store: str, prefix: str | None, default: str) -> str:
    """``prefix`` as a relative directory ending in ``/`` (``""`` for none)."""
    if prefix is None:
        return default
    if not isinstance(prefix, str) or ".." in prefix.split("/"):
        raise InvalidOptionError(f"{store}: prefix {prefix!r} must be a path without '..'")
    prefix = prefix.strip("/")
    return prefix + "/" if prefix else ""


def read_exact(source: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end (a pipe may answer a read with less);
    ``size < 0`` reads to the end."""
    if size < 0:
        return source.read()
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        part = source.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)
