"""The Registry v2 / OCI distribution client: pull, push, auth, credentials, retries.

``RegistrySource`` and ``RegistrySink`` are the image transports; ``RegistryClient`` speaks
the protocol to one host; ``login``/``logout`` manage stored credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._public import lazy_names

if TYPE_CHECKING:
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

# Each name loads with its module (PEP 562): the options a command parses must not cost the
# HTTP stack when it only reads and writes local layouts, nor login's code on a push.
_HOMES = {
    "CredentialSource": "ocibuild.transports._credential_sources",
    "server_url": f"{__name__}._authfiles",
    **dict.fromkeys(["MountResult", "RegistryClient"], f"{__name__}._client"),
    **dict.fromkeys(["Credential", "find_credential"], f"{__name__}._credentials"),
    **dict.fromkeys(["login", "logout"], f"{__name__}._login"),
    **dict.fromkeys(["RegistryOptions", "default_retry_budget"], f"{__name__}._options"),
    "RegistrySink": f"{__name__}._sink",
    "RegistrySource": f"{__name__}._source",
    "UploadResult": f"{__name__}._upload",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)
