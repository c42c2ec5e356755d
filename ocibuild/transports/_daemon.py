"""A Docker-compatible engine's image store: ``docker-daemon:NAME[:TAG]``.

Writing feeds the engine's image load endpoint (``POST /images/load``) a docker-archive that is
generated as the blobs come: the body streams from a bounded pipe while the blobs are written
into it one by one, so nothing of the image is kept whole, in memory or on disk. Layers go in
as they are stored elsewhere (compressed: the engine decompresses a layer file and checks its
content against the config's diff_ids). A tar member names its size before its bytes, so a
blob whose size is not known up front (a layer being built) is held in a spooled temp file
until its end, in memory while it is small; every blob that already exists (a base layer, a
copy) streams straight through. A zstd layer, which dockerd before 23 cannot unpack, goes in
as its plain tar (spooled the same way). The engine keeps no manifest: the image it holds is
named by its ID, the config digest, which is what a write reports.

Reading asks the image get endpoint (``GET /images/{id}/get``, ``docker save``'s format) and
spools the stream to a temp file, deleted on close: the archive lists its layers only in its
last member, manifest.json, and the reader needs to seek. Every blob is verified as
:class:`~._archive.ArchiveSource` verifies an archive's.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import queue
import tempfile
import threading
import weakref
from collections.abc import Iterator
from typing import IO, Any, Final
from urllib.parse import quote

from .._errors import (
    DigestMismatchError,
    ManifestError,
    NotFoundError,
    TarballError,
    TransportError,
)
from ..layer._compress import decompress_stream, detect_compression
from ..layer._tar import file_header
from ..oci import Descriptor, Digest, Manifest, Platform
from ..oci import media_types as mt
from ..oci._config import ImageConfig
from ..oci._fields import MAX_DOCUMENT
from ..oci._layer import BlobStream, Layer, LayerDigests
from ._archive import (
    INDEX_REFUSED,
    ArchiveSource,
    archive_end,
    blob_member,
    manifest_entry,
    padding,
    repo_tag,
)
from ._base import BlobOutcome
from ._layout import check_written
from .docker import Engine, EngineError
from .docker._engine import one_line

__all__ = ["DaemonSink", "DaemonSource"]

_IN_MEMORY = 16 << 20  # a blob of unknown size is spooled to disk past this
_CHUNK = 1 << 20
_PIPE_DEPTH = 8  # chunks in flight between the writer and the request
_JOIN = 0.2


class _Aborted(Exception):
    """The write was abandoned: the body ends without its last chunk."""


_END: Final = object()
_ABORT: Final = object()


class _Pipe:
    """Chunks handed from the thread writing blobs to the thread sending the request body."""

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue(_PIPE_DEPTH)
        self.closed = threading.Event()  # the request is over: nobody reads any more

    def put(self, item: object) -> None:
        """Queue ``item``; raises :class:`_Aborted` when the request ended early."""
        while not self.closed.is_set():
            try:
                self._queue.put(item, timeout=_JOIN)
                return
            except queue.Full:
                continue
        raise _Aborted

    def abort(self) -> None:
        """Make the reader fail (a full pipe is emptied first, so this never waits)."""
        while True:
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_ABORT)
                return

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if item is _ABORT:
                raise _Aborted
            assert isinstance(item, bytes)
            yield item


class _Counted(Iterator[bytes]):
    """Forwards chunks, counting their bytes."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self.size += len(chunk)
        return chunk


class DaemonSink:
    """Loads one image into an engine, tagged ``NAME:TAG``; visible only once the engine
    accepted the whole archive at :meth:`commit`. :meth:`abort` cuts the body short, so the
    engine, which unpacks the archive before it loads anything, loads nothing."""

    def __init__(
        self,
        engine: Engine,
        repository: str,
        tag: str | None = None,
        *,
        close_engine: bool = False,
    ) -> None:
        self._engine = engine
        self._close_engine = close_engine
        self._repository = repository
        self._repo_tag = repo_tag(f"{repository}:{tag}" if tag else repository)
        self._pipe = _Pipe()
        self._thread: threading.Thread | None = None
        self._answer: list[dict[str, Any]] = []
        self._error: BaseException | None = None
        self._written: dict[Digest, Digest | None] = {}  # blob -> diff_id, when known
        self._members: dict[Digest, str] = {}  # blob -> the member holding it (or its tar)
        self._kept: dict[Digest, bytes] = {}  # small blobs, for the config
        self._entry: dict[str, Any] | None = None
        self._broken = False

    @property
    def name(self) -> str:
        """``docker-daemon:NAME:TAG``."""
        return f"docker-daemon:{self._repo_tag}"

    @property
    def concurrency(self) -> int:
        """One request body, written front to back: one blob at a time."""
        return 1

    @property
    def stores_uncompressed(self) -> bool:
        """The engine takes compressed layers: they are sent as they are."""
        return False

    def has_blob(self, descriptor: Descriptor) -> bool:
        """Whether the blob is already in this load's archive."""
        return descriptor.digest in self._written

    def try_mount(self, layer: Layer, descriptor: Descriptor) -> bool:
        """An engine has nothing to mount from."""
        return False

    def put_blob(self, stream: BlobStream, descriptor: Descriptor | None) -> BlobOutcome:
        """Send ``stream`` as the archive member ``blobs/sha256/<hex>``."""
        if descriptor is not None and self.has_blob(descriptor):
            stream.close()
            return "exists"
        self._check_usable()
        self._start()
        try:
            first = next(stream, b"")
            if detect_compression(first[:4]) == "zstd":
                sent = self._send_unzstd(first, stream, descriptor)
            elif descriptor is not None:
                sent = self._send_known(first, stream, descriptor)
            else:
                sent = self._send_spooled(first, stream)
        except BaseException:
            self._broken = True  # a member may be cut off: the archive cannot go on
            raise
        finally:
            stream.close()
        return "written" if sent else "exists"

    def _send_known(self, first: bytes, stream: BlobStream, descriptor: Descriptor) -> bool:
        """Stream a blob of known size straight into the body, its header first."""
        self._send(file_header(blob_member(descriptor.digest), descriptor.size))
        small = descriptor.size <= MAX_DOCUMENT and not _is_layer(descriptor.media_type)
        size, kept = 0, bytearray() if small else None
        for chunk in itertools.chain([first], stream):
            size += len(chunk)
            if size > descriptor.size:
                break
            if kept is not None:
                kept += chunk
            self._send(chunk)
        if size != descriptor.size:
            raise DigestMismatchError(
                f"blob {descriptor.digest} for {self.name} is not the {descriptor.size} bytes "
                f"its descriptor says ({size} or more came)"
            )
        check_written(stream.result, size, descriptor, self.name)
        self._send(padding(size))
        self._record(stream.result, stream.result.digest, kept)
        return True

    def _send_spooled(self, first: bytes, stream: BlobStream) -> bool:
        """Hold a blob of unknown size until its end, then send it; ``False`` if it was sent
        already (the same content twice)."""
        with tempfile.SpooledTemporaryFile(_IN_MEMORY, prefix="ocibuild-daemon-") as spool:
            size = 0
            for chunk in itertools.chain([first], stream):
                spool.write(chunk)
                size += len(chunk)
            digests = stream.result
            check_written(digests, size, None, self.name)
            if digests.digest in self._written:
                return False
            self._send_spool(spool, blob_member(digests.digest), size)
        self._record(digests, digests.digest, None)  # only layers come without a descriptor
        return True

    def _send_unzstd(self, first: bytes, stream: BlobStream, descriptor: Descriptor | None) -> bool:
        """Send a zstd layer as its plain tar (spooled: its size is known only at its end).

        dockerd before 23 reads a zstd layer file as a plain tar and fails; every engine
        stores layers uncompressed anyway, so the member is the tar, named by its diff_id.
        """
        counted = _Counted(itertools.chain([first], stream))
        tar = hashlib.sha256()
        with tempfile.SpooledTemporaryFile(_IN_MEMORY, prefix="ocibuild-daemon-") as spool:
            size = 0
            try:
                for chunk in decompress_stream(counted, "zstd"):
                    spool.write(chunk)
                    tar.update(chunk)
                    size += len(chunk)
            except TarballError as err:
                raise TransportError(f"a zstd layer for {self.name} is corrupt: {err}") from err
            for _ in counted:  # a decompressor may stop before the stream's end
                pass
            digests = stream.result
            check_written(digests, counted.size, descriptor, self.name)
            diff_id = Digest("sha256", tar.hexdigest())
            if diff_id != digests.diff_id:
                raise DigestMismatchError(
                    f"layer {digests.digest} for {self.name} decompresses to {diff_id}, not "
                    f"its diff_id {digests.diff_id}"
                )
            if blob_member(diff_id) not in self._members.values():
                self._send_spool(spool, blob_member(diff_id), size)
        self._record(digests, diff_id, None)
        return True

    def _send_spool(self, spool: IO[bytes], member: str, size: int) -> None:
        self._send(file_header(member, size))
        spool.seek(0)
        for chunk in iter(lambda: spool.read(_CHUNK), b""):
            self._send(chunk)
        self._send(padding(size))

    def _record(self, digests: LayerDigests, stored: Digest, kept: bytearray | None) -> None:
        """Remember a blob sent, as the member holding content ``stored``."""
        diff_id = digests.diff_id if digests.diff_id != digests.digest else None
        self._written[digests.digest] = diff_id
        self._members[digests.digest] = blob_member(stored)
        if kept is not None:
            self._kept[digests.digest] = bytes(kept)

    def put_manifest(
        self, data: bytes, media_type: str, *, tag: str | None, platform: Platform | None = None
    ) -> Descriptor:
        """Record the image's manifest.json entry; returns the image's ID (its config's
        descriptor, in the manifest's media type): the engine keeps no manifest."""
        if mt.is_index(media_type):
            raise TransportError(INDEX_REFUSED.replace("docker-archive", "a docker engine"))
        try:
            manifest = Manifest.from_json(data, media_type)
        except ManifestError as err:
            raise TransportError(f"cannot write {self.name}: {err}") from err
        config = self._kept.get(manifest.config.digest)
        missing = [d.digest for d in (manifest.config, *manifest.layers) if not self.has_blob(d)]
        if missing or config is None:
            raise TransportError(
                f"cannot write {self.name}: blob {(missing or [manifest.config.digest])[0]} "
                "was never put into it"
            )
        self._check_diff_ids(config, manifest)
        if tag:
            self._repo_tag = repo_tag(f"{self._repository}:{tag}")
        self._entry = manifest_entry(
            self._members[manifest.config.digest],
            [self._members[layer.digest] for layer in manifest.layers],
            self._repo_tag,
        )
        config_desc = manifest.config
        return Descriptor(media_type, config_desc.digest, config_desc.size, platform=platform)

    def _check_diff_ids(self, config: bytes, manifest: Manifest) -> None:
        try:
            diff_ids = ImageConfig.from_json(config).diff_ids
        except ManifestError as err:
            raise TransportError(f"cannot write {self.name}: {err}") from err
        if len(diff_ids) != len(manifest.layers) or any(
            self._written.get(layer.digest) not in (None, diff_id)
            for layer, diff_id in zip(manifest.layers, diff_ids, strict=False)
        ):
            raise TransportError(
                f"cannot write {self.name}: the config's diff_ids do not match the layers"
            )

    def commit(self) -> None:
        """End the archive, then wait for the engine's verdict and check the image it holds."""
        if self._entry is None:
            raise TransportError(f"cannot write {self.name}: no image manifest was put")
        self._check_usable()
        self._send(archive_end([self._entry]))
        self._send(_END)
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._failure()
        for message in self._answer:
            if message.get("error") or message.get("errorDetail"):
                detail = message.get("error") or message["errorDetail"].get("message")
                raise self._refused(str(detail))
        try:
            self._check_loaded(self._entry["Config"])
        finally:
            self._done()

    def _check_loaded(self, config_member: str) -> None:
        """The engine's image under the tag must be the one sent (its ID, the config)."""
        expected = f"sha256:{config_member.rsplit('/', 1)[-1]}"
        found = self._engine.request("GET", f"/images/{quote(self._repo_tag)}/json").json()
        image_id = found.get("Id") if isinstance(found, dict) else None
        if image_id not in (expected, expected.removeprefix("sha256:")):
            raise EngineError(
                f"the docker engine at {self._engine.host} answered the load of {self.name}, but "
                f"its {self._repo_tag} is {image_id}, not {expected}"
            )

    def abort(self) -> None:
        """Cut the body short: the engine's unpacking fails and no image is loaded."""
        self._pipe.abort()
        if self._thread is not None:
            self._thread.join()
        self._entry = None
        self._done()

    def _done(self) -> None:
        if self._close_engine:
            self._engine.close()

    # --- the request, in a thread of its own -------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._load, name="ocibuild-docker-load", daemon=True
            )
            self._thread.start()

    def _load(self) -> None:
        try:
            with self._engine.stream(
                "POST",
                "/images/load",
                params={"quiet": True},
                content=self._pipe,
                headers={"Content-Type": "application/x-tar"},
            ) as response:
                self._answer = list(self._engine.messages(response))
        except BaseException as err:  # handed to the writing thread
            self._error = err
        finally:
            self._pipe.closed.set()

    def _send(self, item: object) -> None:
        try:
            self._pipe.put(item)
        except _Aborted:
            if self._thread is not None:
                self._thread.join()
            raise self._failure() from None

    def _failure(self) -> BaseException:
        """What to raise for a request that ended before the archive did."""
        error = self._error
        if isinstance(error, EngineError) and error.detail is not None:
            return self._refused(error.detail)
        if isinstance(error, EngineError):
            return error
        if isinstance(error, _Aborted) or error is None:
            return EngineError(f"the load of {self.name} was abandoned")
        cause = error.__cause__ if isinstance(error.__cause__, _Aborted) else error
        return EngineError(
            f"the docker engine at {self._engine.host} broke off the load of {self.name}: {cause}"
        )

    def _refused(self, detail: str) -> EngineError:
        return EngineError(
            f"the docker engine at {self._engine.host} refused {self.name}: {one_line(detail)}",
            detail=detail,
        )

    def _check_usable(self) -> None:
        if self._broken:
            raise TransportError(f"cannot write {self.name}: an earlier blob failed midway")


class DaemonSource:
    """Reads one image from an engine, as its image get endpoint saves it (spooled; see the
    module's docstring), verified like any docker-archive."""

    def __init__(self, engine: Engine, name: str, *, close_engine: bool = False) -> None:
        self._engine = engine
        self._close_engine = close_engine
        self._name = name
        self._image_id = self._inspect()
        self._path = self._spool()
        # Images loaded from a source read its layers lazily and never close it: the spool
        # goes when the last of them does, or when the interpreter exits.
        opened: list[ArchiveSource] = []
        self._discard = weakref.finalize(self, _discard, self._path, opened)
        try:
            self._archive = ArchiveSource(self._path)
            opened.append(self._archive)
            self._check_id()
        except BaseException:
            self.close()
            raise

    @property
    def name(self) -> str:
        """``docker-daemon:NAME[:TAG]``."""
        return f"docker-daemon:{self._name}"

    def _inspect(self) -> str:
        try:
            found = self._engine.request("GET", f"/images/{quote(self._name)}/json").json()
        except EngineError as err:
            if err.status == 404:
                raise NotFoundError(
                    f"the docker engine at {self._engine.host} has no image {self._name!r}; "
                    f"load one (ocibuild copy SRC docker-daemon:{self._name}) or check "
                    "DOCKER_HOST"
                ) from None
            raise
        image_id = found.get("Id") if isinstance(found, dict) else None
        if not isinstance(image_id, str) or not image_id:
            raise EngineError(f"the docker engine at {self._engine.host} gave {self._name} no ID")
        return image_id if ":" in image_id else f"sha256:{image_id}"

    def _spool(self) -> str:
        """The engine's archive of the image (by ID: a tag moved meanwhile cannot mix two
        images), written to a temp file."""
        fd, path = tempfile.mkstemp(prefix="ocibuild-docker-daemon-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as out:
                self._download(out)
        except BaseException:
            os.unlink(path)
            raise
        return path

    def _download(self, out: IO[bytes]) -> None:
        with self._engine.stream("GET", f"/images/{quote(self._image_id)}/get") as response:
            try:
                for chunk in response.iter_bytes():
                    out.write(chunk)
            except OSError as err:
                raise TransportError(
                    f"cannot spool {self.name} to {tempfile.gettempdir()}: {err.strerror}"
                ) from err

    def _check_id(self) -> None:
        data, media_type = self._archive.get_manifest()
        config = Manifest.from_json(data, media_type).config.digest
        if str(config) != self._image_id:
            raise DigestMismatchError(
                f"the docker engine at {self._engine.host} saved {self.name} with config "
                f"{config}, but its image ID is {self._image_id}"
            )

    def get_manifest(self) -> tuple[bytes, str]:
        """A Docker schema 2 manifest of the layers as the engine saved them (plain tars)."""
        return self._archive.get_manifest()

    def get_child_manifest(self, descriptor: Descriptor) -> bytes:
        """An engine's image is one platform: there is no index."""
        raise NotFoundError(f"{self.name} is one image, not an index")

    def get_blob(self, descriptor: Descriptor) -> bytes:
        """The config, read whole and verified."""
        return self._archive.get_blob(descriptor)

    def open_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        """A layer's bytes; the caller verifies them."""
        return self._archive.open_blob(descriptor)

    def close(self) -> None:
        """Close and delete the spooled archive."""
        self._discard()
        if self._close_engine:
            self._engine.close()


def _discard(path: str, opened: list[ArchiveSource]) -> None:
    for archive in opened:
        archive.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _is_layer(media_type: str) -> bool:
    return "layer" in media_type or "rootfs" in media_type
