"""Upload URLs: ``Location`` headers (absolute or relative) and the ``digest`` parameter."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from ..._errors import RegistryError
from ...oci import Digest

__all__ = ["resolve_location", "with_digest"]


def resolve_location(response: httpx.Response) -> str:
    """The response's ``Location``, resolved against the request URL (it may be relative)."""
    location = response.headers.get("location")
    if not location:
        raise RegistryError(
            f"{response.request.method} {response.request.url.copy_with(query=None)} answered "
            f"{response.status_code} without a Location header",
            status=response.status_code,
        )
    return str(response.request.url.join(location))


def with_digest(location: str, digest: Digest) -> str:
    """``location`` with ``digest=`` appended (after ``&`` when it already has a query)."""
    separator = "&" if "?" in location else "?"
    return f"{location}{separator}digest={quote(str(digest), safe=':')}"
