"""One Google JSON API at one base URL, over httpx: bearer tokens, retries, one-line errors.

A request carries ``Authorization: Bearer`` from its credentials (none without credentials,
as for an emulator). A 401 drops the token and tries once more with a new one. 429, 500, 502,
503 and 504 are retried with exponential backoff and jitter, honouring ``Retry-After``, for
up to ``retry_seconds``; so are connection failures, except for a POST that may have reached
the server (only a refused connection proves it did not): creating a job twice is worse than
an error. Anything else is a :class:`GoogleApiError` carrying the API's status name and
message. Tokens and ``Authorization`` headers never reach a log, an error or a repr.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._auth import GoogleCredentials
from ._errors import GcpAuthError, GoogleApiError

__all__ = ["RETRIED_STATUSES", "GoogleApi"]

log = logging.getLogger("ocibuild.gcp")

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_FIRST_DELAY = 0.5
_MAX_DELAY = 16.0
# The names Google's APIs give these statuses, for errors whose body names none (GCS's).
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

Body = bytes | str | Iterable[bytes] | None


class GoogleApi:
    """One Google JSON API (``api`` names it in messages: ``"Vertex AI"``) at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        credentials: GoogleCredentials | None,
        *,
        api: str = "Google API",
        timeout: float = 60.0,
        retry_seconds: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.api = api
        self.retry_seconds = retry_seconds
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON object the API answers (``{}`` for an empty body); ``path`` is relative to
        the base URL (``/v1/projects/p/...``) or a full URL."""
        answer = self.request(method, path, json=json, params=params, ok=(200, 201, 202, 204))
        if not answer.content:
            return {}
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GoogleApiError(
                f"{self._what(method, path)}: the answer is not a JSON object; "
                "check the API endpoint",
                status=answer.status_code,
            )
        return body

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
    ) -> httpx.Response:
        """The raw answer, whose status is one of ``ok`` (GCS uploads, 308s). A streamed
        ``content`` (an iterable) is sent once: its failures are not retried."""
        method = method.upper()
        accepted = frozenset(ok)
        replayable = content is None or isinstance(content, (bytes, str))
        deadline = time.monotonic() + self.retry_seconds
        refreshed = False
        tries = 0
        while True:
            tries += 1
            try:
                answer = self._send(method, path, json, params, content, headers)
            except httpx.TransportError as err:
                sent = not isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout))
                if not replayable or (sent and method not in _IDEMPOTENT):
                    raise self._lost(method, path, err, sent, tries) from None
                if not self._pause(tries, deadline, None):
                    raise self._lost(method, path, err, sent, tries) from None
                continue
            status = answer.status_code
            if status in accepted:
                return answer
            if status == 401 and self.credentials is not None and not refreshed and replayable:
                self.credentials.invalidate()
                refreshed = True
                continue
            if status == 401:
                raise self._unauthenticated(method, path, answer)
            if status in RETRIED_STATUSES and replayable and self._pause(tries, deadline, answer):
                continue
            raise self._error(method, path, answer, tries)

    def _send(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, Any] | None,
        content: Body,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        sent_headers = dict(headers or {})
        if self.credentials is not None:
            sent_headers["Authorization"] = f"Bearer {self.credentials.token()}"
        answer = self._client.request(
            method,
            self._url(path),
            json=json,
            params=dict(params) if params else None,
            content=content,
            headers=sent_headers,
        )
        log.debug("%s -> %s", self._what(method, path), answer.status_code)
        return answer

    def _pause(self, tries: int, deadline: float, answer: httpx.Response | None) -> bool:
        """Sleep before the next try: ``Retry-After`` if the answer has one, else exponential
        backoff with jitter; ``False`` (no sleep) when that would outlast the budget."""
        asked = _retry_after(answer) if answer is not None else None
        if asked is not None:
            delay = asked
        else:
            delay = min(_MAX_DELAY, _FIRST_DELAY * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        return True

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _what(self, method: str, path: str) -> str:
        return f"{self.api}: {method} {urlsplit(self._url(path)).path}"

    def _error(self, method: str, path: str, answer: httpx.Response, tries: int) -> GoogleApiError:
        status = answer.status_code
        reason, message = _google_error(answer)
        tail = f" (gave up after {tries} tries)" if tries > 1 else ""
        return GoogleApiError(
            f"{self._what(method, path)}: {status} {reason}: {message}{tail}",
            status=status,
            reason=reason,
        )

    def _unauthenticated(self, method: str, path: str, answer: httpx.Response) -> GcpAuthError:
        _, message = _google_error(answer)
        if self.credentials is None:
            return GcpAuthError(
                f"{self._what(method, path)}: 401 UNAUTHENTICATED: {message}; "
                "no Google credentials were sent: configure Application Default Credentials"
            )
        return GcpAuthError(
            f"{self._what(method, path)}: 401 UNAUTHENTICATED: {message}; a new token from "
            f"{self.credentials.source} was refused too: check those credentials"
        )

    def _lost(
        self, method: str, path: str, err: httpx.TransportError, sent: bool, tries: int
    ) -> GoogleApiError:
        if sent and method not in _IDEMPOTENT:
            what = "the connection broke after the request was sent, so it is not retried"
            todo = "check whether it took effect before trying again"
        else:
            again = f" after {tries} tries" if tries > 1 else ""
            what = f"cannot reach the API ({type(err).__name__}){again}"
            todo = "check the network and the API endpoint"
        return GoogleApiError(f"{self._what(method, path)}: {what}; {todo}", status=0)

    def close(self) -> None:
        """Close the HTTP client (not one passed in)."""
        if self._own_client:
            self._client.close()

    def __enter__(self) -> GoogleApi:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        source = self.credentials.source if self.credentials is not None else "no credentials"
        return f"<GoogleApi {self.api} {self.base_url} ({source})>"


def _google_error(answer: httpx.Response) -> tuple[str, str]:
    """The status name and message of a Google error body (``{"error": {...}}``)."""
    status = answer.status_code
    reason, message = "", ""
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        reason = str(error.get("status") or "")
        message = str(error.get("message") or "")
        details = error.get("errors")
        if not reason and isinstance(details, list) and details and isinstance(details[0], dict):
            reason = str(details[0].get("reason") or "")
    elif isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
        reason = error
        message = str(body.get("error_description") or "") if isinstance(body, dict) else ""
    if not message:
        message = answer.text.strip()[:200] or answer.reason_phrase
    reason = reason or _STATUS_NAMES.get(status, answer.reason_phrase.upper().replace(" ", "_"))
    return reason, " ".join(message.split())


def _retry_after(answer: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number, or an HTTP date), if the answer has one."""
    value = answer.headers.get("retry-after")
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
