"""A registry credential, and where the registry client finds the sources plugins add.

The registry client asks :func:`plugin_sources` after every file the user configured; the
package root installs, with :func:`set_plugin_sources`, a function that loads the plugins
when it is first called. This floor never imports the plugin manager itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Credential", "CredentialSource", "plugin_sources", "set_plugin_sources"]


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

_sources: Callable[[], Sequence[CredentialSource]] | None = None


def set_plugin_sources(sources: Callable[[], Sequence[CredentialSource]] | None) -> None:
    """Make :func:`plugin_sources` answer ``sources()`` (``None``: no plugin sources)."""
    global _sources
    _sources = sources


def plugin_sources() -> Sequence[CredentialSource]:
    """The credential sources plugins provide, in the order the plugins were loaded."""
    return _sources() if _sources is not None else ()
