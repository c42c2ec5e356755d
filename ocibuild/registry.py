"""The Registry v2 / OCI distribution client: pull, push, auth, credentials, retries.

``RegistrySource`` and ``RegistrySink`` are the image transports; ``RegistryClient`` speaks
the protocol to one host; ``login``/``logout`` manage stored credentials.
"""

from ._public import publish
from .transports.registry import (
    Credential,
    CredentialSource,
    MountResult,
    RegistryClient,
    RegistryOptions,
    RegistrySink,
    RegistrySource,
    UploadResult,
    find_credential,
    login,
    logout,
)

__all__ = [
    "Credential",
    "CredentialSource",
    "MountResult",
    "RegistryClient",
    "RegistryOptions",
    "RegistrySink",
    "RegistrySource",
    "UploadResult",
    "find_credential",
    "login",
    "logout",
]

publish(__name__, globals(), __all__)
