"""docker-archive tarballs (``docker save`` / ``docker load``): ``docker-archive:PATH[:REF]``.

An archive is a tar holding ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``), the
config JSON and the layer tars at the paths it names: the legacy form (``<hex>.json``,
``<id>/layer.tar``, duplicates as symlinks) or, since Docker 25, paths into an OCI layout's
``blobs/sha256/``. Layers are written uncompressed for the widest ``docker load`` compatibility
(readers also meet compressed ones: the magic bytes tell), so the sink asks the writer for each
layer's tar rather than a compressed blob it would have to undo.

The tar is not handled by ``tarfile``: reading needs only each member's name, size and data
offset (:mod:`._tar_index`), and writing only regular files with short names, whose headers come
from the layer tar writer (:func:`.layer._tar.file_header`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .._errors import (
    DigestMismatchError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    TarballError,
    TransportError,
)
from ..layer._compress import Compression, decompress_stream, detect_compression
from ..layer._tar import file_header
from ..layer._tar_index import Member, read_members, resolve
from ..oci import Descriptor, Digest, Manifest, Platform, Reference, describe
from ..oci import media_types as mt
from ..oci._config import ImageConfig, dumps
from ..oci._fields import MAX_DOCUMENT, STRING, STRINGS, Check, check_fields, load_json
from ..oci._layer import BlobStream, Layer
from ._base import BlobOutcome
from ._layout import FileChunks, check_written

__all__ = [
    "INDEX_REFUSED",
    "ArchiveSink",
    "ArchiveSource",
    "archive_end",
    "blob_member",
    "manifest_entry",
    "padding",
    "repo_tag",
]

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
INDEX_REFUSED = "docker-archive holds one image per platform; pick one with --platform"
_ENTRY_FIELDS: dict[str, Check] = {"Config": STRING, "RepoTags": STRINGS, "Layers": STRINGS}


# --- reading ---------------------------------------------------------------------------------


def _same_ref(a: str, b: str) -> bool:
    """Whether two references name the same image (``busybox`` = ``docker.io/library/busybox``)."""
    try:
        return Reference.parse(a) == Reference.parse(b)
    except InvalidReferenceError:
        return a == b


class ArchiveSource:
    """Reads one image of a docker-archive tar, presented with a manifest of its blobs as stored."""

    def __init__(self, path: str | Path, ref: str | None = None) -> None:
        self._path = Path(path)
        self._ref = ref
        try:
            self._file = open(self._path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise NotFoundError(
                f"no docker-archive at {self._path}: the file does not exist"
            ) from None
        except OSError as err:
            raise TransportError(f"cannot open docker-archive {self._path}: {err}") from err
        try:
            self._members = self._index()
            entry = self._select(self._manifest_json())
            self._config: str = entry["Config"]
            self._layers: list[str] = entry["Layers"]
        except BaseException:
            self._file.close()
            raise
        self._manifest: bytes | None = None
        self._media_type = mt.DOCKER_MANIFEST
        self._blobs: dict[Digest, Member] = {}

    @property
    def name(self) -> str:
        """``docker-archive:PATH[:REF]``."""
        return f"docker-archive:{self._path}" + (f":{self._ref}" if self._ref else "")

    def _index(self) -> dict[str, Member]:
        head = self._file.read(4)
        if detect_compression(head) != "none":
            raise TransportError(
                f"{self._path} is compressed; decompress it to a plain docker-archive tar first"
            )
        return read_members(self._file, self._path)

    def _resolve(self, name: str) -> Member:
        """The regular file that ``name``, a path manifest.json gives, stands for."""
        member = resolve(self._members, name, f"docker-archive {self._path}")
        if member is None:
            raise TransportError(
                f"docker-archive {self._path} lacks {name}, which manifest.json names"
            )
        return member

    def _read(self, member: Member) -> bytes:
        """A member read whole (manifest.json, a config): its size is the archive's word."""
        if member.size > MAX_DOCUMENT:
            raise TransportError(
                f"{member.name} in docker-archive {self._path} is {member.size} bytes; "
                f"manifest.json and configs are read whole and may be at most "
                f"{MAX_DOCUMENT >> 20} MiB"
            )
        self._file.seek(member.offset)
        return self._file.read(member.size)

    def _manifest_json(self) -> list[dict[str, Any]]:
        """manifest.json's entries, each with a Config path, Layers paths and RepoTags."""
        member = self._members.get("manifest.json")
        if member is None:
            raise TransportError(
                f"{self._path} is not a docker-archive: it has no manifest.json "
                "(archives from Docker before 1.10 are not supported)"
            )
        what = f"manifest.json in {self._path}"
        try:
            entries = load_json(self._read(self._resolve(member.name)), what)
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ManifestError(f"{what} is not a list of images")
            for number, entry in enumerate(entries):
                where = f"manifest.json[{number}] in {self._path}"
                check_fields(entry, _ENTRY_FIELDS, where, ("Config", "Layers"))
        except ManifestError as err:
            raise TransportError(str(err)) from err
        return entries

    def _select(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        tags = ", ".join(t for e in entries for t in (e.get("RepoTags") or ())) or "none"
        if self._ref is None:
            if len(entries) == 1:
                return entries[0]
            raise NotFoundError(
                f"docker-archive {self._path} holds {len(entries)} images; name one as "
                f"docker-archive:{self._path}:REF or :@N (tags: {tags})"
            )
        if re.fullmatch(r"@\d+", self._ref):
            if int(self._ref[1:]) < len(entries):
                return entries[int(self._ref[1:])]
        else:
            for entry in entries:
                if any(_same_ref(self._ref, t) for t in entry.get("RepoTags") or ()):
                    return entry
        raise NotFoundError(
            f"docker-archive {self._path} has no image {self._ref!r} (tags: {tags}; "
            f"{len(entries)} images, @0..@{len(entries) - 1})"
        )

    def get_manifest(self) -> tuple[bytes, str]:
        """A Docker schema 2 manifest (OCI if a layer is zstd) whose layers are the stored files."""
        if self._manifest is None:
            self._manifest = self._build_manifest()
        return self._manifest, self._media_type

    def _build_manifest(self) -> bytes:
        config_member = self._resolve(self._config)
        config = self._read(config_member)
        try:
            diff_ids = ImageConfig.from_json(config).diff_ids
        except ManifestError as err:
            raise TransportError(f"config {self._config} in {self._path}: {err}") from err
        if len(diff_ids) != len(self._layers):
            raise TransportError(
                f"docker-archive {self._path} lists {len(self._layers)} layers but its config "
                f"has {len(diff_ids)} diff_ids"
            )
        stored = [
            self._stored_layer(name, diff_id)
            for name, diff_id in zip(self._layers, diff_ids, strict=True)
        ]
        # Docker schema 2 has no zstd layer type: such an image is presented as OCI throughout.
        oci = any(compression == "zstd" for _, _, compression in stored)
        self._media_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
        layers = tuple(
            Descriptor(mt.layer_media_type(compression, docker=not oci), digest, size)
            for digest, size, compression in stored
        )
        config_desc = describe(config, mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG)
        self._blobs[config_desc.digest] = config_member
        return Manifest(config_desc, layers, self._media_type).to_json()

    def _stored_layer(self, name: str, diff_id: Digest) -> tuple[Digest, int, Compression]:
        """The digest, size and compression of a layer file as it is in the archive, after
        checking that its uncompressed content is what the config's diff_id names."""
        member = self._resolve(name)
        self._file.seek(member.offset)
        compression = detect_compression(self._file.read(min(4, member.size)))
        known = _BLOB_NAME.match(member.name)
        if known and compression == "none":
            # A blobs/sha256/<hex> name is the content's digest, verified when it is read.
            digest, content = Digest("sha256", known.group(1)), Digest("sha256", known.group(1))
        else:
            digest, content = self._hash(member, compression)
        if known and digest.hex != known.group(1):
            raise DigestMismatchError(
                f"{member.name} in docker-archive {self._path} does not hash to its name; "
                "the archive is corrupt"
            )
        if content != diff_id:
            raise DigestMismatchError(
                f"layer {name} in docker-archive {self._path} has uncompressed digest {content}, "
                f"but the image config names {diff_id}; the archive is corrupt"
            )
        self._blobs[digest] = member
        return digest, member.size, compression

    def _hash(self, member: Member, compression: Compression) -> tuple[Digest, Digest]:
        """The sha256 of the member as stored and of its uncompressed content, in one read."""
        stored = hashlib.sha256()
        chunks = FileChunks(self._path, member.offset, member.size)
        if compression == "none":
            for chunk in chunks:
                stored.update(chunk)
            digest = Digest("sha256", stored.hexdigest())
            return digest, digest
        uncompressed = hashlib.sha256()

        def tee() -> Iterator[bytes]:
            for chunk in chunks:
                stored.update(chunk)
                yield chunk

        try:
            for chunk in decompress_stream(tee(), compression):
                uncompressed.update(chunk)
        except TarballError as err:
            raise TransportError(
                f"{member.name} in docker-archive {self._path} is not valid {compression}: {err}"
            ) from err
        for chunk in chunks:  # a decompressor may stop before the member's end
            stored.update(chunk)
        return Digest("sha256", stored.hexdigest()), Digest("sha256", uncompressed.hexdigest())

    def _member_for(self, descriptor: Descriptor) -> Member:
        self.get_manifest()
        member = self._blobs.get(descriptor.digest)
        if member is None:
            raise NotFoundError(f"docker-archive {self._path} has no blob {descriptor.digest}")
        return member

    def get_child_manifest(self, descriptor: Descriptor) -> bytes:
        """docker-archives hold no image indexes."""
        raise NotFoundError(f"docker-archive {self._path} holds no image index")

    def get_blob(self, descriptor: Descriptor) -> bytes:
        """A small blob (the config), read whole and verified."""
        return descriptor.verify(self._read(self._member_for(descriptor)), self.name)

    def open_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        """The blob's bytes as stored; the caller verifies them."""
        member = self._member_for(descriptor)
        return FileChunks(self._path, member.offset, member.size)

    def close(self) -> None:
        """Close the archive file."""
        self._file.close()


# --- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Written:
    """A blob put into the archive: the member holding its (uncompressed) bytes."""

    name: str
    diff_id: Digest
    offset: int
    size: int


class ArchiveSink:
    """Writes one image as a ``docker load``-compatible tar, made visible at :meth:`commit`.

    Every blob is stored as it is streamed, as ``blobs/sha256/<digest>``; layers come as their
    plain tars (:attr:`stores_uncompressed`), so each layer file's digest is its diff_id. The tar
    is built in a temp file beside the target and renamed over it at commit; abort deletes it.
    """

    def __init__(self, path: str | Path, ref: str | None = None) -> None:
        self._path = Path(path)
        self._ref = repo_tag(ref) if ref else None
        if self._path.is_dir():
            raise TransportError(
                f"cannot write a docker-archive to {self._path}: it is a directory"
            )
        if not self._path.parent.is_dir():
            raise TransportError(
                f"cannot write a docker-archive to {self._path}: directory {self._path.parent} "
                "does not exist"
            )
        self._lock = threading.Lock()
        self._tmp: str | None = None
        self._file: BinaryIO | None = None
        self._written: dict[Digest, _Written] = {}
        self._entry: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """``docker-archive:PATH[:REF]``."""
        return f"docker-archive:{self._path}" + (f":{self._ref}" if self._ref else "")

    @property
    def concurrency(self) -> int:
        """One tar file is written front to back: one blob at a time."""
        return 1

    @property
    def stores_uncompressed(self) -> bool:
        """Layers go in as plain tars, the form every ``docker load`` reads."""
        return True

    def has_blob(self, descriptor: Descriptor) -> bool:
        """Whether the blob was already put into this archive."""
        return descriptor.digest in self._written

    def try_mount(self, layer: Layer, descriptor: Descriptor) -> bool:
        """Archives have nothing to mount from."""
        return False

    def _archive(self) -> BinaryIO:
        if self._file is None:
            try:
                fd, self._tmp = tempfile.mkstemp(
                    prefix=f".{self._path.name}.tmp-", dir=self._path.parent
                )
            except OSError as err:
                raise TransportError(f"cannot create a file beside {self._path}: {err}") from err
            self._file = os.fdopen(fd, "w+b")
        return self._file

    def put_blob(self, stream: BlobStream, descriptor: Descriptor | None) -> BlobOutcome:
        """Append ``stream`` as a tar member named by its digest (content stored once).

        The stream must be uncompressed (its digest its diff_id): a layer's tar, or a config.
        """
        with self._lock:
            if descriptor is not None and self.has_blob(descriptor):
                stream.close()
                return "exists"
            f = self._archive()
            start = f.seek(0, os.SEEK_END)
            try:
                written = self._write_member(f, stream, descriptor, start)
            except BaseException:
                with contextlib.suppress(OSError):
                    f.truncate(start)
                raise
            if written is None:
                return "exists"
            self._written[written.diff_id] = written
            return "written"

    def _write_member(
        self, f: BinaryIO, stream: BlobStream, expected: Descriptor | None, start: int
    ) -> _Written | None:
        """Append one member (``None`` if its content is stored already); its header comes last.

        The header precedes the data but names the digest, which the stream reports only at its
        end, so a placeholder block is written and rewritten after seeking back: one pass over
        the bytes and no temporary copy of the layer.
        """
        _write(f, _ZERO_BLOCK, self._path)
        size = 0
        for chunk in stream:
            _write(f, chunk, self._path)
            size += len(chunk)
        digests = stream.result
        check_written(digests, size, expected, self.name)
        if digests.digest != digests.diff_id:
            raise TransportError(
                f"cannot write {self.name}: blob {digests.digest} is compressed, but a "
                "docker-archive stores layers as plain tars; hand the sink the layer's tar"
            )
        if digests.digest in self._written:
            f.truncate(start)  # the same content twice (e.g. one layer in two places)
            return None
        name = blob_member(digests.digest)
        _write(f, padding(size), self._path)
        f.seek(start)
        _write(f, file_header(name, size), self._path)
        f.seek(0, os.SEEK_END)
        return _Written(name, digests.digest, start + _BLOCK, size)

    def put_manifest(
        self, data: bytes, media_type: str, *, tag: str | None, platform: Platform | None = None
    ) -> Descriptor:
        """Record the image's manifest.json entry; an index cannot be stored and is refused."""
        if mt.is_index(media_type):
            raise TransportError(INDEX_REFUSED)
        try:
            manifest = Manifest.from_json(data, media_type)
        except ManifestError as err:
            raise TransportError(f"cannot write {self.name}: {err}") from err
        with self._lock:
            config = self._member(manifest.config)
            layers = [self._member(layer) for layer in manifest.layers]
            self._check_diff_ids(config, layers)
            name = self._ref or (repo_tag(tag) if tag else None)
            self._entry = manifest_entry(config.name, [layer.name for layer in layers], name)
        return describe(data, media_type, platform=platform)

    def _member(self, descriptor: Descriptor) -> _Written:
        written = self._written.get(descriptor.digest)
        if written is None:
            raise TransportError(
                f"cannot write {self.name}: blob {descriptor.digest} was never put into it"
            )
        return written

    def _check_diff_ids(self, config: _Written, layers: list[_Written]) -> None:
        f = self._archive()
        f.seek(config.offset)
        try:
            diff_ids = list(ImageConfig.from_json(f.read(config.size)).diff_ids)
        except ManifestError as err:
            raise TransportError(f"cannot write {self.name}: {err}") from err
        finally:
            f.seek(0, os.SEEK_END)
        if diff_ids != [layer.diff_id for layer in layers]:
            raise TransportError(
                f"cannot write {self.name}: the config's diff_ids do not match the layers' "
                "uncompressed content"
            )

    def commit(self) -> None:
        """Append manifest.json and the end blocks, then rename the tar over the target."""
        with self._lock:
            if self._entry is None:
                raise TransportError(f"cannot write {self.name}: no image manifest was put")
            f = self._archive()
            f.seek(0, os.SEEK_END)
            _write(f, archive_end([self._entry]), self._path)
            f.close()
            assert self._tmp is not None
            try:
                os.chmod(self._tmp, 0o644)
                os.replace(self._tmp, self._path)
            except OSError as err:
                raise TransportError(f"cannot write {self._path}: {err}") from err
            self._file = self._tmp = None

    def abort(self) -> None:
        """Delete the unfinished tar; the target is left as it was."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            if self._tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._tmp)
            self._file = self._tmp = None
            self._written.clear()
            self._entry = None


def blob_member(digest: Digest) -> str:
    """The member name a blob is stored under: ``blobs/sha256/<hex>``, as Docker 25 writes."""
    return f"blobs/{digest.algorithm}/{digest.encoded}"


def padding(size: int) -> bytes:
    """The zeros that fill a member of ``size`` bytes up to the tar's next block."""
    return bytes(-size % _BLOCK)


def manifest_entry(config: str, layers: list[str], name: str | None) -> dict[str, Any]:
    """One image of manifest.json: its config and layer members, and its ``repo:tag``."""
    return {"Config": config, "RepoTags": [name] if name else [], "Layers": layers}


def archive_end(entries: list[dict[str, Any]]) -> bytes:
    """What ends an archive: manifest.json (last, once every member it names is written),
    then the two zero blocks that end a tar."""
    manifest_json = dumps(entries)
    header = file_header("manifest.json", len(manifest_json))
    return header + manifest_json + padding(len(manifest_json)) + _ZERO_BLOCK * 2


def repo_tag(ref: str) -> str:
    """``repo:tag`` for RepoTags, ``:latest`` added when no tag is given; digests are refused."""
    parsed = Reference.parse(ref, default_tag=None)
    if parsed.digest is not None:
        raise InvalidReferenceError(
            f"invalid docker-archive reference {ref!r}: RepoTags cannot hold a digest; use repo:tag"
        )
    return ref if parsed.tag else f"{ref}:latest"


def _write(f: BinaryIO, data: bytes, where: Path) -> None:
    try:
        f.write(data)
    except OSError as err:
        raise TransportError(f"cannot write docker-archive {where}: {err.strerror}") from err
