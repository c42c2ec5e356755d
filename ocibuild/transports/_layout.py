"""OCI image layout directories (``oci:PATH[:TAG]``) as an image source and an image sink.

A layout is ``oci-layout`` + ``index.json`` + ``blobs/<algorithm>/<encoded>``; tags are the
``org.opencontainers.image.ref.name`` annotations of ``index.json`` entries.

Writes never let a layout lie: a blob gets its digest name only after all its bytes were
written to a ``.tmp-*`` file beside it and checked, and ``index.json`` is replaced atomically
at :meth:`LayoutSink.commit`, after checking that everything the new entry points to is present.
A process that dies mid-write leaves at most stray ``.tmp-*`` files and unreferenced blobs.
Blobs are not fsynced: the guarantee covers a dying process, not a power cut, because syncing
every layer would put the disk's write speed on the build's hot path.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._errors import (
    DigestMismatchError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    TransportError,
)
from ..oci import Descriptor, Digest, Index, Manifest, Platform, describe
from ..oci import media_types as mt
from ..oci._blobs import BytesStream
from ..oci._config import dumps
from ..oci._fields import (
    LIST,
    MAX_DOCUMENT,
    STRING,
    STRING_MAP,
    Check,
    check_descriptor,
    check_fields,
    load_json,
)
from ..oci._layer import BlobStream, Layer, LayerDigests
from ._base import BlobOutcome
from ._staging import TEMP_PREFIX, locked_temp_dir, locked_temp_file, reclaim_stale

__all__ = [
    "REF_NAME",
    "FileChunks",
    "LayoutSink",
    "LayoutSource",
    "check_written",
    "layout_tags",
    "write_atomic",
]

REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20
# Writing to a local disk is cheap next to producing a layer; the producers' CPUs are the limit.
_WRITERS = 4
# The image-spec grammar of ref.name values: components joined by separators, '/'-separated.
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME = re.compile(rf"^{_REF_COMPONENT}(?:/{_REF_COMPONENT})*$")


class FileChunks(Iterator[bytes]):
    """``length`` bytes of a file from ``offset``, in 1 MiB chunks; the file closes at the end."""

    def __init__(self, path: Path, offset: int = 0, length: int | None = None) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed at the end or by close()
        self._file.seek(offset)
        self._left = length

    def __next__(self) -> bytes:
        want = _CHUNK if self._left is None else min(_CHUNK, self._left)
        chunk = self._file.read(want) if want and not self._file.closed else b""
        if not chunk:
            self.close()
            raise StopIteration
        if self._left is not None:
            self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        self._file.close()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never a mix."""
    fd, tmp = locked_temp_file(path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; layouts are shared read-only content
            os.replace(tmp, path)  # while the lock is held: nobody reclaims it as stale
    except BaseException:
        _unlink(tmp)
        raise


class _Layout:
    """The files of one layout directory, read with checks that name the path and the problem."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def blob_path(self, digest: Digest) -> Path:
        """Where the blob with ``digest`` lives (``Digest`` validation keeps this inside)."""
        return self.root / "blobs" / digest.algorithm / digest.encoded

    def check_header(self) -> None:
        """Raise unless ``oci-layout`` exists and names a 1.x layout version."""
        header = self._read_json("oci-layout", "is not an OCI image layout", _HEADER_FIELDS)
        version = header.get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise TransportError(
                f"{self.root / 'oci-layout'} has imageLayoutVersion {version!r}; "
                "only 1.x layouts are supported"
            )

    def read_index(self) -> dict[str, Any]:
        """The parsed ``index.json`` object, its fields and entries of the right types."""
        index = self._read_json("index.json", "is a broken OCI layout", _INDEX_FIELDS)
        where = self.root / "index.json"
        with _as_transport_error():
            for number, entry in enumerate(index.get("manifests") or ()):
                check_descriptor(entry, f"{where} manifests[{number}]")
        return index

    def _read_json(self, name: str, if_missing: str, fields: dict[str, Check]) -> dict[str, Any]:
        """The JSON object in file ``name``, ``fields`` checked; ``if_missing`` says what the
        layout is without it."""
        path = self.root / name
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_DOCUMENT + 1)
        except FileNotFoundError:
            raise TransportError(f"{self.root} {if_missing}: {name} is missing") from None
        except OSError as err:
            raise TransportError(f"{path} is unreadable: {err.strerror}") from err
        if len(data) > MAX_DOCUMENT:
            raise TransportError(
                f"{path} is larger than {MAX_DOCUMENT >> 20} MiB, which no real {name} is"
            )
        with _as_transport_error():
            obj = load_json(data, str(path))
            if not isinstance(obj, dict):
                raise ManifestError(f"{path} is not a JSON object")
            check_fields(obj, fields, str(path))
        return obj

    def entries(self) -> list[Descriptor]:
        """The descriptors listed in ``index.json``."""
        where = self.root / "index.json"
        out = []
        for number, entry in enumerate(self.read_index().get("manifests") or ()):
            try:
                out.append(Descriptor.from_dict(entry))
            except ManifestError as err:
                raise TransportError(f"{where} manifests[{number}]: {err}") from err
        return out

    def read_blob(self, desc: Descriptor) -> bytes:
        """A whole blob (a manifest, index or config), checked against its descriptor."""
        if desc.size > MAX_DOCUMENT:
            raise TransportError(
                f"OCI layout {self.root} says blob {desc.digest} is {desc.size} bytes; "
                f"manifests, indexes and configs are read whole and may be at most "
                f"{MAX_DOCUMENT >> 20} MiB"
            )
        with self._blob_errors(desc) as path, open(path, "rb") as f:
            data = f.read(desc.size + 1)  # one byte more reveals a blob that is too long
        return desc.verify(data, f"OCI layout file {path}")

    def open_blob(self, desc: Descriptor) -> FileChunks:
        """A stream of a blob's bytes as stored (unverified)."""
        with self._blob_errors(desc) as path:
            return FileChunks(path)

    @contextlib.contextmanager
    def _blob_errors(self, desc: Descriptor) -> Iterator[Path]:
        """The blob's path; reading it there fails with errors naming the layout and the blob."""
        path = self.blob_path(desc.digest)
        try:
            yield path
        except FileNotFoundError:
            raise TransportError(
                f"OCI layout {self.root} lacks blob {desc.digest} ({path})"
            ) from None
        except OSError as err:
            raise TransportError(f"cannot read blob {path}: {err.strerror}") from err

    def has_blob(self, desc: Descriptor) -> bool:
        """Whether the blob file exists with the descriptor's size."""
        try:
            return self.blob_path(desc.digest).stat().st_size == desc.size
        except OSError:
            return False


_HEADER_FIELDS: dict[str, Check] = {"imageLayoutVersion": STRING}
_INDEX_FIELDS: dict[str, Check] = {
    "manifests": LIST,
    "annotations": STRING_MAP,
    "mediaType": STRING,
}


@contextlib.contextmanager
def _as_transport_error() -> Iterator[None]:
    """A layout file that is not what the spec says is a broken layout: a TransportError."""
    try:
        yield
    except ManifestError as err:
        raise TransportError(str(err)) from err


def layout_tags(path: str | Path) -> list[str]:
    """The tags of the layout at ``path``, in ``index.json`` order."""
    layout = _Layout(path)
    if not layout.root.is_dir():
        raise NotFoundError(f"no OCI layout at {layout.root}: not a directory")
    layout.check_header()
    names = (d.annotations.get(REF_NAME) for d in layout.entries())
    return list(dict.fromkeys(name for name in names if name))


def _tags(entries: list[Descriptor]) -> str:
    names = sorted({d.annotations[REF_NAME] for d in entries if REF_NAME in d.annotations})
    return ", ".join(names) if names else "none"


def _spelling(root: Path, tag: str | None) -> str:
    return f"oci:{root}:{tag}" if tag else f"oci:{root}"


class LayoutSource:
    """Reads the image (or index) that one ``index.json`` entry of a layout names."""

    def __init__(self, path: str | Path, tag: str | None = None) -> None:
        self._layout = _Layout(path)
        self._tag = tag
        if not self._layout.root.exists():
            raise NotFoundError(f"no OCI layout at {self._layout.root}: the path does not exist")
        if not self._layout.root.is_dir():
            raise TransportError(f"{self._layout.root} is not an OCI layout: not a directory")
        self._layout.check_header()
        self._entry = self._select(self._layout.entries())

    @property
    def name(self) -> str:
        """``oci:PATH[:TAG]``."""
        return _spelling(self._layout.root, self._tag)

    def _select(self, entries: list[Descriptor]) -> Descriptor:
        if self._tag is None:
            if len(entries) == 1:
                return entries[0]
            if not entries:
                raise NotFoundError(f"OCI layout {self._layout.root} holds no images")
            raise NotFoundError(
                f"OCI layout {self._layout.root} holds {len(entries)} images; name one as "
                f"oci:{self._layout.root}:TAG (tags: {_tags(entries)})"
            )
        for entry in entries:
            if entry.annotations.get(REF_NAME) == self._tag:
                return entry
        raise NotFoundError(
            f"OCI layout {self._layout.root} has no tag {self._tag!r} (tags: {_tags(entries)})"
        )

    def get_manifest(self) -> tuple[bytes, str]:
        """The bytes and media type of the selected entry (a manifest or an index)."""
        return self._layout.read_blob(self._entry), self._entry.media_type

    def get_child_manifest(self, descriptor: Descriptor) -> bytes:
        """A manifest an index points to, verified."""
        return self._layout.read_blob(descriptor)

    def get_blob(self, descriptor: Descriptor) -> bytes:
        """A small blob, read whole and verified."""
        return self._layout.read_blob(descriptor)

    def open_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        """The blob's bytes as stored; the caller verifies them."""
        return self._layout.open_blob(descriptor)

    def close(self) -> None:
        """Nothing stays open between calls."""


class LayoutSink:
    """Writes blobs and manifests into a layout; ``commit`` adds the top-level entry to index.json.

    The entries added at commit are every manifest put with a tag (replacing older entries with
    that tag) and the last one put, which gets the sink's own tag when put without one: manifests
    put untagged before an index are its children and stay plain blobs.

    A layout that does not exist yet is built in a locked staging directory beside it and
    renamed into place at commit, so it appears whole or not at all: a failed first write
    leaves nothing behind, and concurrent first writers never see each other's half-made
    skeleton (the loser of the rename moves its blobs into the winner's layout and commits
    there). Temp files of writers that died are reclaimed by the next write.
    """

    def __init__(self, path: str | Path, tag: str | None = None) -> None:
        if tag is not None and not _REF_NAME.match(tag):
            raise InvalidReferenceError(
                f"invalid OCI layout tag {tag!r}: use letters, digits and . _ - : @ + /"
            )
        self._root = Path(path)
        self._layout = _Layout(path)  # where blobs go: the layout, or the staging directory
        self._tag = tag
        self._lock = threading.Lock()
        self._prepared = False
        self._staging: Path | None = None
        self._staging_fd: int | None = None
        self._puts: list[tuple[Descriptor, str | None]] = []
        self._check_target()

    @property
    def name(self) -> str:
        """``oci:PATH[:TAG]``."""
        return _spelling(self._root, self._tag)

    @property
    def concurrency(self) -> int:
        """Blobs are separate files: several can be written at once."""
        return _WRITERS

    @property
    def stores_uncompressed(self) -> bool:
        """Layouts store blobs as they are given: compressed layers stay compressed."""
        return False

    def _check_target(self) -> None:
        root = self._root
        if root.exists() and not root.is_dir():
            raise TransportError(f"cannot write an OCI layout to {root}: it is not a directory")
        if not root.exists():
            return
        if (root / "oci-layout").exists():
            self._layout.check_header()
            if (root / "index.json").exists():
                self._layout.entries()
        elif any(root.iterdir()):
            raise TransportError(
                f"{root} is not an OCI layout (no oci-layout file) and is not empty; "
                "write to a new or empty directory"
            )

    def _prepare(self) -> None:
        """Reclaim dead writers' temp files and make the skeleton blobs are written into."""
        with self._lock:
            if self._prepared:
                return
            root = self._root
            try:
                if (root / "oci-layout").exists():
                    _skeleton(root)  # a half-made one (no index.json) is completed
                    reclaim_stale(root)
                    reclaim_stale(root / "blobs" / "sha256")
                else:
                    root.parent.mkdir(parents=True, exist_ok=True)
                    prefix = f".{root.name}{TEMP_PREFIX}"
                    reclaim_stale(root.parent, prefix)
                    self._staging_fd, self._staging = locked_temp_dir(root.parent, prefix)
                    os.chmod(self._staging, 0o755)  # mkdtemp makes 0700; layouts are shared
                    _skeleton(self._staging)
                    self._layout = _Layout(self._staging)
            except OSError as err:
                raise TransportError(f"cannot create OCI layout {root}: {err}") from err
            self._prepared = True

    def has_blob(self, descriptor: Descriptor) -> bool:
        """Whether the blob is there with the right size."""
        return self._layout.has_blob(descriptor)

    def try_mount(self, layer: Layer, descriptor: Descriptor) -> bool:
        """Layouts have nothing to mount from."""
        return False

    def put_blob(self, stream: BlobStream, descriptor: Descriptor | None) -> BlobOutcome:
        """Write ``stream`` to a temp file and rename it to its digest once complete and checked."""
        if descriptor is not None and self.has_blob(descriptor):
            stream.close()
            return "exists"
        self._prepare()
        fd, tmp = self._temp_file()
        try:
            with os.fdopen(fd, "wb") as f:
                size = _copy(stream, f, tmp)
                digests = stream.result
                check_written(digests, size, descriptor, self.name)
                self._install(tmp, digests.digest)  # while locked: never reclaimed as stale
        except BaseException:
            _unlink(tmp)
            raise
        return "written"

    def _temp_file(self) -> tuple[int, str]:
        directory = self._layout.root / "blobs" / "sha256"
        try:
            return locked_temp_file(directory)
        except OSError as err:
            raise TransportError(f"cannot create a blob file in {directory}: {err}") from err

    def _install(self, tmp: str, digest: Digest) -> None:
        final = self._layout.blob_path(digest)
        try:
            final.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except OSError as err:
            raise TransportError(f"cannot store blob {final}: {err}") from err

    def put_manifest(
        self, data: bytes, media_type: str, *, tag: str | None, platform: Platform | None = None
    ) -> Descriptor:
        """Store manifest or index bytes as a blob and remember them for :meth:`commit`."""
        if tag is not None and not _REF_NAME.match(tag):
            raise InvalidReferenceError(f"invalid OCI layout tag {tag!r}")
        desc = describe(data, media_type, platform=platform)
        self.put_blob(BytesStream(data, media_type), desc)
        with self._lock:
            self._puts.append((desc, tag))
        return desc

    def commit(self) -> None:
        """Check that the new entries are complete, then replace index.json atomically (or, for
        a new layout, rename the staging directory into place)."""
        with self._lock:
            puts, self._puts = self._puts, []
        if not puts:
            self._drop_staging()
            return
        *earlier, (last, last_tag) = puts
        new: list[tuple[Descriptor, str | None]] = [(d, tag) for d, tag in earlier if tag]
        new.append((last, last_tag or self._tag))
        for desc, _ in new:
            self._check_complete(desc)
        self._prepare()
        try:
            if self._staging is not None and self._publish_staging(new):
                return
            self._add_entries(self._root, new)
        finally:
            self._drop_staging()

    def _publish_staging(self, new: list[tuple[Descriptor, str | None]]) -> bool:
        """Rename the staging layout into place; False when another writer made it first (our
        blobs then move into that layout, and the caller adds the entries there)."""
        assert self._staging is not None
        self._add_entries(self._staging, new, locked=True)
        try:
            os.rename(self._staging, self._root)  # replaces nothing but an empty directory
        except OSError as err:
            if not (self._root / "oci-layout").exists():
                raise TransportError(f"cannot create OCI layout {self._root}: {err}") from err
        else:
            self._staging = None
            return True
        for blob in sorted((self._staging / "blobs").glob("*/*")):
            target = self._root / "blobs" / blob.parent.name / blob.name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(blob, target)
            except OSError as err:
                raise TransportError(f"cannot store blob {target}: {err}") from err
        return False

    def _add_entries(
        self, root: Path, new: list[tuple[Descriptor, str | None]], *, locked: bool = False
    ) -> None:
        """Merge ``new`` into ``root``'s index.json under the layout's lock (``locked``: the
        staging directory, whose lock this sink holds already)."""
        lock_fd = os.open(root, os.O_RDONLY)
        try:
            # Another process committing to the same layout must not lose our entry or we its.
            if not locked:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            index = _Layout(root).read_index()
            index["manifests"] = _merge(index.get("manifests", []), new)
            write_atomic(root / "index.json", dumps(index))
        except OSError as err:
            raise TransportError(f"cannot update {root / 'index.json'}: {err}") from err
        finally:
            os.close(lock_fd)

    def _drop_staging(self) -> None:
        """Remove the staging directory (if any is left) and release its lock."""
        with self._lock:
            staging, fd = self._staging, self._staging_fd
            self._staging = self._staging_fd = None
            if fd is not None:  # the next write prepares again, in the layout if it exists now
                self._prepared = False
                self._layout = _Layout(self._root)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if fd is not None:
            os.close(fd)

    def _check_complete(self, desc: Descriptor, depth: int = 0) -> None:
        """Raise unless every blob ``desc`` reaches (config, layers, children) is present."""
        if not self.has_blob(desc):
            raise TransportError(f"cannot commit to {self.name}: blob {desc.digest} is missing")
        if depth > 8 or not (mt.is_manifest(desc.media_type) or mt.is_index(desc.media_type)):
            return
        data = self._layout.read_blob(desc)
        try:
            if mt.is_index(desc.media_type):
                for child in Index.from_json(data, desc.media_type).manifests:
                    self._check_complete(child, depth + 1)
                return
            manifest = Manifest.from_json(data, desc.media_type)
        except ManifestError as err:
            raise TransportError(f"cannot commit to {self.name}: {err}") from err
        for blob in (manifest.config, *manifest.layers):
            # Foreign layers (with urls) are never stored; everything else must be here.
            if not blob.urls and not self.has_blob(blob):
                raise TransportError(
                    f"cannot commit to {self.name}: blob {blob.digest} of manifest "
                    f"{desc.digest} is missing"
                )

    def abort(self) -> None:
        """Forget the pending entries. In an existing layout, blobs already written stay,
        unreferenced and harmless; a layout this write would have created is removed."""
        with self._lock:
            self._puts = []
        self._drop_staging()


def _merge(
    current: list[dict[str, Any]], new: list[tuple[Descriptor, str | None]]
) -> list[dict[str, Any]]:
    """index.json entries with ``new`` added: a tag moves to its new manifest, duplicates go."""
    out = list(current)
    for desc, tag in new:
        entry = desc.to_dict()
        if tag:
            entry["annotations"] = {**entry.get("annotations", {}), REF_NAME: tag}
            out = [e for e in out if (e.get("annotations") or {}).get(REF_NAME) != tag]
        elif any(e == entry for e in out):
            continue
        out.append(entry)
    return out


def _copy(stream: BlobStream, f: Any, where: str) -> int:
    """Write every chunk of ``stream`` to ``f``; the producer's own errors pass unchanged."""
    size = 0
    for chunk in stream:
        try:
            f.write(chunk)
        except OSError as err:
            raise TransportError(f"cannot write blob file {where}: {err.strerror}") from err
        size += len(chunk)
    return size


def check_written(
    digests: LayerDigests, size: int, expected: Descriptor | None, where: str
) -> None:
    """Raise unless the bytes written are what the stream and the descriptor claim."""
    if digests.size != size:
        raise DigestMismatchError(
            f"blob {digests.digest} for {where}: the stream reported {digests.size} bytes but "
            f"yielded {size}"
        )
    if expected is not None:
        expected.check(digests.digest, size, f"the stream written to {where}")


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _skeleton(root: Path) -> None:
    """``oci-layout``, an empty ``index.json`` and ``blobs/sha256/`` where they are missing."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    if not (root / "oci-layout").exists():
        write_atomic(root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    if not (root / "index.json").exists():
        empty = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
        write_atomic(root / "index.json", dumps(empty))
