"""The error a container engine's API gives, kept apart from the client so that ``ocibuild``
can export it without importing httpx."""

from __future__ import annotations

from ..._errors import TransportError

__all__ = ["EngineError"]


class EngineError(TransportError):
    """A Docker-compatible engine is unreachable, or answered a request with an error.

    ``status`` is the HTTP status of the answer (``None`` when there was none: unreachable,
    timed out, or an error the engine reported inside its message stream); ``detail`` is the
    engine's own message, when it gave one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
