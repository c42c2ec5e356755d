"""Reading images from a registry: manifests (verified by digest) and streamed blobs."""

from __future__ import annotations

from collections.abc import Iterator

from ...oci import Descriptor, Platform, Reference
from ._client import RegistryClient
from ._options import RegistryOptions

__all__ = ["RegistrySource"]


class RegistrySource:
    """An :class:`~ocibuild.transports.ImageSource` for ``REGISTRY/REPO[:TAG][@DIGEST]``.

    An index is read as it is: which of its platforms to read is the caller's choice
    (:meth:`~ocibuild.Index.select`, or :func:`ocibuild.load` with ``platform``).
    """

    def __init__(
        self,
        reference: Reference,
        options: RegistryOptions | None = None,
        platform: Platform | None = None,
    ) -> None:
        self.reference = reference
        self.platform = platform
        self.client = RegistryClient(reference.registry, options)

    def __repr__(self) -> str:
        return f"<RegistrySource {self.reference}>"

    @property
    def name(self) -> str:
        return str(self.reference)

    def get_manifest(self) -> tuple[bytes, str]:
        """The manifest or index the reference names (verified when it names a digest)."""
        data, media_type, _ = self.client.get_manifest(
            self.reference.repository, self.reference.identifier
        )
        return data, media_type

    def get_child_manifest(self, descriptor: Descriptor) -> bytes:
        """A manifest an index points to, fetched by digest and verified."""
        data, _, _ = self.client.get_manifest(self.reference.repository, str(descriptor.digest))
        return descriptor.verify(data, self.name)

    def get_blob(self, descriptor: Descriptor) -> bytes:
        """A small blob (a config), read whole and verified."""
        return self.client.get_blob(self.reference.repository, descriptor)

    def open_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        """The blob's bytes as they arrive (nothing is requested before the first chunk)."""
        return self.client.open_blob(self.reference.repository, descriptor.digest)

    def close(self) -> None:
        """Release pooled connections."""
        self.client.close()
