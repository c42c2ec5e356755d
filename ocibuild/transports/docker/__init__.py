"""Docker-compatible engines (dockerd, podman's ``system service``) through their HTTP API.

:class:`Engine` is the client; the ``docker-daemon:`` transport and the ``docker`` builder use
it. Which engine is dialled follows ``DOCKER_HOST`` and the docker context, as the docker CLI
does (:func:`resolve_host`). The client (and httpx) loads on first use of :class:`Engine`, so
``import ocibuild`` can export :class:`EngineError` and stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import EngineError
from ._hosts import EngineHost, TLSConfig, resolve_host

if TYPE_CHECKING:
    from ._engine import MAX_API_VERSION, Engine

__all__ = ["MAX_API_VERSION", "Engine", "EngineError", "EngineHost", "TLSConfig", "resolve_host"]


def __getattr__(name: str) -> Any:
    if name in ("Engine", "MAX_API_VERSION"):
        from . import _engine

        return getattr(_engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
