"""Uploading one blob: monolithic when small and known, else chunked PATCHes while it streams.

Monolithic: ``POST`` opens a session, ``PUT <location>?digest=`` carries the whole body.
Chunked: ``POST``, then ``PATCH`` chunks of ``chunk_size`` (or the registry's
``OCI-Chunk-Min-Length``) with ``Content-Range``, always to the newest ``Location``, then
``PUT ?digest=``. Only the current chunk is held in memory, as the stream's own pieces.
After a dropped connection the upload resumes from the registry's ``Range`` (``GET
<location>`` answers ``204``), so acknowledged chunks are never sent twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from ..._errors import DigestMismatchError, RegistryError
from ...oci import Descriptor, Digest
from ...oci._layer import BlobStream
from ._challenge import repository_scope
from ._errors import error_codes
from ._urls import resolve_location, with_digest

if TYPE_CHECKING:
    from ._client import RegistryClient

__all__ = ["UploadResult", "upload_blob"]

log = logging.getLogger("ocibuild.registry")

_OCTETS = "application/octet-stream"
_RANGE = re.compile(r"^(?:bytes=)?0-(\d+)$")
_LOST_CODES = frozenset({"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"})
_MAX_RESYNCS = 3
_MAX_RESTARTS = 2


@dataclass(frozen=True)
class UploadResult:
    """What an upload stored, and how many bytes went over the wire (resends included)."""

    digest: Digest
    size: int
    bytes_sent: int


def upload_blob(
    client: RegistryClient,
    repository: str,
    stream: BlobStream,
    descriptor: Descriptor | None,
    *,
    location: str | None = None,
) -> UploadResult:
    """Upload ``stream`` into ``repository``; ``location`` continues a session a mount opened."""
    if descriptor is not None and descriptor.size <= client.options.chunk_size:
        return _monolithic(client, repository, stream, descriptor, location)
    return _ChunkedUpload(client, repository, descriptor, location).run(stream)


def _monolithic(
    client: RegistryClient,
    repository: str,
    stream: BlobStream,
    descriptor: Descriptor,
    location: str | None,
) -> UploadResult:
    data = _read_whole(stream, descriptor)
    what = f"uploading blob {descriptor.digest} to {client.registry}/{repository}"
    scopes = (repository_scope(repository, "pull", "push"),)
    session: list[str | None] = [location]
    sent = [0]

    def attempt(n: int) -> httpx.Response:
        url = session[0]
        if url is None or n > 0:
            opened = client.connection.exchange(
                "POST", f"/v2/{repository}/blobs/uploads/", repository=repository, scopes=scopes
            )
            if opened.status_code != 202:
                return opened
            url = session[0] = resolve_location(opened)
        sent[0] += len(data)
        return client.connection.exchange(
            "PUT", with_digest(url, descriptor.digest), repository=repository,
            scopes=scopes, headers={"Content-Type": _OCTETS}, content=data,
        )  # fmt: skip

    response = client.retrying(what, attempt)
    if response.status_code not in (201, 204):
        client.check(response, what, repository)
    return UploadResult(descriptor.digest, len(data), sent[0])


def _read_whole(stream: BlobStream, descriptor: Descriptor) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in stream:  # exhausting a VerifyingStream makes it check itself
        size += len(chunk)
        if size > descriptor.size:
            raise DigestMismatchError(
                f"blob {descriptor.digest} is longer than its descriptor's {descriptor.size} bytes"
            )
        parts.append(chunk)
    return descriptor.verify(b"".join(parts), "the stream given to upload")


class _ChunkedUpload:
    """One streamed upload session and where it stands (``offset`` = bytes acknowledged)."""

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        descriptor: Descriptor | None,
        location: str | None,
    ) -> None:
        self.client = client
        self.repository = repository
        self.descriptor = descriptor
        self.scopes = (repository_scope(repository, "pull", "push"),)
        self.location = location
        self.offset = 0
        self.sent = 0
        self.restarts = 0
        self.chunk_size = client.options.chunk_size
        self.digest = descriptor.digest if descriptor is not None else None

    @property
    def what(self) -> str:
        blob = f"blob {self.digest}" if self.digest else "a streamed blob (digest not yet known)"
        return f"uploading {blob} to {self.client.registry}/{self.repository}"

    def run(self, stream: BlobStream) -> UploadResult:
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
                self._send(pieces, filled)
                pieces, filled = [], 0
        result = stream.result
        if self.descriptor is not None:
            self.descriptor.check(result.digest, result.size, "the stream given to upload")
        self.digest = result.digest
        if filled:
            self._send(pieces, filled)
        self._finish(result.digest)
        return UploadResult(result.digest, result.size, self.sent)

    def _open(self) -> None:
        response = self.client.call(
            "POST", f"/v2/{self.repository}/blobs/uploads/", what=self.what,
            repository=self.repository, scopes=self.scopes, ok=(202,),
        )  # fmt: skip
        self.location = resolve_location(response)
        self.offset = 0
        minimum = response.headers.get("oci-chunk-min-length", "")
        if minimum.isdigit():
            self.chunk_size = max(self.client.options.chunk_size, int(minimum))

    def _send(self, chunk: list[bytes], length: int) -> None:
        start, end = self.offset, self.offset + length
        resync = False
        resyncs = 0
        while self.offset < end:
            first_resync = resync
            response = self.client.retrying(
                self.what,
                lambda n: self._patch(chunk, start, end, resync=first_resync or n > 0),  # noqa: B023
            )
            status = response.status_code
            if status == 202:
                self._adopt(response, assumed=end)
                resync = False
            elif status == 204:  # a status answer: the registry already had this chunk
                continue
            elif status == 416 and resyncs < _MAX_RESYNCS:
                resyncs += 1
                resync = True
            elif _session_lost(response):
                self._restart_or_fail(start, response)
                resync = False
            else:
                self.client.check(response, self.what, self.repository)

    def _patch(self, chunk: list[bytes], start: int, end: int, *, resync: bool) -> httpx.Response:
        if resync:
            status = self._status()
            if status.status_code != 204 or self.offset >= end:
                return status
            if self.offset < start:
                raise RegistryError(
                    f"{self.what}: the registry holds {self.offset} bytes but had acknowledged "
                    f"{start}; push again"
                )
        body = _skip(chunk, self.offset - start) if self.offset > start else chunk
        self.sent += end - max(self.offset, start)
        assert self.location is not None
        return self.client.connection.exchange(
            "PATCH", self.location, repository=self.repository, scopes=self.scopes,
            headers={"Content-Type": _OCTETS, "Content-Range": f"{self.offset}-{end - 1}"},
            content=body,
        )  # fmt: skip

    def _status(self) -> httpx.Response:
        """Ask where the upload stands (``204`` + ``Range``) and adopt the answer."""
        assert self.location is not None
        response = self.client.connection.exchange(
            "GET", self.location, repository=self.repository, scopes=self.scopes
        )
        if response.status_code == 204:
            self._adopt(response, assumed=self.offset, status=True)
            log.info("%s: resuming at byte %d", self.what, self.offset)
        return response

    def _adopt(self, response: httpx.Response, *, assumed: int, status: bool = False) -> None:
        if "location" in response.headers:
            self.location = resolve_location(response)
        match = _RANGE.match(response.headers.get("range", "").strip())
        if match is None:
            self.offset = assumed
            return
        last = int(match.group(1))
        if last == 0:
            # Distribution answers "0-0" both for nothing stored and for one byte.
            self.offset = min(assumed, 1) if status else assumed
        else:
            self.offset = last + 1

    def _restart_or_fail(self, start: int, response: httpx.Response) -> None:
        # Docker Distribution 2.8 cancels a session whose last PATCH broke mid-body (its size
        # no longer matches the Location's state), so resuming is impossible; while nothing
        # before this chunk was sent, a fresh session does the job.
        codes, _ = error_codes(response)
        if start == 0 and self.restarts < _MAX_RESTARTS:
            self.restarts += 1
            log.info("%s: the registry dropped the session; starting a new one", self.what)
            self._open()
            return
        raise RegistryError(
            f"{self.what}: the registry dropped the upload session after {start} bytes "
            f"({response.status_code} {', '.join(codes) or 'no error code'}); nothing was "
            "tagged, push again",
            status=response.status_code,
            codes=codes,
            url=str(response.request.url.copy_with(query=None)),
        )

    def _finish(self, digest: Digest) -> None:
        assert self.location is not None

        def attempt(n: int) -> httpx.Response:
            if n > 0:
                status = self._status()
                if status.status_code != 204:
                    return status
            assert self.location is not None
            return self.client.connection.exchange(
                "PUT", with_digest(self.location, digest), repository=self.repository,
                scopes=self.scopes, headers={"Content-Type": _OCTETS},
            )  # fmt: skip

        response = self.client.retrying(self.what, attempt)
        if response.status_code in (201, 204):
            return
        # A PUT whose answer was lost may have committed the blob, closing the session.
        if response.status_code == 404 and self.client.exists(
            self.repository, digest, for_push=True
        ):
            return
        self.client.check(response, self.what, self.repository)


def _skip(pieces: list[bytes], count: int) -> list[bytes]:
    """``pieces`` without their first ``count`` bytes (what the registry already holds)."""
    out: list[bytes] = []
    for piece in pieces:
        if count >= len(piece):
            count -= len(piece)
            continue
        out.append(piece[count:] if count else piece)
        count = 0
    return out


def _session_lost(response: httpx.Response) -> bool:
    if response.status_code == 404:
        return True
    codes, _ = error_codes(response)
    return response.status_code == 400 and bool(_LOST_CODES & set(codes))
