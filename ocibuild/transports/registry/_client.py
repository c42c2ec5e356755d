"""The distribution protocol for one registry host: manifests, blobs, tags, mounts, uploads.

Every request is one :meth:`Connection.exchange` (with the auth flow) run under the
:class:`~._retry.RetryPolicy`; the upload steps live in ``_upload.py``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from ..._errors import NotFoundError, RegistryError
from ...oci import Descriptor, Digest
from ...oci import media_types as mt
from ...oci._layer import BlobStream
from ._challenge import repository_scope
from ._connection import Connection
from ._errors import raise_for_status
from ._options import RegistryOptions
from ._retry import RetryPolicy
from ._upload import UploadResult, upload_blob
from ._urls import resolve_location

__all__ = ["MountResult", "RegistryClient"]

log = logging.getLogger("ocibuild.registry")

_MAX_MANIFEST = 8 << 20  # the spec asks registries to take at least 4 MB
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class MountResult:
    """A cross-repository mount: done, or an upload session opened in its place (202)."""

    mounted: bool
    location: str | None = None


class RegistryClient:
    """Talks to one registry host; thread-safe, connections pooled, closed by :meth:`close`."""

    def __init__(self, registry: str, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        self.registry = registry
        self.retry = RetryPolicy(self.options.retry_budget)
        self.connection = Connection(registry, self.options, self.retry)
        self.host = self.connection.host
        self.auth = self.connection.auth

    def __repr__(self) -> str:
        return f"<RegistryClient {self.registry}>"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections (the client reopens them if used again)."""
        self.connection.close()

    # -- plumbing (used by the upload steps too) -------------------------------------------

    def base_url(self) -> str:
        """``scheme://host`` of the registry, decided once by pinging ``/v2/``."""
        return self.connection.base_url()

    def call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        repository: str | None,
        scopes: tuple[str, ...] = (),
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        """A request retried through transient failures; answers outside ``ok`` raise."""
        response = self.retry.run(
            what,
            lambda n: self.connection.exchange(
                method, url, repository=repository, scopes=scopes, **kwargs
            ),
        )
        if response.status_code not in ok:
            self.check(response, what, repository)
        return response

    def check(self, response: httpx.Response, what: str, repository: str | None) -> None:
        """Raise the error a failed answer stands for (naming the credential source tried)."""
        try:
            raise_for_status(
                response, what, credential_source=self.auth.source(repository), host=self.registry
            )
        finally:
            response.close()
        raise RegistryError(
            f"{what}: {self.registry} answered an unexpected {response.status_code}",
            status=response.status_code,
            url=str(response.request.url.copy_with(query=None)),
        )

    def retrying(self, what: str, attempt: Callable[[int], httpx.Response]) -> httpx.Response:
        """Run a multi-request ``attempt`` under the retry policy."""
        return self.retry.run(what, attempt)

    # -- reads ------------------------------------------------------------------------------

    def ping(self) -> None:
        """Make sure the registry answers (and learn how it wants to be authenticated)."""
        self.connection.base_url()

    def check_login(self) -> None:
        """Authenticate against ``/v2/``; raises :class:`AuthenticationError` if refused."""
        self.call("GET", "/v2/", what=f"logging in to {self.registry}", repository=None)

    def exists(self, repository: str, digest: Digest, *, for_push: bool = False) -> bool:
        """Whether the blob is in ``repository`` (HEAD); ``for_push`` asks for a push token."""
        actions = ("pull", "push") if for_push else ("pull",)
        response = self.call(
            "HEAD", f"/v2/{repository}/blobs/{digest}",
            what=f"checking for blob {digest} in {self.registry}/{repository}",
            repository=repository, scopes=(repository_scope(repository, *actions),),
            ok=(200, 404), follow_redirects=True,
        )  # fmt: skip
        response.close()
        return response.status_code == 200

    def get_manifest(self, repository: str, identifier: str) -> tuple[bytes, str, Digest]:
        """Bytes, media type and digest of a manifest or index, verified when asked by digest."""
        name = _image_name(self.registry, repository, identifier)
        response = self.call(
            "GET", f"/v2/{repository}/manifests/{identifier}",
            what=f"reading manifest of {name}", repository=repository,
            scopes=(repository_scope(repository, "pull"),), ok=(200, 404),
            headers={"Accept": mt.MANIFEST_ACCEPT}, stream=True,
        )  # fmt: skip
        if response.status_code == 404:
            response.close()
            raise NotFoundError(f"image '{name}' not found")
        data = _read_capped(response, _MAX_MANIFEST, f"the manifest of {name}")
        media_type = _media_type(response.headers.get("content-type"), data)
        digest = _verify_manifest(data, identifier, name)
        return data, media_type, digest

    def head_manifest(self, repository: str, identifier: str) -> Descriptor | None:
        """The descriptor of a manifest (HEAD), or None if it does not exist."""
        name = _image_name(self.registry, repository, identifier)
        response = self.call(
            "HEAD", f"/v2/{repository}/manifests/{identifier}",
            what=f"checking manifest of {name}", repository=repository,
            scopes=(repository_scope(repository, "pull"),), ok=(200, 404),
            headers={"Accept": mt.MANIFEST_ACCEPT},
        )  # fmt: skip
        if response.status_code == 404:
            return None
        digest = response.headers.get("docker-content-digest")
        if digest is None:
            data, media_type, parsed = self.get_manifest(repository, identifier)
            return Descriptor(media_type, parsed, len(data))
        media_type = _media_type(response.headers.get("content-type"), b"{}")
        size = int(response.headers.get("content-length") or 0)
        return Descriptor(media_type, Digest.parse(digest), size)

    def get_blob(self, repository: str, descriptor: Descriptor) -> bytes:
        """A small blob (a config), read whole and verified against ``descriptor``."""
        data = b"".join(self.open_blob(repository, descriptor.digest))
        return descriptor.verify(data, f"{self.registry}/{repository}")

    def open_blob(self, repository: str, digest: Digest) -> Iterator[bytes]:
        """The blob's bytes as a stream, resumed with ``Range`` if the connection drops.

        Nothing is requested until the first chunk is asked for; the caller verifies.
        """
        what = f"reading blob {digest} from {self.registry}/{repository}"
        received = 0
        deadline = time.monotonic() + self.retry.budget
        while True:
            headers = {"Accept-Encoding": "identity"}
            if received:
                headers["Range"] = f"bytes={received}-"
            response = self.call(
                "GET", f"/v2/{repository}/blobs/{digest}", what=what, repository=repository,
                scopes=(repository_scope(repository, "pull"),), ok=(200, 206, 404),
                headers=headers, stream=True, follow_redirects=True,
            )  # fmt: skip
            try:
                if response.status_code == 404:
                    raise NotFoundError(f"blob {digest} not found in {self.registry}/{repository}")
                if received and response.status_code != 206:
                    raise RegistryError(
                        f"{what}: the connection dropped after {received} bytes and the "
                        "registry cannot resume (no Range support)",
                        status=response.status_code,
                    )
                for chunk in response.iter_bytes(_READ_CHUNK):
                    received += len(chunk)
                    yield chunk
                return
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as err:
                if time.monotonic() > deadline:
                    raise RegistryError(f"{what}: the connection dropped ({err})") from err
                log.info("%s: connection dropped after %d bytes; resuming", what, received)
            finally:
                response.close()

    def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (following ``Link`` pagination)."""
        url: str | None = f"/v2/{repository}/tags/list?n=1000"
        found: list[str] = []
        while url is not None:
            response = self.call(
                "GET", url, what=f"listing tags of {self.registry}/{repository}",
                repository=repository, scopes=(repository_scope(repository, "pull"),),
                ok=(200, 404),
            )  # fmt: skip
            if response.status_code == 404:
                raise NotFoundError(f"repository '{self.registry}/{repository}' not found")
            found += list(response.json().get("tags") or [])
            url = _next_link(response)
        return found

    # -- writes (the upload steps are in _upload.py) -----------------------------------------

    def mount(self, repository: str, digest: Digest, from_repository: str) -> MountResult:
        """Ask for a cross-repository mount; 201 mounted, 202 an upload session, else nothing."""
        what = f"mounting blob {digest} into {self.registry}/{repository} from {from_repository}"
        response = self.retry.run(
            what,
            lambda n: self.connection.exchange(
                "POST", f"/v2/{repository}/blobs/uploads/",
                repository=repository,
                scopes=(repository_scope(repository, "pull", "push"),
                        repository_scope(from_repository, "pull")),
                params={"mount": str(digest), "from": from_repository},
            ),
        )  # fmt: skip
        response.close()
        if response.status_code == 201:
            return MountResult(True)
        if response.status_code == 202 and "location" in response.headers:
            return MountResult(False, resolve_location(response))
        log.info("%s: answered %s; uploading instead", what, response.status_code)
        return MountResult(False)

    def put_manifest(
        self, repository: str, identifier: str, data: bytes, media_type: str
    ) -> Digest:
        """PUT manifest bytes under a tag or digest; returns their digest."""
        name = _image_name(self.registry, repository, identifier)
        self.call(
            "PUT", f"/v2/{repository}/manifests/{identifier}",
            what=f"writing manifest {name}", repository=repository,
            scopes=(repository_scope(repository, "pull", "push"),), ok=(200, 201, 202, 204),
            headers={"Content-Type": media_type}, content=data,
        ).close()  # fmt: skip
        return Digest.of(data)

    def upload(
        self,
        repository: str,
        stream: BlobStream,
        descriptor: Descriptor | None = None,
        *,
        location: str | None = None,
    ) -> UploadResult:
        """Upload a blob: monolithic when small and known, else chunked (see ``_upload.py``)."""
        return upload_blob(self, repository, stream, descriptor, location=location)


def _image_name(registry: str, repository: str, identifier: str) -> str:
    sep = "@" if ":" in identifier else ":"
    return f"{registry}/{repository}{sep}{identifier}"


def _media_type(header: str | None, data: bytes) -> str:
    media_type = (header or "").split(";", 1)[0].strip()
    if media_type in mt.MANIFEST_TYPES or media_type in mt.INDEX_TYPES:
        return media_type
    # Some registries answer application/json; the body's mediaType then decides.
    try:
        declared = json.loads(data).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    return declared if isinstance(declared, str) else (media_type or mt.OCI_MANIFEST)


def _verify_manifest(data: bytes, identifier: str, name: str) -> Digest:
    if ":" not in identifier:
        return Digest.of(data)
    expected = Digest.parse(identifier)
    expected.verify(data, name)
    return expected


def _read_capped(response: httpx.Response, limit: int, what: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise RegistryError(f"{what} is larger than {limit >> 20} MiB; refusing to read it")
            parts.append(chunk)
    finally:
        response.close()
    return b"".join(parts)


def _next_link(response: httpx.Response) -> str | None:
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    return str(response.request.url.join(link))
