"""Writing images to a registry: blobs first (HEAD, mount, upload), the tagged manifest last.

The sink is driven by the image writer (``ocibuild.image._write``), concurrently for blobs. The
manifest PUT under the tag is the commit point: it only happens after every blob is in
place, so a push that fails earlier never moves the tag.
"""

from __future__ import annotations

import logging
import threading

from ...oci import Descriptor, Digest, Platform, Reference
from ...oci._blobs import BytesStream
from ...oci._layer import BlobStream, Layer
from .._base import BlobOutcome
from ._client import RegistryClient
from ._inflight import UPLOADS, Key
from ._options import RegistryOptions

__all__ = ["RegistrySink"]

log = logging.getLogger("ocibuild.registry")


class RegistrySink:
    """An :class:`~ocibuild.transports.ImageSink` for ``REGISTRY/REPO[:TAG]``."""

    def __init__(self, reference: Reference, options: RegistryOptions | None = None) -> None:
        self.reference = reference
        self.options = options or RegistryOptions()
        self.client = RegistryClient(reference.registry, self.options)
        self._lock = threading.Lock()
        self._present: set[Digest] = set()
        self._sessions: dict[Digest, str] = {}  # upload sessions opened by 202 mount answers
        self._bytes_sent: dict[Digest, int] = {}

    def __repr__(self) -> str:
        return f"<RegistrySink {self.reference}>"

    @property
    def name(self) -> str:
        return str(self.reference)

    @property
    def concurrency(self) -> int:
        return self.options.concurrency

    @property
    def stores_uncompressed(self) -> bool:
        return False

    def bytes_sent(self, digest: Digest) -> int:
        """Bytes this sink sent for ``digest`` (0 if it was skipped or mounted)."""
        with self._lock:
            return self._bytes_sent.get(digest, 0)

    def has_blob(self, descriptor: Descriptor) -> bool:
        """Whether the repository has the blob (an upload of it in flight here is waited for)."""
        with self._lock:
            if descriptor.digest in self._present:
                return True
        if UPLOADS.wait(self._key(descriptor.digest)):
            self._mark_present(descriptor.digest)
            return True
        # A push token serves the HEADs too: one token for the whole push.
        if self.client.exists(self.reference.repository, descriptor.digest, for_push=True):
            self._mark_present(descriptor.digest)
            return True
        return False

    def try_mount(self, layer: Layer, descriptor: Descriptor) -> bool:
        """Mount the blob from the layer's ``mount_from`` repository when it is on this registry."""
        origin = getattr(layer, "mount_from", None)
        if not origin:
            return False
        registry, repository = origin
        if registry != self.reference.registry or repository == self.reference.repository:
            return False
        result = self.client.mount(self.reference.repository, descriptor.digest, repository)
        if result.mounted:
            self._mark_present(descriptor.digest)
            return True
        if result.location is not None:
            with self._lock:
                self._sessions[descriptor.digest] = result.location
        return False

    def put_blob(self, stream: BlobStream, descriptor: Descriptor | None) -> BlobOutcome:
        """Upload ``stream``; with a known descriptor, only one upload per digest runs at a time."""
        if descriptor is None:
            return self._upload(stream, None)
        key = self._key(descriptor.digest)
        if not UPLOADS.claim(key):
            # Someone else just uploaded it. Read the stream anyway: the writer takes the
            # layer's diff_id from its result.
            for _ in stream:
                pass
            self._mark_present(descriptor.digest)
            return "exists"
        ok = False
        try:
            outcome = self._upload(stream, descriptor)
            ok = True
            return outcome
        finally:
            UPLOADS.release(key, ok=ok)

    def _upload(self, stream: BlobStream, descriptor: Descriptor | None) -> BlobOutcome:
        location = None
        if descriptor is not None:
            with self._lock:
                location = self._sessions.pop(descriptor.digest, None)
        repository = self.reference.repository
        result = self.client.upload(repository, stream, descriptor, location=location)
        with self._lock:
            self._present.add(result.digest)
            self._bytes_sent[result.digest] = result.bytes_sent
        return "uploaded"

    def put_manifest(
        self, data: bytes, media_type: str, *, tag: str | None, platform: Platform | None = None
    ) -> Descriptor:
        """PUT the manifest under ``tag`` (the commit point), or by digest when ``tag`` is None."""
        digest = BytesStream(data, media_type).descriptor.digest
        identifier = tag if tag is not None else str(digest)
        self.client.put_manifest(self.reference.repository, identifier, data, media_type)
        return Descriptor(media_type, digest, len(data), platform=platform)

    def commit(self) -> None:
        """Nothing left to do (the tag PUT was the commit); release connections."""
        self.client.close()

    def abort(self) -> None:
        """Release connections; the tag was never PUT, and stray upload sessions expire."""
        with self._lock:
            self._sessions.clear()
        self.client.close()

    def close(self) -> None:
        """Release connections."""
        self.client.close()

    def _key(self, digest: Digest) -> Key:
        return (self.client.host, self.reference.repository, str(digest))

    def _mark_present(self, digest: Digest) -> None:
        with self._lock:
            self._present.add(digest)
