"""The ``docker-credential-NAME`` helper protocol: ``get``, ``store``, ``erase`` via stdin."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..._errors import CredentialError

if TYPE_CHECKING:
    import subprocess

__all__ = ["HelperMissingError", "HelperSecret", "helper_erase", "helper_get", "helper_store"]

_TIMEOUT = 60.0
# What helpers print when they hold nothing for a server (docker-credential-helpers' wording).
_NOT_FOUND = "credentials not found"
# A Username of "<token>" means the Secret is an identity (refresh) token.
IDENTITY_TOKEN_USER = "<token>"


class HelperMissingError(Exception):
    """The configured helper program is not on PATH."""


@dataclass(frozen=True)
class HelperSecret:
    """What ``get`` returned; the secret never shows in repr."""

    username: str
    secret: str = field(repr=False)

    @property
    def is_identity_token(self) -> bool:
        """Whether the secret is an identity token rather than a password."""
        return self.username == IDENTITY_TOKEN_USER


def program(name: str) -> str:
    """The helper's program name."""
    return f"docker-credential-{name}"


def helper_get(name: str, server_url: str) -> HelperSecret | None:
    """Ask helper ``name`` for ``server_url``'s credentials; None when it has none."""
    proc = _run(name, "get", server_url)
    if proc.returncode != 0:
        if _NOT_FOUND in proc.stdout.lower() or _NOT_FOUND in proc.stderr.lower():
            return None
        raise _failed(name, "get", proc)
    try:
        data = json.loads(proc.stdout)
        username, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    except (ValueError, AttributeError):
        raise CredentialError(
            f"credential helper {program(name)} printed something that is not its JSON answer"
        ) from None
    if not username and not secret:
        return None
    return HelperSecret(username, secret)


def helper_store(name: str, server_url: str, username: str, secret: str) -> None:
    """Store credentials for ``server_url`` in helper ``name``."""
    payload = json.dumps({"ServerURL": server_url, "Username": username, "Secret": secret})
    proc = _run(name, "store", payload)
    if proc.returncode != 0:
        raise _failed(name, "store", proc)


def helper_erase(name: str, server_url: str) -> bool:
    """Erase ``server_url``'s credentials from helper ``name``; False if it held none."""
    proc = _run(name, "erase", server_url)
    if proc.returncode == 0:
        return True
    if _NOT_FOUND in proc.stdout.lower() or _NOT_FOUND in proc.stderr.lower():
        return False
    raise _failed(name, "erase", proc)


def _run(name: str, verb: str, stdin: str) -> subprocess.CompletedProcess[str]:
    # Imported here: a registry that needs no helper must not pay for subprocess at start-up.
    import shutil
    import subprocess

    path = shutil.which(program(name))
    if path is None:
        raise HelperMissingError(program(name))
    try:
        return subprocess.run(
            [path, verb], input=stdin, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise CredentialError(
            f"credential helper {program(name)} did not answer '{verb}' within {_TIMEOUT:.0f} s"
        ) from None
    except OSError as err:
        raise CredentialError(f"cannot run credential helper {path}: {err.strerror}") from None


def _failed(name: str, verb: str, proc: subprocess.CompletedProcess[str]) -> CredentialError:
    # Only stderr's first line is shown: stdout of a helper may carry secrets.
    first = (proc.stderr.strip().splitlines() or [""])[0][:200]
    why = f": {first}" if first else ""
    return CredentialError(
        f"credential helper {program(name)} failed on '{verb}' (exit {proc.returncode}){why}"
    )
