"""Uploading one blob: monolithic when small and known, else chunked PATCHes while it streams.

Monolithic: ``POST`` opens a session, ``PUT <location>?digest=`` carries the whole body.
Chunked: ``POST``, then ``PATCH`` chunks of ``chunk_size`` (or the registry's
``OCI-Chunk-Min-Length``) with ``Content-Range``, always to the newest ``Location``, then
``PUT ?digest=``. Only the current chunk is held in memory, as the stream's own pieces.

Each request is retried by the transport (a chunk names its offset, so sending it again is
safe). When the registry has lost the session, the upload stops with
:class:`~ocibuild._errors.UploadSessionLostError`: the blob can only start over, from a
fresh stream, which is the writer's per-blob step (``ocibuild.image._write``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from ..._errors import UploadSessionLostError
from ...oci import Descriptor, Digest
from ...oci._layer import BlobStream
from ._challenge import repository_scope
from ._connection import Body, Connection
from ._errors import error_codes
from ._urls import resolve_location, with_digest

__all__ = ["SESSION_LOST_CODES", "UploadResult", "session_lost", "upload_blob"]

log = logging.getLogger("ocibuild.registry")

_OCTETS = "application/octet-stream"

# Docker Distribution 2.8 checks, on every request to a session, that the bytes it stored
# match the offset in the Location's state; after a PATCH broke mid-body they do not, so it
# answers BLOB_UPLOAD_INVALID (400), cancels the session, and answers BLOB_UPLOAD_UNKNOWN
# (404) from then on. A registry that kept part of a replayed chunk answers 416. None of
# these can be resumed: only a new session, with the blob from its first byte, goes on.
SESSION_LOST_CODES = frozenset({"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"})


@dataclass(frozen=True)
class UploadResult:
    """What an upload stored, and how many bytes went over the wire (resends included)."""

    digest: Digest
    size: int
    bytes_sent: int


def session_lost(response: httpx.Response) -> bool:
    """Whether an answer about an upload session says the session cannot go on."""
    if response.status_code in (404, 416):
        return True
    codes, _ = error_codes(response)
    return response.status_code == 400 and bool(SESSION_LOST_CODES & set(codes))


def upload_blob(
    connection: Connection,
    repository: str,
    stream: BlobStream,
    descriptor: Descriptor | None,
    *,
    location: str | None = None,
) -> UploadResult:
    """Upload ``stream`` into ``repository``; ``location`` continues a session a mount opened."""
    upload = _Upload(connection, repository, descriptor, location)
    if descriptor is not None and descriptor.size <= connection.options.chunk_size:
        return upload.monolithic(_read_whole(stream, descriptor))
    return upload.chunked(stream)


def _read_whole(stream: BlobStream, descriptor: Descriptor) -> list[bytes]:
    """The stream's pieces, checked against ``descriptor`` (never joined: no copy)."""
    parts: list[bytes] = []
    size = 0
    hasher = descriptor.digest.new_hasher()
    for chunk in stream:  # exhausting a VerifyingStream makes it check itself
        size += len(chunk)
        if size > descriptor.size:
            break  # longer than its descriptor: the check below says so
        hasher.update(chunk)
        parts.append(chunk)
    actual = Digest(descriptor.digest.algorithm, hasher.hexdigest())
    descriptor.check(actual, size, "the stream given to upload")
    return parts


class _Upload:
    """One upload session and where it stands (``offset`` = bytes acknowledged)."""

    def __init__(
        self,
        connection: Connection,
        repository: str,
        descriptor: Descriptor | None,
        location: str | None,
    ) -> None:
        self.connection = connection
        self.repository = repository
        self.descriptor = descriptor
        self.scopes = (repository_scope(repository, "pull", "push"),)
        self.location = location
        self.offset = 0
        self.sent = 0
        self.chunk_size = connection.options.chunk_size
        self.digest = descriptor.digest if descriptor is not None else None

    @property
    def what(self) -> str:
        blob = f"blob {self.digest}" if self.digest else "a streamed blob (digest not yet known)"
        return f"uploading {blob} to {self.connection.registry}/{self.repository}"

    def monolithic(self, parts: list[bytes]) -> UploadResult:
        """POST (unless a mount opened the session), then one PUT with the whole blob."""
        assert self.descriptor is not None
        if self.location is None:
            self._open()
        response = self._send("PUT", self._commit_url(self.descriptor.digest), parts)
        self._committed(response, self.descriptor.digest)
        return UploadResult(self.descriptor.digest, self.descriptor.size, self.sent)

    def chunked(self, stream: BlobStream) -> UploadResult:
        """Send every chunk as it fills, then commit the blob under its digest."""
        if self.location is None:
            self._open()
        # Chunks are lists of the stream's pieces (about 1 MiB each), never joined: a PATCH
        # body is sent from them as they are, so no chunk is ever copied.
        pieces: list[bytes] = []
        filled = 0
        for piece in stream:
            pieces.append(piece)
            filled += len(piece)
            if filled >= self.chunk_size:
                self._patch(pieces, filled)
                pieces, filled = [], 0
        result = stream.result
        if self.descriptor is not None:
            self.descriptor.check(result.digest, result.size, "the stream given to upload")
        self.digest = result.digest
        if filled:
            self._patch(pieces, filled)
        response = self._send("PUT", self._commit_url(result.digest), [])
        self._committed(response, result.digest)
        return UploadResult(result.digest, result.size, self.sent)

    def _open(self) -> None:
        response = self.connection.request(
            "POST", f"/v2/{self.repository}/blobs/uploads/", what=self.what,
            repository=self.repository, scopes=self.scopes, ok=(202,),
        )  # fmt: skip
        self.location = resolve_location(response)
        minimum = response.headers.get("oci-chunk-min-length", "")
        if minimum.isdigit():
            self.chunk_size = max(self.chunk_size, int(minimum))

    def _patch(self, pieces: list[bytes], length: int) -> None:
        start, end = self.offset, self.offset + length
        assert self.location is not None
        range_ = {"Content-Range": f"{start}-{end - 1}"}
        response = self._send("PATCH", self.location, pieces, range_)
        if response.status_code != 202:
            self._fail(response)
        if "location" in response.headers:
            self.location = resolve_location(response)
        self.offset = end

    def _send(
        self, method: str, url: str, pieces: list[bytes], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        operation = self.connection.retry.operation(self.what)
        # A long chunk on a slow link is progress, not a stall: each piece renews the budget.
        body = Body(pieces, on_piece=operation.renew) if pieces else None
        try:
            return self.connection.exchange(
                method, url, operation=operation, repository=self.repository,
                scopes=self.scopes, headers={"Content-Type": _OCTETS, **(headers or {})},
                content=body,
            )  # fmt: skip
        finally:
            self.sent += body.sent if body is not None else 0

    def _commit_url(self, digest: Digest) -> str:
        assert self.location is not None
        return with_digest(self.location, digest)

    def _committed(self, response: httpx.Response, digest: Digest) -> None:
        if response.status_code in (201, 204):
            return
        # A PUT sent again after its answer was lost finds the session closed: the first
        # one committed the blob, or the session was lost. The blob's presence tells which.
        if session_lost(response) and self._exists(digest):
            return
        self._fail(response)

    def _exists(self, digest: Digest) -> bool:
        response = self.connection.request(
            "HEAD", f"/v2/{self.repository}/blobs/{digest}", what=self.what,
            repository=self.repository, scopes=self.scopes, ok=(200, 404),
            follow_redirects=True,
        )  # fmt: skip
        return response.status_code == 200

    def _fail(self, response: httpx.Response) -> None:
        if session_lost(response):
            codes, _ = error_codes(response)
            raise UploadSessionLostError(
                f"{self.what}: the registry dropped the upload session after {self.offset} "
                f"bytes ({response.status_code} {', '.join(codes) or 'no error code'}); "
                "nothing was tagged, push again",
                status=response.status_code,
                codes=codes,
                url=str(response.request.url.copy_with(query=None)),
            )
        self.connection.check(response, self.what, self.repository)
