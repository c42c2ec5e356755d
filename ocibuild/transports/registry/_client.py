"""The distribution protocol for one registry host: manifests, blobs, tags, mounts, uploads.

Every request is one :meth:`Connection.request`, retried by the connection's transport; the
upload steps live in ``_upload.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from ..._errors import ManifestError, NotFoundError, RegistryError
from ...oci import Descriptor, Digest
from ...oci import media_types as mt
from ...oci._fields import MAX_DOCUMENT, load_json
from ...oci._layer import BlobStream
from ._challenge import repository_scope
from ._errors import error_codes
from ._options import RegistryOptions
from ._retry import clean, describe
from ._shared import acquire, release
from ._upload import UploadResult, upload_blob
from ._urls import resolve_location

__all__ = ["MountResult", "RegistryClient"]

log = logging.getLogger("ocibuild.registry")

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
        self.connection = acquire(registry, self.options)
        self._held = True
        self.host = self.connection.host
        self.auth = self.connection.auth

    def __repr__(self) -> str:
        return f"<RegistryClient {self.registry}>"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections (the client reopens them if used again); a connection
        another client shares stays open until that one closes too."""
        release(self.connection, held=self._held)
        self._held = False

    def base_url(self) -> str:
        """``scheme://host`` of the registry, decided once by pinging ``/v2/``."""
        return self.connection.base_url()

    # -- reads ------------------------------------------------------------------------------

    def ping(self) -> None:
        """Make sure the registry answers (and learn how it wants to be authenticated)."""
        self.connection.base_url()

    def check_login(self) -> None:
        """Authenticate against ``/v2/``; raises :class:`AuthenticationError` if refused."""
        self.connection.request(
            "GET", "/v2/", what=f"logging in to {self.registry}", repository=None
        )

    def exists(self, repository: str, digest: Digest, *, for_push: bool = False) -> bool:
        """Whether the blob is in ``repository`` (HEAD); ``for_push`` asks for a push token."""
        actions = ("pull", "push") if for_push else ("pull",)
        response = self.connection.request(
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
        response = self.connection.request(
            "GET", f"/v2/{repository}/manifests/{identifier}",
            what=f"reading manifest of {name}", repository=repository,
            scopes=(repository_scope(repository, "pull"),), ok=(200, 404),
            headers={"Accept": mt.MANIFEST_ACCEPT},
        )  # fmt: skip
        if response.status_code == 404:
            raise NotFoundError(f"image '{name}' not found")
        data = response.content
        media_type = _media_type(response.headers.get("content-type"), data)
        digest = _verify_manifest(data, identifier, name)
        return data, media_type, digest

    def head_manifest(self, repository: str, identifier: str) -> Descriptor | None:
        """The descriptor of a manifest (HEAD), or None if it does not exist."""
        name = _image_name(self.registry, repository, identifier)
        response = self.connection.request(
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
        if descriptor.size > MAX_DOCUMENT:
            raise ManifestError(
                f"{self.registry}/{repository}: blob {descriptor.digest} is {descriptor.size} "
                f"bytes by its descriptor; configs are read whole and may be at most "
                f"{MAX_DOCUMENT >> 20} MiB"
            )
        parts: list[bytes] = []
        size = 0
        for chunk in self.open_blob(repository, descriptor.digest):
            size += len(chunk)
            parts.append(chunk)
            if size > descriptor.size:  # a registry that sends more is not sending this blob
                break
        return descriptor.verify(b"".join(parts), f"{self.registry}/{repository}")

    def open_blob(self, repository: str, digest: Digest) -> Iterator[bytes]:
        """The blob's bytes as a stream, resumed with ``Range`` if the connection drops.

        Nothing is requested until the first chunk is asked for; the caller verifies. Each
        wait for the next chunk has the whole retry budget; resuming runs under the same
        policy as every other retry.
        """
        what = f"reading blob {digest} from {self.registry}/{repository}"
        operation = self.connection.retry.operation(what, stream=True)
        received = attempts = 0
        while True:
            headers = {"Accept-Encoding": "identity"}
            if received:
                headers["Range"] = f"bytes={received}-"
            response = self.connection.request(
                "GET", f"/v2/{repository}/blobs/{digest}", what=what, repository=repository,
                scopes=(repository_scope(repository, "pull"),), ok=(200, 206, 404),
                headers=headers, follow_redirects=True, operation=operation,
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
                    operation.renew()
                return
            except httpx.TransportError as err:
                attempts += 1
                self.connection.retry.pause(
                    operation, attempts, describe(err), url=clean(response.request.url)
                )
                log.info("%s: connection dropped after %d bytes; resuming", what, received)
            finally:
                response.close()

    def tags(self, repository: str, *, page_size: int = 1000) -> list[str]:
        """Every tag of ``repository``, page by page (``?n=&last=``).

        The next page is the ``Link: <...>; rel="next"`` the registry sends; one that sends no
        Link but filled the page is asked again from the last tag it gave, as the spec allows.
        """
        url: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        found: list[str] = []
        while url is not None:
            response = self.connection.request(
                "GET", url, what=f"listing tags of {self.registry}/{repository}",
                repository=repository, scopes=(repository_scope(repository, "pull"),),
                ok=(200, 404),
            )  # fmt: skip
            if response.status_code == 404:
                raise NotFoundError(f"repository '{self.registry}/{repository}' not found")
            page = _tag_page(response, f"{self.registry}/{repository}")
            # A registry that ignores ``last`` would send the same page forever: stop there.
            moved = bool(page) and (not found or page[-1] != found[-1])
            found += page if moved else []
            url = _next_link(response)
            if url is None and moved and len(page) >= page_size:
                url = f"/v2/{repository}/tags/list?" + urlencode({"n": page_size, "last": page[-1]})
        return found

    def delete_manifest(self, repository: str, digest: Digest) -> None:
        """DELETE the manifest ``digest`` (every tag on it goes with it).

        Docker Distribution refuses with 405 UNSUPPORTED unless its storage allows deletes;
        that answer becomes one line naming the setting.
        """
        name = f"{self.registry}/{repository}@{digest}"
        what = f"deleting {name}"
        response = self.connection.request(
            "DELETE", f"/v2/{repository}/manifests/{digest}", what=what, repository=repository,
            scopes=(repository_scope(repository, "pull", "push", "delete"),),
            ok=(200, 202, 204, 404, 405),
        )  # fmt: skip
        response.read()
        response.close()
        if response.status_code == 404:
            raise NotFoundError(f"image '{name}' not found")
        if response.status_code == 405:
            codes, _ = error_codes(response)
            raise RegistryError(
                f"{what}: {self.registry} does not allow deleting manifests (405 "
                f"{', '.join(codes) or 'Method Not Allowed'}); Docker Distribution needs "
                "REGISTRY_STORAGE_DELETE_ENABLED=true (storage.delete.enabled in its config)",
                status=405,
                codes=codes,
            )

    # -- writes (the upload steps are in _upload.py) -----------------------------------------

    def mount(self, repository: str, digest: Digest, from_repository: str) -> MountResult:
        """Ask for a cross-repository mount; 201 mounted, 202 an upload session, else nothing."""
        what = f"mounting blob {digest} into {self.registry}/{repository} from {from_repository}"
        response = self.connection.exchange(
            "POST", f"/v2/{repository}/blobs/uploads/",
            operation=self.connection.retry.operation(what), repository=repository,
            scopes=(repository_scope(repository, "pull", "push"),
                    repository_scope(from_repository, "pull")),
            params={"mount": str(digest), "from": from_repository},
        )  # fmt: skip
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
        self.connection.request(
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
        """Upload a blob: in one request when it is small and its digest known, else in chunks."""
        return upload_blob(self.connection, repository, stream, descriptor, location=location)


def _image_name(registry: str, repository: str, identifier: str) -> str:
    sep = "@" if ":" in identifier else ":"
    return f"{registry}/{repository}{sep}{identifier}"


def _media_type(header: str | None, data: bytes) -> str:
    media_type = (header or "").split(";", 1)[0].strip()
    if media_type in mt.MANIFEST_TYPES or media_type in mt.INDEX_TYPES:
        return media_type
    # Some registries answer application/json; the body's mediaType then decides.
    try:
        declared = load_json(data, "the manifest").get("mediaType")
    except (ManifestError, AttributeError):
        declared = None
    return declared if isinstance(declared, str) else (media_type or mt.OCI_MANIFEST)


def _verify_manifest(data: bytes, identifier: str, name: str) -> Digest:
    if ":" not in identifier:
        return Digest.of(data)
    expected = Digest.parse(identifier)
    expected.verify(data, name)
    return expected


def _tag_page(response: httpx.Response, name: str) -> list[str]:
    """The ``tags`` of one tags/list answer; a body that is not that is a registry error."""
    body = load_json(response.content, f"the tag list of {name}")
    tags = body.get("tags") if isinstance(body, dict) else None
    if tags is None:
        return []  # Docker Distribution answers "tags": null for a repository with none
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RegistryError(f"listing tags of {name}: the answer's 'tags' is not a list of names")
    return tags


def _next_link(response: httpx.Response) -> str | None:
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    return str(response.request.url.join(link))
