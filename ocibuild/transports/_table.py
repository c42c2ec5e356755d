"""The table of transports, keyed by the prefix of their spelling.

``oci:PATH[:TAG]``, ``docker-archive:PATH[:REF]``, ``docker-daemon:NAME[:TAG]`` (an engine's
image store, the engine found as the docker CLI finds it) and registry references (no prefix,
or ``docker://``) are built in; :func:`register_transport` adds another prefix (a plugin's)
whose sources and sinks then work everywhere a spelling is accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import InvalidReferenceError, ManifestError
from ._base import ImageSink, ImageSource
from ._location import Location, add_prefix

if TYPE_CHECKING:
    from .registry import RegistryOptions

__all__ = ["Transport", "mount_origin", "open_sink", "open_source", "register_transport"]

Opener = Callable[[Location, "RegistryOptions | None"], ImageSource]
SinkOpener = Callable[[Location, "RegistryOptions | None"], ImageSink]


@dataclass(frozen=True)
class Transport:
    """How one transport reads and writes images: ``kind`` is its prefix without the colon."""

    kind: str
    open_source: Opener | None = None
    open_sink: SinkOpener | None = None


def _layout_source(location: Location, _: RegistryOptions | None) -> ImageSource:
    from ._layout import LayoutSource

    return LayoutSource(location.path or ".", location.tag)


def _layout_sink(location: Location, _: RegistryOptions | None) -> ImageSink:
    from ._layout import LayoutSink

    return LayoutSink(location.path or ".", location.tag)


def _archive_source(location: Location, _: RegistryOptions | None) -> ImageSource:
    from ._archive import ArchiveSource

    return ArchiveSource(location.path or ".", location.tag)


def _archive_sink(location: Location, _: RegistryOptions | None) -> ImageSink:
    from ._archive import ArchiveSink

    return ArchiveSink(location.path or ".", location.tag)


def _daemon_source(location: Location, _: RegistryOptions | None) -> ImageSource:
    from ._daemon import DaemonSource
    from .docker import Engine

    name = f"{location.path}:{location.tag}" if location.tag else location.path or ""
    engine = Engine.from_environment()
    try:
        return DaemonSource(engine, name, close_engine=True)
    except BaseException:
        engine.close()
        raise


def _daemon_sink(location: Location, _: RegistryOptions | None) -> ImageSink:
    from ._daemon import DaemonSink
    from .docker import Engine

    path = location.path or ""
    if "@" in path or path.startswith("sha256:"):
        raise InvalidReferenceError(
            f"cannot write {location}: an engine names what it loads by NAME:TAG; write "
            "docker-daemon:NAME[:TAG]"
        )
    return DaemonSink(Engine.from_environment(), path, location.tag, close_engine=True)


def _registry_source(location: Location, options: RegistryOptions | None) -> ImageSource:
    from .registry import RegistrySource

    assert location.reference is not None
    return RegistrySource(location.reference, options)


def _registry_sink(location: Location, options: RegistryOptions | None) -> ImageSink:
    from .registry import RegistrySink

    assert location.reference is not None
    return RegistrySink(location.reference, options)


_lock = threading.Lock()
_TABLE: dict[str, Transport] = {
    "oci": Transport("oci", _layout_source, _layout_sink),
    "docker-archive": Transport("docker-archive", _archive_source, _archive_sink),
    "docker-daemon": Transport("docker-daemon", _daemon_source, _daemon_sink),
    "registry": Transport("registry", _registry_source, _registry_sink),
}


def register_transport(transport: Transport) -> None:
    """Make ``KIND:...`` spellings open through ``transport``; a kind another has is refused."""
    with _lock:
        current = _TABLE.get(transport.kind)
        if current is not None and current != transport:
            raise InvalidReferenceError(
                f"the transport {transport.kind!r} is already registered; choose another prefix"
            )
        _TABLE[transport.kind] = transport
        add_prefix(transport.kind)


def _transport(location: Location) -> Transport:
    with _lock:
        transport = _TABLE.get(location.kind)
    if transport is None:
        raise ManifestError(f"{location}: no transport is registered for {location.kind!r}")
    return transport


def open_source(location: Location, registry_options: RegistryOptions | None = None) -> ImageSource:
    """An :class:`ImageSource` for a parsed location (not ``scratch``)."""
    transport = _transport(location)
    if transport.open_source is None:
        raise ManifestError(f"{location} cannot be read from")
    return transport.open_source(location, registry_options)


def open_sink(location: Location, registry_options: RegistryOptions | None = None) -> ImageSink:
    """An :class:`ImageSink` for a parsed location."""
    transport = _transport(location)
    if transport.open_sink is None:
        raise ManifestError(f"{location} cannot be written to")
    return transport.open_sink(location, registry_options)


def mount_origin(source: ImageSource) -> tuple[str, str] | None:
    """``(registry, repository)`` when ``source`` is a registry: its blobs can be mounted."""
    ref = getattr(source, "reference", None)
    registry, repository = getattr(ref, "registry", None), getattr(ref, "repository", None)
    if isinstance(registry, str) and isinstance(repository, str):
        return (registry, repository)
    return None
