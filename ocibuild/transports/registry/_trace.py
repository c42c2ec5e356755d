"""``ocibuild -v``: one DEBUG line per HTTP attempt on the ``ocibuild.http`` logger.

``GET https://registry/v2/app/manifests/1 -> 200 in 12 ms``: method, URL, status, time to the
answer's headers. Under the retry transport, so every attempt shows, retries and auth
round trips included. Header values never show (Authorization, cookies), nor a URL's user
info, and a query value shows only for parameters the distribution protocol defines in the
clear: pre-signed redirect URLs (S3's ``X-Amz-Signature``, GCS's ``X-Goog-Credential``) and
upload-state tokens carry credentials in their query.
"""

from __future__ import annotations

import logging
import time

import httpx

__all__ = ["TracingTransport", "redacted_url"]

log = logging.getLogger("ocibuild.http")

# Query parameters whose values are not secret (the distribution spec's, and the token
# endpoint's service/scope); every other value shows as "…".
_CLEAR = frozenset({"digest", "mount", "from", "n", "last", "service", "scope", "account"})


def redacted_url(url: httpx.URL) -> str:
    """``url`` without user info, with the values of unknown query parameters hidden."""
    params = [(k, v if k in _CLEAR else "…") for k, v in url.params.multi_items()]
    clean = url.copy_with(username=None, password=None, query=None)
    if not params:
        return str(clean)
    query = "&".join(f"{k}={v}" for k, v in params)
    return f"{clean}?{query}"


class TracingTransport(httpx.BaseTransport):
    """Logs each request it passes to ``inner`` (when ``ocibuild.http`` shows DEBUG)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not log.isEnabledFor(logging.DEBUG):
            return self._inner.handle_request(request)
        start = time.monotonic()
        where = f"{request.method} {redacted_url(request.url)}"
        try:
            response = self._inner.handle_request(request)
        except Exception as err:
            log.debug("%s -> %s after %.0f ms", where, type(err).__name__, _ms(start))
            raise
        log.debug("%s -> %d in %.0f ms", where, response.status_code, _ms(start))
        return response

    def close(self) -> None:
        self._inner.close()


def _ms(start: float) -> float:
    return (time.monotonic() - start) * 1000
