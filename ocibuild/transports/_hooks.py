"""The two places the package root plugs the plugin manager into this floor.

Kept apart from the modules that use them, so `import ocibuild` installs both without importing
the transport table, the OCI values or dataclasses (``ocibuild --help`` pays for neither).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._credential_sources import CredentialSource

__all__ = ["plugin_sources", "prefix_resolver", "set_plugin_sources", "set_prefix_resolver"]

_resolver: Callable[[str], bool] | None = None
_sources: Callable[[], Sequence[CredentialSource]] | None = None


def set_prefix_resolver(resolver: Callable[[str], bool] | None) -> None:
    """Ask ``resolver(kind)`` about a ``KIND:...`` spelling with no transport registered yet;
    it returns whether it registered one (the package root loads the plugins that way)."""
    global _resolver
    _resolver = resolver


def prefix_resolver() -> Callable[[str], bool] | None:
    """The resolver :func:`set_prefix_resolver` installed, if any."""
    return _resolver


def set_plugin_sources(sources: Callable[[], Sequence[CredentialSource]] | None) -> None:
    """Make :func:`plugin_sources` answer ``sources()`` (``None``: no plugin sources)."""
    global _sources
    _sources = sources


def plugin_sources() -> Sequence[CredentialSource]:
    """The credential sources plugins provide, in the order the plugins were loaded."""
    return _sources() if _sources is not None else ()
