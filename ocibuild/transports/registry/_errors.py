"""Turning a registry's error answer (``{"errors": [{"code", "message"}]}``) into an exception."""

from __future__ import annotations

import contextlib

import httpx

from ..._errors import AuthenticationError, ManifestError, RegistryError
from ...oci._fields import load_json

__all__ = ["error_codes", "raise_for_status"]

_MAX_MESSAGE = 200


def error_codes(response: httpx.Response) -> tuple[tuple[str, ...], str]:
    """The spec's error codes in a (read) response body, and its first message."""
    try:
        body = load_json(response.content, "the error body")
    except (ManifestError, httpx.ResponseNotRead):
        return (), ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return (), ""
    codes: list[str] = []
    message = ""
    for entry in errors:
        if not isinstance(entry, dict):
            continue
        code = entry.get("code")
        if isinstance(code, str):
            codes.append(code)
        if not message and isinstance(entry.get("message"), str):
            message = entry["message"]
    return tuple(codes), message[:_MAX_MESSAGE]


def raise_for_status(
    response: httpx.Response, what: str, *, credential_source: str, host: str
) -> None:
    """Raise the right error for a failed answer to ``what``; do nothing for 2xx/3xx."""
    status = response.status_code
    if status < 400:
        return
    if not response.is_closed:
        with contextlib.suppress(httpx.HTTPError):
            response.read()
    codes, message = error_codes(response)
    detail = " ".join(filter(None, (", ".join(codes), message))) or response.reason_phrase
    url = str(response.request.url.copy_with(query=None))
    if status == 401:
        raise AuthenticationError(
            f"{what}: {host} answered 401 ({detail}) with credentials from {credential_source}; "
            f"check them or run 'ocibuild login {host}'",
            status=status,
            codes=codes,
            url=url,
        )
    if status == 403:
        raise AuthenticationError(
            f"{what}: {host} denied access (403 {detail}) to the credentials from "
            f"{credential_source}; check that this account may pull/push the repository",
            status=status,
            codes=codes,
            url=url,
        )
    raise RegistryError(
        f"{what}: {host} answered {status} ({detail})", status=status, codes=codes, url=url
    )
