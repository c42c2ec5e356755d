"""The Registry v2 / OCI distribution client: pull, push, auth, credentials, retries.

``RegistrySource`` and ``RegistrySink`` are the image transports; ``RegistryClient`` speaks
the protocol to one host; ``login``/``logout`` manage stored credentials.
"""

from .._credential_sources import CredentialSource
from ._authfiles import server_url
from ._client import MountResult, RegistryClient
from ._credentials import Credential, find_credential
from ._login import login, logout
from ._options import RegistryOptions, default_retry_budget
from ._sink import RegistrySink
from ._source import RegistrySource
from ._upload import UploadResult

__all__ = [
    "Credential",
    "CredentialSource",
    "MountResult",
    "RegistryClient",
    "RegistryOptions",
    "RegistrySink",
    "RegistrySource",
    "UploadResult",
    "default_retry_budget",
    "find_credential",
    "login",
    "logout",
    "server_url",
]
