"""Where the registry client finds the credential sources plugins add.

The registry client asks :func:`plugin_sources` after every file the user configured; the
package root installs, with :func:`set_plugin_sources`, a function that loads the plugins
when it is first called. This floor never imports the plugin manager itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import Credential

__all__ = ["CredentialSource", "plugin_sources", "set_plugin_sources"]

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
