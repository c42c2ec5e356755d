"""The two sides every transport implements: where images come from and where they go.

Transports are named the way skopeo names them: ``REGISTRY/REPO[:TAG][@DIGEST]`` (or
``docker://...``), ``oci:PATH[:TAG]``, ``docker-archive:PATH[:REF]``, and ``scratch``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from ..oci import Descriptor, Platform
from ..oci._layer import BlobStream, Layer

__all__ = [
    "BlobOutcome",
    "BlobResult",
    "ImageSink",
    "ImageSource",
    "NullProgress",
    "Phase",
    "Progress",
    "phase",
]

BlobOutcome = Literal["uploaded", "written", "exists", "mounted"]


class Progress(Protocol):
    """Receives byte and blob progress; the CLI draws it, the library default ignores it."""

    def blob_started(self, key: str, label: str, total: int | None) -> None:
        """A blob transfer (``key`` is unique per transfer) begins; ``total`` may be unknown."""

    def blob_advanced(self, key: str, nbytes: int) -> None:
        """``nbytes`` more bytes of ``key`` went through."""

    def blob_finished(self, key: str, outcome: str) -> None:
        """The blob is done: uploaded, written, exists, mounted (or failed)."""

    def phase_started(self, name: str) -> None:
        """A step that is not one blob (``resolve base``, ``dependencies``, ``manifest``) begins."""

    def phase_finished(self, name: str, detail: str) -> None:
        """The step ``name`` is over; ``detail`` says what it did (or ``failed``)."""


class NullProgress:
    """Progress that shows nothing."""

    def blob_started(self, key: str, label: str, total: int | None) -> None:
        pass

    def blob_advanced(self, key: str, nbytes: int) -> None:
        pass

    def blob_finished(self, key: str, outcome: str) -> None:
        pass

    def phase_started(self, name: str) -> None:
        pass

    def phase_finished(self, name: str, detail: str) -> None:
        pass


class Phase:
    """What :func:`phase` hands its block: set :attr:`detail` to say what the step did."""

    def __init__(self) -> None:
        self.detail = ""


@contextlib.contextmanager
def phase(progress: Progress | None, name: str) -> Iterator[Phase]:
    """Report the block as the step ``name``: started, then finished with its detail.

    A progress object written before phases existed (blob methods only) is still accepted:
    its phases are not shown.
    """
    started = getattr(progress, "phase_started", None)
    finished = getattr(progress, "phase_finished", None)
    step = Phase()
    if started is not None:
        started(name)
    try:
        yield step
    except BaseException:
        if finished is not None:
            finished(name, "failed")
        raise
    if finished is not None:
        finished(name, step.detail)


class ImageSource(Protocol):
    """Somewhere images can be read from."""

    @property
    def name(self) -> str:
        """The spelling the user gave (for messages and base-image annotations)."""
        ...

    def get_manifest(self) -> tuple[bytes, str]:
        """The raw bytes and media type of the top-level manifest or index named by the location."""
        ...

    def get_child_manifest(self, descriptor: Descriptor) -> bytes:
        """The raw bytes of a manifest an index points to (verified against its digest)."""
        ...

    def get_blob(self, descriptor: Descriptor) -> bytes:
        """A small blob (a config), read whole and verified."""
        ...

    def open_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        """A stream of a blob's bytes (the caller verifies; see ``VerifyingStream``)."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class ImageSink(Protocol):
    """Somewhere images can be written to. Nothing is visible under a tag until :meth:`commit`."""

    @property
    def name(self) -> str:
        """The spelling the user gave."""
        ...

    @property
    def concurrency(self) -> int:
        """How many blobs may be written at once (1 for sinks that write one file)."""
        ...

    @property
    def stores_uncompressed(self) -> bool:
        """Whether the sink stores layers as plain tars (docker-archive).

        Such a sink is handed each layer's uncompressed tar (``tar_blob``), never a compressed
        blob, and the manifest put into it describes the layers as stored: digest = diff_id.
        """
        ...

    def has_blob(self, descriptor: Descriptor) -> bool:
        """Whether the blob is already there (so it need not be written)."""
        ...

    def try_mount(self, layer: Layer, descriptor: Descriptor) -> bool:
        """Make the blob appear without sending it (a cross-repo mount); ``False`` if not done."""
        ...

    def put_blob(self, stream: BlobStream, descriptor: Descriptor | None) -> BlobOutcome:
        """Write a blob from ``stream``; ``descriptor`` is given when the digest is known up front.

        The stream's ``result`` holds the digests once exhausted; a sink commits a blob only
        after the whole stream was read and verified.
        """
        ...

    def put_manifest(
        self, data: bytes, media_type: str, *, tag: str | None, platform: Platform | None = None
    ) -> Descriptor:
        """Write manifest or index bytes; ``tag`` names it (only the top-level one gets a tag)."""
        ...

    def commit(self) -> None:
        """Make everything written visible (tags, index.json, the archive file)."""
        ...

    def abort(self) -> None:
        """Undo what can be undone: nothing written so far may become visible under a tag."""
        ...


@dataclass(frozen=True)
class BlobResult:
    """What happened to one blob during a write."""

    descriptor: Descriptor
    outcome: BlobOutcome
    diff_id: str | None = None
    label: str = ""
    bytes_sent: int = 0
