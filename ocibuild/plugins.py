"""The plugin manager: built-ins and entry-point plugins, and the name registries they fill.

See :mod:`ocibuild.hookspecs` for what a plugin implements.
"""

from ._public import publish
from .pipeline._plugins import (
    DISABLE_AUTOLOAD_ENV,
    ENTRY_POINT_GROUP,
    KINDS,
    PluginInfo,
    Plugins,
    get_plugins,
    hookimpl,
    list_plugins,
    lookup,
    names,
    provider_of,
    reset_plugins,
)

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "PluginInfo",
    "Plugins",
    "get_plugins",
    "hookimpl",
    "list_plugins",
    "lookup",
    "names",
    "provider_of",
    "reset_plugins",
]

publish(__name__, globals(), __all__)
