"""The plugin manager: built-ins and entry-point plugins, and the name registries they fill.

Plugins are found through the entry-point group ``ocibuild`` (``importlib.metadata``) when the
manager is first needed; ``OCIBUILD_DISABLE_PLUGIN_AUTOLOAD=1`` turns that off. ocibuild's own
preprocessors, builders and deployers (:mod:`ocibuild._builtins`) register directly, so the
switch never removes them. Every name is provided by exactly one plugin: two providing the
same name is a :class:`PluginError` naming both distributions, and so is a plugin that fails
to import or breaks a hook's contract.

Two kinds are not factories. :meth:`Plugins.transports` puts what the ``ocibuild_transports``
hooks return into the process-wide transport table, on first use (the package root asks for
it when a spelling names a prefix nobody registered yet); :meth:`Plugins.credential_sources`
gives the registry client the ``ocibuild_credential_sources`` functions.

A name that one of ocibuild's own plugin distributions provides (``gcpjob`` comes with
``ocibuild-gcp``) says which package to install when that package is not installed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from . import _hookspecs as hookspecs
from ._errors import PluginError
from ._hookspecs import PROJECT, hookimpl
from ._protocols import PodSpecMutator

if TYPE_CHECKING:
    from ..transports import CredentialSource

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "KNOWN_PROVIDERS",
    "PluginInfo",
    "Plugins",
    "get_plugins",
    "hookimpl",
    "list_plugins",
    "lookup",
    "names",
    "provider_of",
    "reset_plugins",
    "resolve_pod_spec_mutators",
]

ENTRY_POINT_GROUP = "ocibuild"
DISABLE_AUTOLOAD_ENV = "OCIBUILD_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_PLUGIN = "ocibuild.builtins"
TRANSPORT_HOOK = "ocibuild_transports"
CREDENTIAL_HOOK = "ocibuild_credential_sources"
# kind -> the hook that provides names of that kind
KINDS: Mapping[str, str] = {
    "preprocessor": "ocibuild_preprocessors",
    "builder": "ocibuild_builders",
    "deployer": "ocibuild_deployers",
    "context_store": "ocibuild_context_stores",
    "pod_spec_mutator": "ocibuild_pod_spec_mutators",
}
# (kind, name) -> the distribution that provides it, for names ocibuild's own plugins provide
KNOWN_PROVIDERS: Mapping[tuple[str, str], str] = {
    ("deployer", "gcpjob"): "ocibuild-gcp",
    ("deployer", "gcpserving"): "ocibuild-gcp",
    ("context_store", "gcs"): "ocibuild-gcp",
    ("pod_spec_mutator", "gcp_service_account"): "ocibuild-gcp",
}


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, where it comes from, and the names it provides per kind."""

    name: str
    distribution: str
    version: str
    provides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what ``ocibuild plugins --json`` prints)."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "provides": {kind: list(v) for kind, v in self.provides.items()},
        }


@dataclass(frozen=True)
class _Provider:
    value: Any  # a factory; a Transport for the transport hook
    plugin: str
    distribution: str
    version: str

    @property
    def factory(self) -> Callable[..., Any]:
        factory: Callable[..., Any] = self.value
        return factory

    def label(self) -> str:
        return f"{self.distribution} {self.version} (plugin {self.plugin!r})"


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Plugins:
    """A pluggy manager with ocibuild's specs, its plugins' origins, and name lookups."""

    def __init__(self, *, autoload: bool = True) -> None:
        from .._version import __version__
        from . import _builtins

        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self._origin: dict[str, tuple[str, str]] = {}
        self._registries: dict[str, dict[str, _Provider]] | None = None
        self._transports: frozenset[str] | None = None
        self.register(_builtins, BUILTIN_PLUGIN, distribution=("ocibuild", __version__))
        if autoload:
            self._load_entry_points()

    @property
    def hook(self) -> Any:
        """The hook caller (``plugins.hook.ocibuild_after_build(...)``)."""
        return self.manager.hook

    def register(
        self, plugin: object, name: str, *, distribution: tuple[str, str] | None = None
    ) -> None:
        """Register a plugin object (a module, usually) under ``name``."""
        try:
            self.manager.register(plugin, name=name)
            self.manager.check_pending()
        except (ValueError, pluggy.PluginValidationError) as err:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            raise PluginError(f"plugin {name!r} cannot be registered: {_one_line(err)}") from err
        self._origin[name] = distribution or ("(not installed)", "")
        self._registries = None
        self._transports = None

    def _load_entry_points(self) -> None:
        seen: set[str] = set()
        for dist in metadata.distributions():
            dist_name = dist.metadata["Name"] or "?"
            key = dist_name.lower().replace("_", "-")
            if key in seen:  # the same distribution on sys.path twice
                continue
            seen.add(key)
            for ep in dist.entry_points:
                if ep.group == ENTRY_POINT_GROUP:
                    self._load_one(ep, dist_name, dist.version)

    def _load_one(self, ep: metadata.EntryPoint, dist: str, version: str) -> None:
        where = f"plugin {ep.name!r} from {dist} {version} (entry point {ep.value})"
        taken = self._origin.get(ep.name)
        if taken is not None:
            raise PluginError(
                f"two plugins are named {ep.name!r}: {taken[0]} {taken[1]} and {dist} {version}; "
                "uninstall one of them"
            )
        try:
            plugin = ep.load()
        except Exception as err:  # any import-time failure is the plugin's, not ours
            raise PluginError(f"{where} failed to import: {_one_line(err)}") from err
        self.register(plugin, ep.name, distribution=(dist, version))

    # -- names -----------------------------------------------------------------------

    def _provided(self, kind: str) -> Iterator[tuple[str, _Provider]]:
        """Every (name, provider) of ``kind``, one hook implementation at a time."""
        return self._hook_results(KINDS[kind], "name -> factory", callable)

    def _hook_results(
        self, hook: str, shape: str, valid: Callable[[Any], bool]
    ) -> Iterator[tuple[str, _Provider]]:
        """What each implementation of the name hook ``hook`` returns, checked item by item."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            dist, version = self._origin.get(impl.plugin_name, ("(not installed)", ""))
            try:
                result = impl.function()
            except Exception as err:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} from {dist} failed in {hook}(): {_one_line(err)}"
                ) from err
            if result is None:
                continue
            if not isinstance(result, Mapping) or not all(
                isinstance(k, str) and valid(v) for k, v in result.items()
            ):
                raise PluginError(
                    f"plugin {impl.plugin_name!r} from {dist}: {hook}() must return a "
                    f"dict of {shape}, got {type(result).__name__}"
                )
            for name, value in result.items():
                yield name, _Provider(value, impl.plugin_name, dist, version)

    def _provided_transports(self) -> Iterator[tuple[str, _Provider]]:
        """Every (prefix, provider) of the transport hook, each key its transport's kind."""
        from ..transports import Transport

        def valid(value: Any) -> bool:
            return isinstance(value, Transport)

        for prefix, provider in self._hook_results(TRANSPORT_HOOK, "prefix -> Transport", valid):
            if provider.value.kind != prefix:
                raise PluginError(
                    f"plugin {provider.plugin!r} from {provider.distribution}: "
                    f"{TRANSPORT_HOOK}() gives the transport {provider.value.kind!r} as "
                    f"{prefix!r}; the key must be the transport's kind"
                )
            yield prefix, provider

    def transports(self) -> frozenset[str]:
        """The transport prefixes plugins provide, put into the transport table on first use.

        A prefix two plugins provide, or one a plugin takes from another transport, is a
        :class:`PluginError` naming them.
        """
        if self._transports is None:
            from .._errors import InvalidReferenceError
            from ..transports import register_transport

            owners: dict[str, _Provider] = {}
            for prefix, provider in self._provided_transports():
                other = owners.get(prefix)
                if other is not None:
                    raise PluginError(
                        f"the transport {prefix!r} is provided by both {other.label()} and "
                        f"{provider.label()}; uninstall one of them"
                    )
                try:
                    register_transport(provider.value)
                except InvalidReferenceError as err:
                    raise PluginError(
                        f"the transport {prefix!r} of {provider.label()} cannot be "
                        f"registered: {err}"
                    ) from err
                owners[prefix] = provider
            self._transports = frozenset(owners)
        return self._transports

    def credential_sources(self) -> list[CredentialSource]:
        """The registry credential sources plugins provide, in the order they were loaded; a
        name two plugins provide is a :class:`PluginError` naming both."""
        owners: dict[str, _Provider] = {}
        for name, provider in self._hook_results(CREDENTIAL_HOOK, "name -> callable", callable):
            other = owners.get(name)
            if other is not None:
                raise PluginError(
                    f"the credential source {name!r} is provided by both {other.label()} and "
                    f"{provider.label()}; uninstall one of them"
                )
            owners[name] = provider
        return [provider.value for provider in owners.values()]

    def _registry(self, kind: str) -> dict[str, _Provider]:
        if self._registries is None:
            registries: dict[str, dict[str, _Provider]] = {}
            for each in KINDS:
                registry: dict[str, _Provider] = {}
                for name, provider in self._provided(each):
                    other = registry.get(name)
                    if other is not None:
                        raise PluginError(
                            f"the {each.replace('_', ' ')} name {name!r} is provided by both "
                            f"{other.label()} and {provider.label()}; uninstall one of them"
                        )
                    registry[name] = provider
                registries[each] = registry
            self._registries = registries
        return self._registries[kind]

    def lookup(self, kind: str, name: str) -> Callable[..., Any]:
        """The factory registered as ``name`` for ``kind`` (``"deployer"``, ...)."""
        return self._provider(kind, name).factory

    def provider_of(self, kind: str, name: str) -> str:
        """Which distribution and plugin provide ``name`` for ``kind`` (for error messages)."""
        return self._provider(kind, name).label()

    def _provider(self, kind: str, name: str) -> _Provider:
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}: one of {', '.join(KINDS)}")
        registry = self._registry(kind)
        provider = registry.get(name)
        if provider is None:
            known = ", ".join(sorted(registry)) or "none"
            package = KNOWN_PROVIDERS.get((kind, name))
            if package is not None:
                raise PluginError(
                    f"the {kind.replace('_', ' ')} {name!r} comes with the plugin {package}, "
                    f"which is not installed: pip install {package} (installed: {known})"
                )
            raise PluginError(
                f"no {kind.replace('_', ' ')} named {name!r} (available: {known}); "
                "install the plugin that provides it (ocibuild plugins lists what is installed)"
            )
        return provider

    def names(self, kind: str) -> list[str]:
        """The registered names of ``kind``, sorted."""
        return sorted(self._registry(kind))

    def list_plugins(self) -> list[PluginInfo]:
        """Every registered plugin with the names it provides (no clash check: for diagnosis)."""
        provides: dict[str, dict[str, list[str]]] = {}
        for kind in KINDS:
            for name, provider in self._provided(kind):
                provides.setdefault(provider.plugin, {}).setdefault(kind, []).append(name)
        for prefix, provider in self._provided_transports():
            provides.setdefault(provider.plugin, {}).setdefault("transport", []).append(prefix)
        for name, provider in self._hook_results(CREDENTIAL_HOOK, "name -> callable", callable):
            kinds = provides.setdefault(provider.plugin, {})
            kinds.setdefault("credential_source", []).append(name)
        out = []
        for plugin_name, _plugin in self.manager.list_name_plugin():
            dist, version = self._origin.get(plugin_name, ("(not installed)", ""))
            kinds = provides.get(plugin_name, {})
            out.append(
                PluginInfo(
                    plugin_name, dist, version, {k: tuple(sorted(v)) for k, v in kinds.items()}
                )
            )
        return sorted(out, key=lambda p: (p.name != BUILTIN_PLUGIN, p.name))


_lock = threading.Lock()
_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin manager, created (and entry points loaded) on first use."""
    global _plugins
    with _lock:
        if _plugins is None:
            autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip() not in ("1", "true", "yes")
            _plugins = Plugins(autoload=autoload)
        return _plugins


def reset_plugins() -> None:
    """Forget the manager, so the next use loads plugins again (after installing one)."""
    global _plugins
    with _lock:
        _plugins = None


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` for ``kind``; see :meth:`Plugins.lookup`."""
    return get_plugins().lookup(kind, name)


def provider_of(kind: str, name: str) -> str:
    """Which distribution and plugin provide ``name``; see :meth:`Plugins.provider_of`."""
    return get_plugins().provider_of(kind, name)


def names(kind: str) -> list[str]:
    """The registered names of ``kind``."""
    return get_plugins().names(kind)


def list_plugins() -> list[PluginInfo]:
    """Every registered plugin, built-ins first."""
    return get_plugins().list_plugins()


def resolve_pod_spec_mutators(
    items: Sequence[str | PodSpecMutator] | None,
) -> list[PodSpecMutator]:
    """Mutators given as callables, or by the name a plugin registered them under."""
    out: list[PodSpecMutator] = []
    for item in items or ():
        out.append(lookup("pod_spec_mutator", item)() if isinstance(item, str) else item)
    return out
