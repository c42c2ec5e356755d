"""The context store ``gcs``: build contexts as objects in a Cloud Storage bucket.

A cluster builder hands its context tarball to :meth:`GcsContextStore.put`, which uploads it
through the JSON API and returns ``gs://BUCKET/PREFIX/KEY``, the spelling Kaniko takes as
``--context``. The source is read once, one chunk at a time: a context smaller than a chunk
goes up in one multipart request, anything larger as a resumable upload whose chunks
survive a dropped connection or a 5xx (the session is asked what it kept, and only the rest
is sent). MD5 is computed in the same pass and checked twice: the API compares it with what
it received (``md5Hash`` in the metadata, ``X-Goog-Hash`` on the last request), and the store
compares the object the API reports, deleting it when size or MD5 differ.

Endpoint: ``api_endpoint``, else ``$STORAGE_EMULATOR_HOST`` (as Google's libraries read it:
``http://`` assumed, credentials used when found and not required), else
``https://storage.googleapis.com`` with Application Default Credentials.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from ocibuild import DigestMismatchError, InvalidOptionError, SourceError

from ._errors import GoogleApiError

if TYPE_CHECKING:
    import httpx

    from ._api import GoogleApi
    from ._auth import GoogleCredentials

# Cloud Storage takes resumable chunks in multiples of 256 KiB.
CHUNK_QUANTUM = 256 * 1024

__all__ = [
    "CHUNK_QUANTUM",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_ENDPOINT",
    "DEFAULT_PREFIX",
    "EMULATOR_ENV",
    "GcsContextStore",
    "check_bucket",
    "object_name",
    "parse_gs_url",
]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
DEFAULT_PREFIX = "ocibuild/contexts/"
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
API = "Cloud Storage"
TIMEOUT = 60.0  # per read or write of a request, not for the whole request
CONNECT_TIMEOUT = 15.0
# A context is stored as the bytes it is: no Content-Encoding, or Cloud Storage would
# decompress a gzip tarball on download (decompressive transcoding) and Kaniko find a tar.
CONTENT_TYPE = "application/octet-stream"

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_NAMING = "https://cloud.google.com/storage/docs/buckets#naming"


class GcsContextStore:
    """Build contexts in the Cloud Storage bucket ``bucket`` (or ``gs://BUCKET/PREFIX``),
    under ``prefix`` (default ``ocibuild/contexts/``).

    ``chunk_size``: bytes per resumable request and the largest context sent in one request
    (default 8 MiB; a multiple of 256 KiB, as Cloud Storage requires); one chunk is what the
    store holds in memory. ``api_endpoint``: the JSON API's base URL (see the module).
    ``project`` is accepted like the other Google options and not needed for uploads.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str | None = None,
        project: str | None = None,
        chunk_size: int | str = DEFAULT_CHUNK_SIZE,
        api_endpoint: str | None = None,
    ) -> None:
        self.bucket, from_url = _split_bucket(bucket)
        if from_url is not None and prefix is not None:
            raise InvalidOptionError(
                f"gcs: bucket {bucket!r} already names a prefix; drop prefix={prefix!r} or "
                "give the bucket alone"
            )
        self.prefix = _normal_prefix(from_url if from_url is not None else prefix)
        self.project = project
        self.chunk_size = _chunk_size(chunk_size)
        self.endpoint, self._anonymous_ok = _endpoint(api_endpoint)
        self._credentials: list[GoogleCredentials | None] = []  # once looked up
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"GcsContextStore(bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"endpoint={self.endpoint!r})"
        )

    # -- the ContextStore protocol ---------------------------------------------------

    def put(self, context: Path | BinaryIO, key: str) -> str:
        """Upload the tarball (a file, or a binary stream read to its end) as
        ``PREFIX + key``; return its ``gs://`` URL. A stream that cannot seek is fine: the
        chunk being sent is kept in memory, so a resumed request resends it from there."""
        # The HTTP stack loads when a context is stored: the plugin's hooks stay light.
        from ._gcs_upload import ResumableUpload, read_exact

        name = object_name(self.prefix + key)
        url = f"gs://{self.bucket}/{name}"
        with _opened(context) as source, _client() as client, self._api(client) as api:
            md5 = hashlib.md5(usedforsecurity=False)
            first = read_exact(source, self.chunk_size)
            md5.update(first)
            if len(first) < self.chunk_size:
                resource = self._upload_one(api, name, first, md5.digest())
                size = len(first)
            else:
                session = self._start_session(api, name)
                upload = ResumableUpload(client, session, url, self.chunk_size)
                resource, size = upload.run(first, source, md5)
            self._verify(api, url, resource, size, _b64(md5.digest()))
        log.info("stored the build context as %s (%d bytes)", url, size)
        return url

    def delete(self, url: str) -> None:
        """Delete the object at ``url`` (``gs://BUCKET/NAME``); one already gone is fine."""
        bucket, name = parse_gs_url(url)
        with _client() as client, self._api(client) as api:
            api.request("DELETE", _object_path(bucket, name), ok=(200, 204, 404))

    # -- steps -----------------------------------------------------------------------

    def _upload_one(self, api: GoogleApi, name: str, data: bytes, md5: bytes) -> dict[str, Any]:
        """One multipart request: the metadata (with the MD5 the API checks), then the bytes."""
        metadata = {"name": name, "contentType": CONTENT_TYPE, "md5Hash": _b64(md5)}
        boundary = f"ocibuild-{secrets.token_hex(16)}"
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(metadata)}\r\n--{boundary}\r\nContent-Type: {CONTENT_TYPE}\r\n\r\n"
        )
        body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
        answer = api.request(
            "POST",
            f"/upload/storage/v1/b/{self.bucket}/o",
            params={"uploadType": "multipart"},
            content=body,
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        return _resource(answer.json())

    def _start_session(self, api: GoogleApi, name: str) -> str:
        """A resumable upload session; its URI (``Location``) takes the chunks."""
        answer = api.request(
            "POST",
            f"/upload/storage/v1/b/{self.bucket}/o",
            params={"uploadType": "resumable", "name": name},
            json={"contentType": CONTENT_TYPE},
            headers={"X-Upload-Content-Type": CONTENT_TYPE},
        )
        location = answer.headers.get("location")
        if not isinstance(location, str) or not location:
            raise GoogleApiError(
                f"{API}: starting an upload to gs://{self.bucket}/{name} gave no session URI "
                "(no Location header); is the endpoint Cloud Storage's JSON API?",
                status=answer.status_code,
            )
        return location

    def _verify(
        self, api: GoogleApi, url: str, resource: dict[str, Any], size: int, md5: str
    ) -> None:
        """The object the API made holds what was sent, or it is deleted."""
        stored_size, stored_md5 = str(resource.get("size")), resource.get("md5Hash")
        if stored_size == str(size) and stored_md5 in (md5, None):
            return  # an object without md5Hash (composite) is checked by size alone
        bucket, name = parse_gs_url(url)
        generation = resource.get("generation")
        # Only the object made here: a newer one of the same name is someone else's.
        params = {"ifGenerationMatch": str(generation)} if generation is not None else None
        try:
            api.request(
                "DELETE", _object_path(bucket, name), params=params, ok=(200, 204, 404, 412)
            )
            done = "the object was deleted"
        except GoogleApiError as err:
            done = f"deleting it failed too ({err.status} {err.reason}): delete it"
        raise DigestMismatchError(
            f"{API} stored {url} as {stored_size} bytes with MD5 {stored_md5}, not the "
            f"{size} bytes with MD5 {md5} that were sent; {done}, and put the context again"
        )

    def _api(self, client: httpx.Client) -> GoogleApi:
        from ._api import GoogleApi

        return GoogleApi(self.endpoint, self._found_credentials(), api=API, client=client)

    def _found_credentials(self) -> GoogleCredentials | None:
        from ._auth import application_default_credentials, find_credentials

        with self._lock:
            if not self._credentials:
                lookup = find_credentials if self._anonymous_ok else application_default_credentials
                self._credentials.append(lookup())
            return self._credentials[0]


# -- names -------------------------------------------------------------------------------


def check_bucket(name: str) -> str:
    """``name`` if Cloud Storage allows it as a bucket name, else an InvalidOptionError."""
    rule = _bucket_rule(name)
    if rule:
        raise InvalidOptionError(f"gcs: bucket name {name!r} {rule} (see {_NAMING})")
    return name


def _bucket_rule(name: str) -> str:
    """The naming rule ``name`` breaks, or ``""``."""
    if not isinstance(name, str) or not name:
        return "is empty: give the bucket's name, or gs://BUCKET/PREFIX"
    if not _BUCKET.fullmatch(name):
        return (
            "must be lowercase letters, digits, '-', '_' and '.', and start and end with a "
            "letter or digit"
        )
    limit = 222 if "." in name else 63
    if not 3 <= len(name) <= limit or any(len(part) > 63 for part in name.split(".")):
        return "must be 3 to 63 characters (222 with dots, 63 between dots)"
    if _IPV4.fullmatch(name):
        return "must not be an IP address"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "must not start with 'goog' or contain 'google'"
    return ""


def object_name(name: str) -> str:
    """``name`` if Cloud Storage allows it as an object name, else an InvalidOptionError."""
    size = len(name.encode("utf-8", "surrogatepass"))
    if not name or size > 1024:
        raise InvalidOptionError(f"gcs: object name {name!r} must be 1 to 1024 bytes of UTF-8")
    if "\r" in name or "\n" in name or name in (".", ".."):
        raise InvalidOptionError(
            f"gcs: object name {name!r} must not hold a line break or be '.' or '..'"
        )
    return name


def parse_gs_url(url: str) -> tuple[str, str]:
    """``gs://BUCKET/NAME`` -> (bucket, name)."""
    if not isinstance(url, str) or not url.startswith("gs://"):
        raise InvalidOptionError(f"gcs: {url!r} is not a gs://BUCKET/NAME URL")
    bucket, _, name = url[len("gs://") :].partition("/")
    if not name:
        raise InvalidOptionError(f"gcs: {url!r} names no object: gs://BUCKET/NAME")
    return check_bucket(bucket), object_name(name)


def _split_bucket(bucket: str) -> tuple[str, str | None]:
    """``bucket`` or ``gs://bucket[/prefix]`` -> (bucket, the prefix it names, if any)."""
    if isinstance(bucket, str) and bucket.startswith("gs://"):
        name, slash, prefix = bucket[len("gs://") :].partition("/")
        return check_bucket(name), (prefix if slash and prefix else None)
    return check_bucket(bucket), None


def _normal_prefix(prefix: str | None) -> str:
    if prefix is None:
        return DEFAULT_PREFIX
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _chunk_size(value: int | str) -> int:
    size = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % CHUNK_QUANTUM:
        raise InvalidOptionError(
            f"gcs: chunk_size {value!r} must be a positive multiple of 256 KiB "
            f"({CHUNK_QUANTUM} bytes), as Cloud Storage requires"
        )
    return size


def _endpoint(api_endpoint: str | None) -> tuple[str, bool]:
    """The base URL, and whether it may be used without credentials (an emulator)."""
    if api_endpoint:
        if not re.match(r"https?://[^/]", api_endpoint):
            raise InvalidOptionError(
                f"gcs: api_endpoint {api_endpoint!r} is not an http:// or https:// URL"
            )
        return api_endpoint.rstrip("/"), False
    host = os.environ.get(EMULATOR_ENV, "").strip()
    if host:
        return (host if "://" in host else f"http://{host}").rstrip("/"), True
    return DEFAULT_ENDPOINT, False


def _client() -> httpx.Client:
    # Shared by the API calls and the session's requests: one connection pool per call.
    import httpx

    return httpx.Client(timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT))


def _object_path(bucket: str, name: str) -> str:
    return f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}"


def _opened(context: Path | BinaryIO) -> AbstractContextManager[BinaryIO]:
    """A file to read: ``context`` opened (and closed after), or the caller's stream as is."""
    if isinstance(context, (str, os.PathLike)):
        path = Path(context)
        try:
            return path.open("rb")
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise SourceError(f"gcs: cannot read the build context {path}: {reason}") from None
    return nullcontext(context)


def _resource(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GoogleApiError(f"{API} answered an upload with no object resource", status=200)
    return value


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
