"""The one place transient failures are retried: jittered exponential backoff inside a time budget.

Every registry exchange runs as ``RetryPolicy.run(what, attempt)``. An attempt performs one
HTTP exchange (or a short fixed sequence, such as "ask where the upload stands, then send the
rest") and returns the response that ends it. Connection errors and 408, 429, 500, 502, 503
and 504 answers are retried; ``Retry-After`` is honoured; anything else is returned for the
caller to judge. When the budget runs out the error names the operation and the last failure.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ..._errors import RetryBudgetExceededError

__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "TransientError", "retry_after"]

log = logging.getLogger("ocibuild.registry")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class TransientError(Exception):
    """A failure worth retrying that is not the final response (a token server's 503, say)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """Retry transient failures for at most ``budget`` seconds per operation."""

    budget: float
    first_delay: float = 0.1
    max_delay: float = 5.0

    def run(self, what: str, attempt: Callable[[int], httpx.Response]) -> httpx.Response:
        """Call ``attempt(n)`` (n = 0, 1, ...) until it ends without a transient failure."""
        start = time.monotonic()
        n = 0
        while True:
            asked: float | None = None
            try:
                response = attempt(n)
            except (httpx.TransportError, TransientError) as err:
                if isinstance(err, (httpx.UnsupportedProtocol, httpx.ProxyError)):
                    raise
                status = getattr(err, "status", None)
                last = _describe_error(err)
                url = _url_of(err)
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    return response
                status, url = response.status_code, _clean(response.request.url)
                last = f"HTTP {status}"
                asked = retry_after(response)
                response.close()
            n += 1
            delay = asked if asked is not None else self._backoff(n)
            elapsed = time.monotonic() - start
            if elapsed + delay > self.budget:
                hint = f" (the registry asked to wait {asked:g} s)" if asked is not None else ""
                raise RetryBudgetExceededError(
                    f"{what} failed after {n} attempt{'s' if n != 1 else ''} in {elapsed:.1f} s; "
                    f"last error: {last}{hint}; the retry budget of {self.budget:g} s is spent, "
                    "check that the registry is reachable and healthy",
                    status=status,
                    url=url,
                )
            log.info("%s: %s; retrying in %.2f s", what, last, delay)
            time.sleep(delay)

    def _backoff(self, n: int) -> float:
        ceiling = min(self.max_delay, self.first_delay * 2 ** (n - 1))
        return random.uniform(ceiling / 2, ceiling)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by ``Retry-After`` (delta seconds or an HTTP date), if present."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe_error(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if isinstance(err, httpx.TransportError) else text


def _url_of(err: Exception) -> str | None:
    try:
        request = err.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return None
    return _clean(request.url) if isinstance(request, httpx.Request) else None


def _clean(url: httpx.URL) -> str:
    """A URL without its query (upload URLs carry opaque state that helps no one)."""
    return str(url.copy_with(query=None))
