"""The plugin's errors: each is one of ocibuild's public errors, so the CLI prints one line."""

from __future__ import annotations

from ocibuild import CredentialError, OCIBuildError, WorkloadFailedError

__all__ = ["GcpAuthError", "GoogleApiError", "VertexJobFailedError"]


class GcpAuthError(CredentialError):
    """Google credentials that are missing, unreadable, or refused by the token endpoint."""


class GoogleApiError(OCIBuildError):
    """A Google API refused a request; ``status`` is the HTTP status and ``reason`` the API's
    status name (``PERMISSION_DENIED``, ``NOT_FOUND``, ...)."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class VertexJobFailedError(WorkloadFailedError):
    """A Vertex AI job or deployment that ended in failure; the message carries its error."""
