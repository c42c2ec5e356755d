"""A registry credential, and where the registry client finds the sources plugins add.

The registry client asks ``_hooks.plugin_sources()`` after every file the user configured;
the package root installs, with ``set_plugin_sources``, a function that loads the plugins
when it is first called. This floor never imports the plugin manager itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Credential", "CredentialSource"]


@dataclass(frozen=True)
class Credential:
    """A user name and secret (or a token) and the source they came from; secrets never print."""

    source: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)

    @property
    def is_anonymous(self) -> bool:
        """Whether there is nothing to authenticate with."""
        return not (self.username or self.identity_token or self.registry_token)


# (registry host, repository or None) -> a credential, or None when it is not the source's.
CredentialSource = Callable[[str, "str | None"], "Credential | None"]
