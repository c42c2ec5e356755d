"""The core API's requests (``/api/v1``: pods, their logs, secrets, services) without the
client's ``CoreV1Api`` class.

Importing ``CoreV1Api`` builds several hundred model classes: about 1.9 s on a small machine,
which every deploy would pay before its first pod is followed. The deployers read and write
the API's JSON and need none of those models, so these requests go through the client's own
``ApiClient`` (its configuration, credentials, TLS and connection pool) the way its generated
methods do when called with ``_preload_content=False``: a non-2xx answer raises the client's
``ApiException``, any other returns the raw urllib3 response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["CoreApi"]

# The keyword arguments the deployers pass, as the query parameters the API server takes.
_QUERY = {
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "container": "container",
    "field_selector": "fieldSelector",
    "field_validation": "fieldValidation",
    "follow": "follow",
    "label_selector": "labelSelector",
    "previous": "previous",
    "resource_version": "resourceVersion",
    "tail_lines": "tailLines",
    "timeout_seconds": "timeoutSeconds",
    "watch": "watch",
}
_VERBS = {"list": "GET", "read": "GET", "create": "POST", "patch": "PATCH", "delete": "DELETE"}


class CoreApi:
    """``verb(...)`` requests on a core kind of one cluster's ``ApiClient``."""

    def __init__(self, api_client: Any) -> None:
        self.api = api_client

    def method(self, verb: str, plural: str) -> Callable[..., Any]:
        """A callable shaped like ``CoreV1Api``'s ``<verb>_namespaced_<kind>``: ``list`` and
        ``create`` take ``(namespace, ...)``, the others ``(name, namespace, ...)``; ``create``
        and ``patch`` take the body next."""
        collection = "/api/v1/namespaces/{namespace}/" + plural

        def request(*args: Any, **kwargs: Any) -> Any:
            if verb in ("list", "create"):
                namespace, *rest = args
                path, params = collection, {"namespace": namespace}
            else:
                name, namespace, *rest = args
                path, params = collection + "/{name}", {"namespace": namespace, "name": name}
            body = rest[0] if rest else kwargs.pop("body", None)
            return self._send(_VERBS[verb], path, params, body, **kwargs)

        return request

    def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> Any:
        """``GET /api/v1/namespaces/NS/pods`` (a watch with ``watch=True``)."""
        return self.method("list", "pods")(namespace, **kwargs)

    def read_namespaced_secret(self, name: str, namespace: str, **kwargs: Any) -> Any:
        """``GET /api/v1/namespaces/NS/secrets/NAME``."""
        return self.method("read", "secrets")(name, namespace, **kwargs)

    def read_namespaced_pod_log(self, name: str, namespace: str, **kwargs: Any) -> Any:
        """``GET /api/v1/namespaces/NS/pods/NAME/log``."""
        path = "/api/v1/namespaces/{namespace}/pods/{name}/log"
        params = {"namespace": namespace, "name": name}
        # As the client's own method does: the API server refuses text/plain here (406).
        return self._send("GET", path, params, None, **kwargs)

    def _send(
        self,
        method: str,
        path: str,
        path_params: dict[str, str],
        body: Any,
        *,
        _content_type: str | None = None,
        _preload_content: bool = False,
        _request_timeout: Any = None,
        **query: Any,
    ) -> Any:
        unknown = set(query) - set(_QUERY)
        if unknown:
            raise TypeError(f"{method} {path}: no query parameter {', '.join(sorted(unknown))}")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = _content_type or "application/json"
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            path_params=path_params,
            query_params=[(_QUERY[k], v) for k, v in query.items() if v is not None],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*serialized, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()
            from kubernetes.client import ApiException  # there: api_client is the client's

            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response
