"""A Cloud Storage resumable upload session: chunks sent in order, resumed where they broke.

The session URI (the ``Location`` of the POST that started it) authorizes its own requests,
so they carry no token. Each chunk but the last is a multiple of 256 KiB and goes as
``PUT`` with ``Content-Range: bytes A-B/*``; ``308`` answers say in ``Range`` what was
persisted. The last carries the total (``bytes A-B/TOTAL``, or ``bytes */TOTAL`` with no body
when the total is a multiple of the chunk size) and ``X-Goog-Hash: md5=`` for the API to check.

When a chunk's request fails on the way (the connection dropped, a timeout, 429 or 5xx), the
session is asked what it has (``bytes */*``) and only the rest of the chunk is sent again.
The chunk is in memory, so this works for a stream that cannot seek; nothing is read twice.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Mapping
from typing import Any, BinaryIO, Protocol

import httpx

from ._errors import GoogleApiError

__all__ = ["Backoff", "Hash", "ResumableUpload", "read_exact"]

RETRY_SECONDS = 60.0  # how long a session may make no progress before the upload gives up
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 8.0
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
API = "Cloud Storage"


class Hash(Protocol):
    """What :meth:`ResumableUpload.run` needs of a hashlib object."""

    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class ResumableUpload:
    """One session: :meth:`run` sends a source through it and returns the object resource.

    ``url`` (``gs://...``) names the object in messages; the session URI never appears in
    one, since whoever holds it may write the object.
    """

    def __init__(
        self,
        client: httpx.Client,
        session_uri: str,
        url: str,
        chunk_size: int,
        *,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._client = client
        self._session = session_uri
        self._url = url
        self._chunk_size = chunk_size
        self._retry_seconds = retry_seconds
        self.requests = 0  # requests sent to the session, for logs and tests

    def run(self, first: bytes, source: BinaryIO, md5: Hash) -> tuple[dict[str, Any], int]:
        """Send ``first`` (already read and hashed into ``md5``), then the rest of
        ``source``, one chunk in memory at a time; the object resource and the total size."""
        offset, chunk = 0, first
        while True:
            last = len(chunk) < self._chunk_size
            total = offset + len(chunk) if last else None
            hash_header = _goog_hash(md5) if last else None
            resource = self._send_chunk(chunk, offset, total, hash_header)
            if resource is not None:
                return resource, offset + len(chunk)
            if last:
                raise self._error(f"the session did not complete at {total} bytes")
            offset += len(chunk)
            chunk = read_exact(source, self._chunk_size)
            md5.update(chunk)

    def _send_chunk(
        self, chunk: bytes, start: int, total: int | None, hash_header: str | None
    ) -> dict[str, Any] | None:
        """Send ``chunk`` (at ``start``) until the session has all of it; the object resource
        once the session completes, else None."""
        end = start + len(chunk)
        position = start
        backoff = Backoff(self._retry_seconds)
        while True:
            data = chunk[position - start :]
            headers = {"Content-Range": _content_range(position, len(data), total)}
            if hash_header is not None:
                headers["X-Goog-Hash"] = hash_header
            try:
                answer = self._put(data, headers)
                interrupted = False
            except _Interrupted as lost:
                backoff.wait(lost.reason)
                answer = self._status(total, backoff)
                interrupted = True
            if answer.status_code in (200, 201):
                return _resource(answer)
            persisted = _persisted(answer)
            if persisted < start or persisted > end:
                raise self._error(
                    f"the session holds {persisted} bytes where {start} to {end} were expected"
                )
            if persisted == end:
                return None
            if persisted > position:
                backoff = Backoff(self._retry_seconds)  # progress: a new budget
            elif not interrupted:
                backoff.wait(f"the session kept nothing of bytes {position} to {end}")
            position = persisted

    def _status(self, total: int | None, backoff: Backoff) -> httpx.Response:
        """Ask the session what it has persisted (retried while the API is unavailable)."""
        headers = {"Content-Range": f"bytes */{'*' if total is None else total}"}
        while True:
            try:
                return self._put(b"", headers)
            except _Interrupted as lost:
                backoff.wait(lost.reason)

    def _put(self, data: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """One request to the session: 200, 201 or 308; ``_Interrupted`` for what may pass."""
        self.requests += 1
        try:
            answer = self._client.put(self._session, content=data, headers=headers)
        except httpx.TransportError as err:
            raise _Interrupted(f"{type(err).__name__}: {err}".rstrip(": ")) from err
        if answer.status_code in (200, 201, 308):
            return answer
        if answer.status_code in _TRANSIENT:
            raise _Interrupted(f"HTTP {answer.status_code}")
        raise self._api_error(answer)

    def _api_error(self, answer: httpx.Response) -> GoogleApiError:
        reason, message = _google_error(answer)
        status = answer.status_code
        said = f"{status} {reason}: {message}" if reason else f"{status} {message}"
        if status in (404, 410):
            said += "; the upload session expired: put the context again"
        return GoogleApiError(f"{API}: uploading {self._url}: {said}", status=status, reason=reason)

    def _error(self, what: str) -> GoogleApiError:
        return GoogleApiError(f"{API}: uploading {self._url}: {what}", status=0)


class _Interrupted(Exception):
    """A request that may succeed when tried again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Backoff:
    """Exponential backoff with jitter, within ``seconds`` of its creation."""

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._delay = FIRST_BACKOFF
        self._seconds = seconds

    def wait(self, reason: str) -> None:
        """Sleep before the next try, or raise when the budget is spent."""
        delay = self._delay * (0.5 + random.random() / 2)
        if time.monotonic() + delay > self._deadline:
            raise GoogleApiError(
                f"{API}: an upload made no progress for {self._seconds:g} s ({reason}); "
                "check the network and put the context again",
                status=0,
            )
        time.sleep(delay)
        self._delay = min(self._delay * 2, MAX_BACKOFF)


def read_exact(source: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of ``source`` (pipes return short reads)."""
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        part = source.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _content_range(position: int, length: int, total: int | None) -> str:
    of = "*" if total is None else str(total)
    if length == 0:
        return f"bytes */{of}"
    return f"bytes {position}-{position + length - 1}/{of}"


def _persisted(answer: httpx.Response) -> int:
    """From a 308's ``Range: bytes=0-N``: N + 1; no header: nothing persisted."""
    value = answer.headers.get("range", "")
    if not value:
        return 0
    _, _, last = value.removeprefix("bytes=").partition("-")
    if not last.isdigit():
        raise GoogleApiError(f"{API}: an upload session answered Range: {value!r}", status=308)
    return int(last) + 1


def _goog_hash(md5: Hash) -> str:
    return f"md5={base64.b64encode(md5.digest()).decode()}"


def _resource(answer: httpx.Response) -> dict[str, Any]:
    try:
        value = answer.json()
    except ValueError:
        value = None
    if not isinstance(value, dict):
        status = answer.status_code
        raise GoogleApiError(f"{API}: an upload completed with no object resource", status=status)
    return value


def _google_error(answer: httpx.Response) -> tuple[str, str]:
    """(reason, message) of Google's error JSON, or ("", the start of the body)."""
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        reason = error.get("status") or ""
        errors = error.get("errors")
        if not reason and isinstance(errors, list) and errors and isinstance(errors[0], dict):
            reason = str(errors[0].get("reason") or "")
        return str(reason), " ".join(str(error.get("message") or "").split())
    return "", " ".join(answer.text[:200].split()) or answer.reason_phrase
