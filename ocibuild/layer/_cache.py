"""The layer cache: a fingerprint of a file tree and its build options -> the layer's digests.

With a hit, a layer whose blob the registry already has costs a stat walk and a HEAD request:
nothing is read or compressed. Entries are small JSON files named by fingerprint, written to a
temporary name and renamed into place, so concurrent builds never see half an entry; a corrupt
entry reads as a miss. The cache is an optimisation: when its directory cannot be used it logs
one warning and behaves as if empty.

The fingerprint follows git's index: a file counts as unchanged when its size, mtime, ctime,
inode and device are. ctime matters because tools that restore mtimes (``tar -x``, ``rsync -a``,
``cp -p``) can change content at the same size and mtime, and ctime cannot be set back. A
``touch`` therefore misses, which costs a rebuild but gives the same digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from .._errors import SourceError
from ..oci._digest import Digest
from ..oci._layer import LayerDigests
from ._compress import codec_id
from ._options import LayerOptions
from ._tree import Entry

__all__ = ["DEFAULT_MAX_ENTRIES", "FORMAT_VERSION", "LayerCache", "default_cache_dir"]

# Bump whenever the tar writer or the pipeline would write different bytes for the same input.
FORMAT_VERSION = 1
DEFAULT_MAX_ENTRIES = 4096

_log = logging.getLogger("ocibuild.cache")
_SUFFIX = ".json"
_TMP_PREFIX = ".tmp-"
_TMP_GRACE = 3600.0  # seconds a temporary file may be another build's write in progress


def default_cache_dir() -> Path:
    """``$OCIBUILD_CACHE_DIR``, else ``$XDG_CACHE_HOME/ocibuild``, else ``~/.cache/ocibuild``."""
    explicit = os.environ.get("OCIBUILD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "ocibuild"


class LayerCache:
    """Digests of layers built before, keyed by :meth:`fingerprint`."""

    def __init__(self, root: Path | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.max_entries = max_entries
        self._dir = self.root / "layers"
        self._broken = False

    def __repr__(self) -> str:
        return f"LayerCache({str(self.root)!r})"

    def get(self, fingerprint: str) -> LayerDigests | None:
        """The digests stored for ``fingerprint``, or ``None``: a miss, or an entry that does
        not verify (unreadable, or its checksum disagrees), which is dropped."""
        path = self._path(fingerprint)
        try:
            data = json.loads(path.read_bytes())
            digests = LayerDigests(
                media_type=_text(data["media_type"]),
                digest=Digest.parse(_text(data["digest"])),
                diff_id=Digest.parse(_text(data["diff_id"])),
                size=_count(data["size"]),
            )
            if data["check"] != _checksum(fingerprint, digests):
                raise ValueError("checksum")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            _log.info("layer cache entry %s does not verify; dropping it", path.name)
            self.drop(fingerprint)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # pruning removes the least recently used entries first
        return digests

    def drop(self, fingerprint: str) -> None:
        """Forget ``fingerprint`` (an entry found to be wrong); never raises."""
        with contextlib.suppress(OSError):
            os.unlink(self._path(fingerprint))

    def put(self, fingerprint: str, digests: LayerDigests) -> None:
        """Remember ``digests`` for ``fingerprint``; never raises for an unusable cache."""
        if self._broken:
            return
        data = {
            "media_type": digests.media_type,
            "digest": str(digests.digest),
            "diff_id": str(digests.diff_id),
            "size": digests.size,
            "check": _checksum(fingerprint, digests),
        }
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = _new_temp(self._dir)
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(data, out)
                os.replace(tmp, self._path(fingerprint))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            if len(os.listdir(self._dir)) > self.max_entries:  # one listdir per built layer
                self.prune(self.max_entries)
        except OSError as err:
            self._broken = True
            _log.warning(
                "layer cache %s cannot be used (%s); building without it. Set "
                "OCIBUILD_CACHE_DIR to a writable directory to cache layer digests",
                self.root,
                err.strerror or err,
            )

    def prune(self, max_entries: int | None = None, older_than: float | None = None) -> int:
        """Remove entries unused for ``older_than`` seconds, then the oldest beyond ``max_entries``.

        Returns how many entries were removed.
        """
        try:
            listing = list(os.scandir(self._dir))
        except OSError:
            return 0
        now = time.time()
        aged: list[tuple[float, str]] = []
        doomed: set[str] = set()
        for item in listing:
            with contextlib.suppress(OSError):
                mtime = item.stat().st_mtime
                if not item.name.startswith(_TMP_PREFIX):
                    aged.append((mtime, item.path))
                elif now - mtime > _TMP_GRACE:
                    doomed.add(item.path)  # left by a build that died mid-write
        aged.sort(reverse=True)  # most recently used first
        if older_than is not None:
            doomed.update(path for mtime, path in aged if now - mtime > older_than)
        if max_entries is not None:
            doomed.update(path for _, path in aged[max_entries:])
        removed = 0
        for path in sorted(doomed):
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed += 1
        return removed

    @staticmethod
    def fingerprint(
        entries: Iterable[Entry],
        options: LayerOptions,
        *,
        contents: Mapping[str, bytes] | None = None,
    ) -> str:
        """A sha256 over everything the layer's bytes depend on, and the state of its files.

        ``contents`` holds in-memory files by in-image path (entries without a host source).
        Host files are identified by the stat fields the walk recorded (``Entry.state``), or
        stat'ed here when an entry was made without them.
        """
        hasher = hashlib.sha256()
        codec = codec_id(options.compression, options.level)
        settings = (FORMAT_VERSION, codec, options.media_type, options.mtime, options.keep_owner)
        hasher.update(repr(settings).encode())
        real_times = options.mtime is None
        for entry in entries:
            fields: tuple[object, ...] = (entry.path, entry.kind, entry.mode, entry.size)
            fields += (entry.linkname, entry.source)
            if options.keep_owner:
                fields += (entry.uid, entry.gid)
            if real_times:
                fields += (entry.mtime,)
            if entry.source is not None:
                fields += entry.state or _file_state(entry.source)
            elif entry.kind == "file":
                fields += (hashlib.sha256((contents or {})[entry.path]).hexdigest(),)
            hasher.update(repr(fields).encode("utf-8", "surrogateescape") + b"\n")
        return hasher.hexdigest()

    def _path(self, fingerprint: str) -> Path:
        if not fingerprint.isalnum():
            raise ValueError(f"invalid cache fingerprint {fingerprint!r}")
        return self._dir / (fingerprint + _SUFFIX)


def _file_state(source: str) -> tuple[int, ...]:
    """What changes whenever a file's content may have: git's index fields."""
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise SourceError(f"'{source}' vanished while the source was being read") from None
    except OSError as err:
        raise SourceError(f"cannot read '{source}': {err.strerror}") from err
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _checksum(fingerprint: str, digests: LayerDigests) -> str:
    """What an entry's fields hash to: a damaged or edited entry no longer matches it."""
    fields = (fingerprint, digests.media_type, digests.digest, digests.diff_id, digests.size)
    return hashlib.sha256("\0".join(map(str, fields)).encode()).hexdigest()


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("expected a size")
    return value


def _new_temp(directory: Path) -> tuple[int, str]:
    """A new private file in ``directory``, as ``tempfile.mkstemp`` makes one: importing
    tempfile (and the ``random`` it needs) would cost every cache miss a visible part of a
    small append's start-up."""
    while True:
        path = directory / f"{_TMP_PREFIX}{os.urandom(6).hex()}{_SUFFIX}"
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), str(path)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
