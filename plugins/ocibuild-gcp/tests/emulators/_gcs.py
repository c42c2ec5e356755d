"""Cloud Storage's JSON API, the part a build-context store uses, over real HTTP on loopback.

Objects live in memory. Uploads follow the JSON API: ``uploadType=media`` and ``multipart``
(``POST /upload/storage/v1/b/B/o``), and ``resumable``: the POST answers a session URI in
``Location``; each ``PUT`` to it carries ``Content-Range: bytes A-B/*`` (``/TOTAL`` on the last)
and is answered ``308`` with ``Range: bytes=0-N`` (what is persisted) until the object is
complete (``200`` with the object resource); ``bytes */*`` or ``bytes */TOTAL`` asks for the
status. As in Cloud Storage, every request but the last must end on a 256 KiB boundary, and a
checksum sent by the client (``md5Hash`` in multipart metadata, ``X-Goog-Hash: md5=`` on the
last request) is checked: a mismatch is ``400``.

Faults for tests: :meth:`GcsEmulator.fail_chunk` persists part of the Nth data-carrying PUT
then cuts the connection (``"drop"``), answers ``503``, or forgets the session (``404``);
``corrupt = True`` flips a stored byte after every check (a store that lies), so only the
client's own comparison notices.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote

from ._server import Drop, Emulator, Reply, Request, error_reply

__all__ = ["CHUNK_QUANTUM", "Fault", "GcsEmulator", "StoredObject", "UploadSession"]

CHUNK_QUANTUM = 256 * 1024  # non-final resumable requests end on a multiple of this
_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")


@dataclass
class StoredObject:
    """An object as the emulator keeps it."""

    bucket: str
    name: str
    data: bytes
    generation: int
    content_type: str = "application/octet-stream"

    def resource(self) -> dict[str, Any]:
        """The JSON API's object resource (``size`` and ``generation`` are strings, as int64)."""
        md5 = base64.b64encode(hashlib.md5(self.data).digest()).decode()
        return {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{self.generation}",
            "name": self.name,
            "bucket": self.bucket,
            "generation": str(self.generation),
            "contentType": self.content_type,
            "size": str(len(self.data)),
            "md5Hash": md5,
        }


@dataclass
class UploadSession:
    """A resumable upload: the bytes persisted so far, and the object once complete."""

    bucket: str
    name: str
    content_type: str
    data: bytearray = field(default_factory=bytearray)
    done: StoredObject | None = None


Kind = Literal["drop", "503", "expire"]


@dataclass
class Fault:
    """On the ``chunk``-th data-carrying PUT (1-based): keep ``persist`` of its bytes, then
    ``"drop"`` the connection, answer ``"503"``, or forget the session (``"expire"``: 404)."""

    chunk: int
    kind: Kind
    persist: int


class GcsEmulator(Emulator):
    """The emulator; ``token_valid`` checks bearer tokens (``None``: anonymous access, as
    behind ``STORAGE_EMULATOR_HOST``). Buckets exist once added to ``buckets``."""

    def __init__(self, token_valid: Callable[[str | None], bool] | None = None) -> None:
        super().__init__("Cloud Storage")
        self.token_valid = token_valid
        self.refuse_tokens = False  # answer 401 to every token
        self.corrupt = False
        self.buckets: set[str] = set()
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.sessions: dict[str, UploadSession] = {}
        self.media_bytes = 0  # bytes of object data received, over every upload request
        self.data_puts = 0
        self._faults: list[Fault] = []
        self._store_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._add_routes()

    # -- what tests use --------------------------------------------------------------

    def fail_chunk(self, chunk: int, kind: Kind = "drop", persist: int | None = None) -> None:
        """Fail the ``chunk``-th data PUT after persisting ``persist`` bytes of it (default:
        the largest multiple of 256 KiB up to half the chunk)."""
        self._faults.append(Fault(chunk, kind, -1 if persist is None else persist))

    def data(self, bucket: str, name: str) -> bytes:
        """The stored bytes of an object (KeyError if absent)."""
        return self.objects[bucket, name].data

    # -- routes ----------------------------------------------------------------------

    def _add_routes(self) -> None:
        route = self.route
        route("POST", r"/upload/storage/v1/b/([^/]+)/o")(self._authorized(self._upload))
        route("PUT", r"/upload/storage/v1/b/([^/]+)/o")(self._session_put)
        route("GET", r"/storage/v1/b/([^/]+)/o/(.+)")(self._authorized(self._get))
        route("DELETE", r"/storage/v1/b/([^/]+)/o/(.+)")(self._authorized(self._delete))

    def _authorized(self, handler: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def check(request: Request) -> Reply:
            if self.token_valid is not None:
                token = request.bearer
                if token is None:
                    return _error(401, "required", "Anonymous caller does not have access.")
                if self.refuse_tokens or not self.token_valid(token):
                    return _error(401, "authError", "Invalid Credentials")
            bucket = request.groups[0]
            if bucket not in self.buckets:
                return _error(404, "notFound", "The specified bucket does not exist.")
            return handler(request)

        return check

    def _upload(self, request: Request) -> Reply:
        bucket = request.groups[0]
        kind = request.param("uploadType")
        if kind == "media":
            name = request.param("name")
            if not name:
                return _error(400, "required", "Required parameter: name")
            ctype = request.headers.get("content-type", "application/octet-stream")
            return self._store(bucket, name, request.body, ctype, expected_md5=None)
        if kind == "multipart":
            return self._multipart(bucket, request)
        if kind == "resumable":
            return self._start_session(bucket, request)
        return _error(400, "invalidParameter", f"Invalid upload type {kind!r}")

    def _multipart(self, bucket: str, request: Request) -> Reply:
        ctype = request.headers.get("content-type", "")
        found = re.search(r'boundary="?([^";]+)"?', ctype)
        if not ctype.startswith("multipart/related") or found is None:
            return _error(400, "invalid", "multipart upload needs multipart/related; boundary=")
        parts = _split_multipart(request.body, found.group(1).encode())
        if len(parts) != 2:
            return _error(400, "invalid", f"multipart upload has {len(parts)} parts, not 2")
        (_, meta_body), (media_headers, media) = parts
        metadata = json.loads(meta_body)
        name = metadata.get("name") or request.param("name")
        if not name:
            return _error(400, "required", "Required parameter: name")
        media_type = media_headers.get("content-type", "application/octet-stream")
        content_type = metadata.get("contentType", media_type)
        return self._store(bucket, name, media, content_type, metadata.get("md5Hash"))

    def _start_session(self, bucket: str, request: Request) -> Reply:
        metadata = request.json() if request.body else {}
        name = request.param("name") or metadata.get("name")
        if not name:
            return _error(400, "required", "Required parameter: name")
        upload_id = f"upload-{next(self._ids)}"
        content_type = request.headers.get("x-upload-content-type", "application/octet-stream")
        with self._store_lock:
            self.sessions[upload_id] = UploadSession(bucket, name, content_type)
        location = (
            f"{self.url}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
            f"&name={quote(name, safe='')}&upload_id={upload_id}"
        )
        return Reply(200, body=b"", headers={"Location": location})

    def _session_put(self, request: Request) -> Reply:
        session = self.sessions.get(request.param("upload_id") or "")
        if session is None:
            return _error(404, "notFound", "No such upload session.")
        found = _RANGE.fullmatch(request.headers.get("content-range", ""))
        if found is None:
            return _error(400, "invalid", "Content-Range must be bytes A-B/TOTAL or bytes */TOTAL")
        first, last, total_text = found.groups()
        total = None if total_text == "*" else int(total_text)
        if session.done is not None:
            return Reply(200, session.done.resource())
        if first is None:  # a status query, or the last (empty) request of a known total
            if request.body:
                return _error(400, "invalid", "a status query carries no body")
            if total is not None and total == len(session.data):
                return self._finish(session, request)
            return _persisted(session)
        return self._session_data(session, request, int(first), int(last), total)

    def _session_data(
        self, session: UploadSession, request: Request, first: int, last: int, total: int | None
    ) -> Reply:
        body = request.body
        with self._store_lock:
            self.media_bytes += len(body)
            self.data_puts += 1
            fault = next((f for f in self._faults if f.chunk == self.data_puts), None)
        if len(body) != last - first + 1:
            return _error(
                400, "invalid", f"Content-Range says {last - first + 1} bytes, got {len(body)}"
            )
        if first != len(session.data):
            return _error(400, "invalid", f"expected the upload to continue at {len(session.data)}")
        final = total is not None and last + 1 == total
        if not final and (last + 1) % CHUNK_QUANTUM:
            return _error(400, "invalid", "a non-final chunk must end on a multiple of 256 KiB")
        if fault is not None:
            half = len(body) // 2 // CHUNK_QUANTUM * CHUNK_QUANTUM
            keep = fault.persist if fault.persist >= 0 else half
            session.data += body[:keep]
            if fault.kind == "drop":
                raise Drop
            if fault.kind == "expire":
                with self._store_lock:
                    self.sessions = {k: v for k, v in self.sessions.items() if v is not session}
                return _error(404, "notFound", "No such upload session.")
            return _error(503, "backendError", "Backend Error")
        session.data += body
        if final:
            return self._finish(session, request)
        return _persisted(session)

    def _finish(self, session: UploadSession, request: Request) -> Reply:
        md5 = _goog_hash_md5(request.headers.get("x-goog-hash", ""))
        reply = self._store(
            session.bucket, session.name, bytes(session.data), session.content_type, md5
        )
        if reply.status == 200:
            session.done = self.objects[session.bucket, session.name]
        return reply

    def _store(
        self, bucket: str, name: str, data: bytes, content_type: str, expected_md5: str | None
    ) -> Reply:
        if expected_md5 is not None:
            actual = base64.b64encode(hashlib.md5(data).digest()).decode()
            if actual != expected_md5:
                return _error(
                    400,
                    "invalid",
                    f"Provided MD5 hash {expected_md5!r} doesn't match calculated MD5 hash "
                    f"{actual!r}.",
                )
        with self._store_lock:
            if self.corrupt and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            stored = StoredObject(bucket, name, data, next(self._ids), content_type)
            self.objects[bucket, name] = stored
        return Reply(200, stored.resource())

    def _get(self, request: Request) -> Reply:
        bucket, name = request.groups[0], unquote(request.groups[1])
        stored = self.objects.get((bucket, name))
        if stored is None:
            return _error(404, "notFound", f"No such object: {bucket}/{name}")
        if request.param("alt") == "media":
            return Reply(200, body=stored.data, headers={"Content-Type": stored.content_type})
        return Reply(200, stored.resource())

    def _delete(self, request: Request) -> Reply:
        bucket, name = request.groups[0], unquote(request.groups[1])
        with self._store_lock:
            stored = self.objects.pop((bucket, name), None)
        if stored is None:
            return _error(404, "notFound", f"No such object: {bucket}/{name}")
        return Reply(204)


def _error(status: int, reason: str, message: str) -> Reply:
    """An error as Cloud Storage's JSON API sends it (``errors[].reason`` as well)."""
    reply = error_reply(status, _STATUS_NAMES.get(status, "UNKNOWN"), message)
    reply.json["error"]["errors"] = [{"domain": "global", "reason": reason, "message": message}]
    return reply


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    503: "UNAVAILABLE",
}


def _persisted(session: UploadSession) -> Reply:
    """``308``; ``Range`` only when something is persisted, as Cloud Storage answers."""
    headers = {"Range": f"bytes=0-{len(session.data) - 1}"} if session.data else {}
    return Reply(308, body=b"", headers=headers)


def _goog_hash_md5(header: str) -> str | None:
    for item in header.split(","):
        algorithm, _, value = item.strip().partition("=")
        if algorithm == "md5" and value:
            return value
    return None


def _split_multipart(body: bytes, boundary: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/related`` body: (lower-case headers, content)."""
    delimiter = b"--" + boundary
    sections = body.split(b"\r\n" + delimiter)
    first = sections[0]
    if not first.startswith(delimiter):
        return []
    sections[0] = first[len(delimiter) :]
    parts = []
    for section in sections:
        if section.startswith(b"--"):
            break  # the close delimiter
        head, _, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key:
                headers[key.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts
