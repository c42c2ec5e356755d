"""The one pass that turns a tar stream into a layer blob: tar -> diff_id -> compress -> digest.

Two cores are kept busy: a worker thread produces the tar (reading files, writing headers) and
hashes it into the diff_id, while the consuming thread compresses and hashes the blob. hashlib
and the codecs release the GIL on large buffers, so the halves overlap. A bounded queue of a few
chunks between them keeps memory constant whatever the layer size.

Measured on the 2-core build machine with 200 MB of mixed data in 1 MiB chunks (MB/s, one
thread -> two): gzip (isal 1) ~415 -> ~580, zstd 1 ~375 -> ~500, zstd 3 ~260 -> ~320; raw
sha256 is ~1,400 and the codecs alone ~660 (isal 1) and ~550 (zstd 1). On trees of small files
the producer is Python-bound and holds the GIL most of the time, and the two are about even
(~300 MB/s, ~19k entries/s on CPython's stdlib). Uncompressed layers hash the tar once and have
nothing to overlap, so they run in the caller's thread (~1,400 MB/s).
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass

from ..oci._digest import Digest
from ..oci._layer import BlobStream, LayerDigests
from ._compress import Compression, Compressor, new_compressor

__all__ = ["build_blob", "prefetched", "reporting"]

_OUT_CHUNK = 1 << 20  # blob chunks handed to sinks are at least this big (but the last)
_QUEUE_DEPTH = 4  # tar chunks in flight between the threads: a few MiB


def build_blob(
    tar_chunks: Iterable[bytes], *, compression: Compression, level: int | None, media_type: str
) -> BlobStream:
    """Stream the blob of a layer whose uncompressed tar is ``tar_chunks``, in one pass.

    The returned stream's ``digests`` are set once it is exhausted. Errors raised while
    producing the tar are raised from the stream unchanged.
    """
    compressor = new_compressor(compression, level)  # bad levels fail here, not mid-stream
    return _BlobPipeline(tar_chunks, compressor, media_type, compressing=compression != "none")


@dataclass(frozen=True)
class _End:
    """The source is exhausted; for a tar, its sha256 is the layer's diff_id."""

    diff_id: Digest | None = None


@dataclass(frozen=True)
class _Failed:
    """Producing the tar raised ``error``."""

    error: BaseException


def _tar_then_diff_id(tar_chunks: Iterable[bytes]) -> Generator[bytes | _End, None, None]:
    """The tar chunks, hashed as they pass, then the diff_id."""
    hasher = hashlib.sha256()
    try:
        for chunk in tar_chunks:
            if chunk:
                hasher.update(chunk)
                yield chunk
    finally:
        if isinstance(tar_chunks, Generator):
            tar_chunks.close()  # now, not at garbage collection: it may hold files open
    yield _End(Digest.from_hash(hasher))


class _BlobPipeline(BlobStream):
    """A :class:`BlobStream` that compresses and hashes what the tar producer hands it."""

    def __init__(
        self,
        tar_chunks: Iterable[bytes],
        compressor: Compressor,
        media_type: str,
        *,
        compressing: bool,
    ) -> None:
        self._tar_chunks: Iterable[bytes] | None = tar_chunks
        self._compressor = compressor
        self._media_type = media_type
        # Uncompressed, the blob is the tar: its digest is the diff_id, and with nothing left
        # to overlap the tar is produced in the caller's thread.
        self._compressing = compressing
        self._source: Iterator[bytes | _End] | None = None
        self._worker: _Worker | None = None
        self._finalizer: weakref.finalize[..., _BlobPipeline] | None = None
        self._hasher = hashlib.sha256()
        self._size = 0
        self._done = False
        self._consumed = 0

    def __next__(self) -> bytes:
        """The next piece of the blob: compressed tar chunks gathered to at least ~1 MiB."""
        if self._done:
            raise StopIteration
        source = self._source or self._start()
        pieces: list[bytes] = []
        gathered = 0
        end: _End | None = None
        try:
            while gathered < _OUT_CHUNK and end is None:
                item = next(source)
                if isinstance(item, _End):
                    end, piece = item, self._compressor.flush()
                else:
                    self._consumed += len(item)
                    piece = self._compressor.compress(item)
                pieces.append(piece)
                gathered += len(piece)
        except BaseException:
            self.close()
            raise
        blob_chunk = b"".join(pieces)
        self._size += len(blob_chunk)
        if self._compressing:
            self._hasher.update(blob_chunk)
        if end is not None and end.diff_id is not None:
            self._finish(end.diff_id)
        if not blob_chunk:
            raise StopIteration
        return blob_chunk

    @property
    def consumed(self) -> int:
        return self._consumed

    def _start(self) -> Iterator[bytes | _End]:
        assert self._tar_chunks is not None
        tar = _tar_then_diff_id(self._tar_chunks)
        self._tar_chunks = None
        if self._compressing:
            self._worker = _Worker(tar)
            # Stop the thread if the stream is dropped unread; the worker holds no ref to us.
            self._finalizer = weakref.finalize(self, self._worker.stop, join=False)
            self._source = self._worker.items()
        else:
            self._source = tar
        return self._source

    def _finish(self, diff_id: Digest) -> None:
        digest = Digest.from_hash(self._hasher) if self._compressing else diff_id
        self.digests = LayerDigests(self._media_type, digest, diff_id, self._size)
        self.close()

    def close(self) -> None:
        """Stop producing: the worker thread (if any) ends and the tar source is closed."""
        self._done = True
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._finalizer is not None:
            self._finalizer.detach()
        if isinstance(self._source, Generator):
            self._source.close()
        self._source = None
        self._tar_chunks = None


class _Worker:
    """Runs the tar producer in a daemon thread, handing its items over a bounded queue."""

    def __init__(self, tar: Generator[bytes | _End, None, None], depth: int = _QUEUE_DEPTH) -> None:
        self._queue: queue.Queue[bytes | _End | _Failed] = queue.Queue(depth)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=_produce,
            args=(tar, self._queue, self._stopping),
            name="ocibuild-tar",
            daemon=True,
        )
        self._thread.start()

    def items(self) -> Generator[bytes | _End, None, None]:
        """What the producer hands over, until the end; its error is raised here, unchanged."""
        while True:
            item = self._queue.get()
            if isinstance(item, _Failed):
                raise item.error
            yield item
            if isinstance(item, _End):
                return

    def stop(self, *, join: bool = True) -> None:
        """Make the producer stop after the chunk in hand; wait for it unless ``join`` is false."""
        self._stopping.set()
        # Free the queue so a producer blocked on put() wakes up and sees the flag.
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        if join and self._thread is not threading.current_thread():
            self._thread.join()


def _produce(
    tar: Generator[bytes | _End, None, None],
    out: queue.Queue[bytes | _End | _Failed],
    stopping: threading.Event,
) -> None:
    """The worker thread: run the tar producer into ``out`` until it ends, fails or is stopped."""
    try:
        for item in tar:
            out.put(item)
            if stopping.is_set():
                return
    except BaseException as err:  # handed to the consumer, which raises it
        if not stopping.is_set():
            out.put(_Failed(err))
    finally:
        tar.close()  # in this thread, which ran it: the producer closes the files it has open


def prefetched(blob: BlobStream, depth: int = 8) -> BlobStream:
    """``blob``, read ahead by a thread into a queue of ``depth`` chunks.

    A sink that waits on the network (a registry upload) would otherwise stall the
    compression that runs in its own thread; read ahead, the two overlap.
    """
    return _Prefetched(blob, depth)


def _until_end(blob: BlobStream) -> Generator[bytes | _End, None, None]:
    try:
        yield from blob
    finally:
        blob.close()  # in the thread that read it
    yield _End()


class _Prefetched(BlobStream):
    """A :class:`BlobStream` whose chunks a worker thread reads ahead of the consumer."""

    def __init__(self, blob: BlobStream, depth: int) -> None:
        self._blob = blob
        self._worker: _Worker | None = _Worker(_until_end(blob), depth)
        self._items = self._worker.items()
        self._finalizer = weakref.finalize(self, self._worker.stop, join=False)

    def __next__(self) -> bytes:
        try:
            item = next(self._items)
        except BaseException:
            self.close()
            raise
        if isinstance(item, _End):
            self.digests = self._blob.digests
            self.close()
            raise StopIteration
        return item

    @property
    def consumed(self) -> int | None:
        return self._blob.consumed

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        self._finalizer.detach()
        self._blob.close()


def reporting(blob: BlobStream, done: Callable[[LayerDigests], None]) -> BlobStream:
    """``blob``, calling ``done`` with its digests once it is exhausted (layers remember them)."""
    return _Reporting(blob, done)


class _Reporting(BlobStream):
    """Passes a blob stream through and reports its digests at the end."""

    def __init__(self, inner: BlobStream, done: Callable[[LayerDigests], None]) -> None:
        self._inner = inner
        self._done: Callable[[LayerDigests], None] | None = done

    def __next__(self) -> bytes:
        try:
            return next(self._inner)
        except StopIteration:
            self.digests = self._inner.digests
            if self.digests is not None and self._done is not None:
                self._done(self.digests)
                self._done = None
            raise

    @property
    def consumed(self) -> int | None:
        return self._inner.consumed

    def close(self) -> None:
        self._inner.close()
