"""The cluster the Kubernetes deployers talk to, through the official ``kubernetes`` client.

:class:`KubeAccess` finds the configuration (a kubeconfig file and context, or the pod's
in-cluster service account), decides the namespace, and makes every request in the API's own
JSON (dicts, never the client's model classes): create, patch, delete, list, and
:meth:`KubeAccess.watch`, which lists once and then watches, resuming from the last
``resourceVersion`` after a dropped connection and listing again when the API server answers
410 Gone. The ``kubernetes`` package is imported here only, and only when a deployer runs.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._errors import DeployError, NoClusterError
from ._core_api import CoreApi

__all__ = ["SERVICE_ACCOUNT_DIR", "KubeAccess", "Watch", "find_kube_config", "import_kubernetes"]

_log = logging.getLogger("ocibuild.deployers")

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# The API server ends a watch after this long; the client then watches again from where it was.
_WATCH_SECONDS = 60
# (connect, read) seconds: reads wait past the server's own end of a watch.
_TIMEOUT = (10.0, _WATCH_SECONDS + 30.0)
_RECONNECT_PAUSE = (0.2, 0.5, 1.0, 2.0, 5.0)
# How long a followed log may stay silent before its read gives up (a week).
_QUIET_LOG_SECONDS = 7 * 24 * 3600.0


def import_kubernetes() -> Any:
    """The ``kubernetes`` package, or a DeployError saying how to install it."""
    try:
        import kubernetes
    except ImportError as err:
        raise DeployError(
            "the Kubernetes deployers need the official client: pip install 'ocibuild[kubernetes]'"
        ) from err
    return kubernetes


def find_kube_config(
    config_file: str | os.PathLike[str] | None = None,
) -> tuple[str | None, list[str]]:
    """The Kubernetes configuration in use (a path, ``"KUBECONFIG"`` for the files that
    variable lists, or ``"in-cluster"``) and every place looked."""
    looked: list[str] = []
    if config_file is not None:
        looked.append(f"config_file {os.fspath(config_file)}")
        if Path(config_file).is_file():
            return os.fspath(config_file), looked
        return None, looked
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    looked += [f"KUBECONFIG {path}" for path in paths]
    if any(Path(path).is_file() for path in paths):
        return "KUBECONFIG", looked
    if not paths:
        default = Path.home() / ".kube" / "config"
        looked.append(str(default))
        if default.is_file():
            return str(default), looked
    looked.append("in-cluster env KUBERNETES_SERVICE_HOST")
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "in-cluster", looked
    return None, looked


class KubeAccess:
    """One cluster: its client, its default namespace, and JSON requests against it.

    Like Fairing's ``KubeManager`` it answers :meth:`secret_exists`, so Fairing-style pod spec
    mutators that take a backend keep working.
    """

    def __init__(
        self,
        config_file: str | os.PathLike[str] | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
    ) -> None:
        self.config_file = config_file
        self.context = context
        self.client_configuration = client_configuration
        self.persist_config = persist_config
        self.requests = 0  # every API request made, watches included
        self._lock = threading.Lock()
        self._api: Any = None
        self._source: str | None = None

    # -- configuration ---------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The ``kubernetes.client.ApiClient``, made on first use."""
        with self._lock:
            if self._api is None:
                self._api = self._connect()
            return self._api

    def _connect(self) -> Any:
        kubernetes = import_kubernetes()
        found, looked = find_kube_config(self.config_file)
        if found is None:
            raise NoClusterError(
                f"no Kubernetes configuration or cluster was found (looked at {', '.join(looked)})"
            )
        self._source = found
        config = kubernetes.config
        try:
            if found == "in-cluster":
                configuration = self.client_configuration or kubernetes.client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                return kubernetes.client.ApiClient(configuration)
            return config.new_client_from_config(
                config_file=self._config_paths(),
                context=self.context,
                client_configuration=self.client_configuration,
                persist_config=self.persist_config,
            )
        except config.ConfigException as err:
            where = "the in-cluster service account" if found == "in-cluster" else found
            raise NoClusterError(
                f"the Kubernetes configuration {where} is unusable: {err}"
            ) from err

    def _config_paths(self) -> str | None:
        """The kubeconfig file(s) to read (the client merges a KUBECONFIG list)."""
        if self._source == "KUBECONFIG":
            return os.environ.get("KUBECONFIG", "")
        return self._source

    def namespace(self, option: str | None = None) -> str:
        """``option``, else the kubeconfig context's namespace, else the service account's,
        else ``default``."""
        if option:
            return option
        self.api  # noqa: B018 - loads the configuration, and says when there is none
        if self._source not in (None, "in-cluster"):
            kubernetes = import_kubernetes()
            try:
                contexts, active = kubernetes.config.list_kube_config_contexts(self._config_paths())
            except kubernetes.config.ConfigException:
                contexts, active = [], None
            chosen = next((c for c in contexts if c["name"] == self.context), active)
            namespace = ((chosen or {}).get("context") or {}).get("namespace")
            if namespace:
                return str(namespace)
        account = SERVICE_ACCOUNT_DIR / "namespace"
        if self._source == "in-cluster" and account.is_file():
            return account.read_text().strip() or "default"
        return "default"

    @property
    def server(self) -> str:
        """The API server's URL."""
        return str(self.api.configuration.host)

    # -- requests --------------------------------------------------------------------------

    def core(self) -> CoreApi:
        """The core API's requests (pods, logs, secrets, services) on this cluster."""
        return CoreApi(self.api)

    def call(
        self,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``method(*args, **kwargs)`` of a typed API, answered as the API's JSON; a failure
        is a DeployError starting with ``what``. With ``missing_ok``, 404 answers None."""
        kubernetes = import_kubernetes()
        self.requests += 1
        try:
            response = method(*args, _preload_content=False, _request_timeout=_TIMEOUT, **kwargs)
        except kubernetes.client.ApiException as err:
            if missing_ok and err.status == 404:
                return None
            raise api_error(what, err) from None
        except ValueError as err:  # the client's own check of the body (pydantic's, in v35+)
            detail = "; ".join(str(err).splitlines()[1:3]) or str(err)
            raise DeployError(
                f"{what}: the request is not valid: {' '.join(detail.split())}"
            ) from None
        except Exception as err:
            if _is_connection_error(err):
                raise DeployError(
                    f"{what}: cannot reach the Kubernetes API server at {self.server} "
                    f"({_reason(err)})"
                ) from None
            raise
        try:
            data = response.data
        finally:
            response.release_conn()
        return json.loads(data) if data else {}

    def secret_exists(self, name: str, namespace: str) -> bool:
        """Whether the secret ``name`` is in ``namespace`` (Fairing's ``KubeManager`` method)."""
        secret = self.call(
            f"reading secret {namespace}/{name}",
            self.core().read_namespaced_secret,
            name,
            namespace,
            missing_ok=True,
        )
        return secret is not None

    def watch(
        self,
        what: str,
        list_method: Callable[..., Any],
        *args: Any,
        resource_version: str | None = None,
        **kwargs: Any,
    ) -> Watch:
        """A :class:`Watch` of what ``list_method`` lists (with the same arguments); from
        ``resource_version`` on, when given, instead of listing first."""
        return Watch(self, what, list_method, args, kwargs, resource_version)

    def log_lines(
        self,
        pod: str,
        namespace: str,
        container: str,
        *,
        follow: bool,
        tail_lines: int | None = None,
        opened: Callable[[Any], None] | None = None,
    ) -> Iterator[str]:
        """A container's log, line by line (without line ends); ``follow`` reads on until the
        container ends. ``opened`` gets the response, so another thread can shut it."""
        kubernetes = import_kubernetes()
        options: dict[str, Any] = {"container": container, "follow": follow}
        if tail_lines is not None:
            options["tail_lines"] = tail_lines
        self.requests += 1
        try:
            response = self.core().read_namespaced_pod_log(
                pod,
                namespace,
                _preload_content=False,
                # A quiet training script may write nothing for hours.
                _request_timeout=(_TIMEOUT[0], _QUIET_LOG_SECONDS) if follow else _TIMEOUT,
                **options,
            )
        except kubernetes.client.ApiException as err:
            raise api_error(f"reading the log of pod {namespace}/{pod}", err) from None
        if opened is not None:
            opened(response)
        ended = False
        try:
            yield from (line.decode(errors="replace") for line in _lines(response))
            ended = True
        except Exception as err:
            if not _is_connection_error(err):
                raise
            _log.debug("the log of %s/%s ended early: %s", pod, container, err)
        finally:
            _let_go(response, read_to_the_end=ended)


class Watch:
    """Lists, then watches: each item of the list, then each change, as ``(type, object)``.

    ``type`` is ``ADDED``, ``MODIFIED`` or ``DELETED``; after a relist every object listed comes
    again as ``ADDED``. Iterating blocks until a change comes or :meth:`stop` is called (from
    any thread). ``relists`` and ``resumes`` count the 410 Gone relists and the reconnections.
    """

    def __init__(
        self,
        access: KubeAccess,
        what: str,
        list_method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        resource_version: str | None = None,
    ) -> None:
        self.access = access
        self.what = what
        self.list_method = list_method
        self.args = args
        self.kwargs = kwargs
        self.resource_version = resource_version
        self.relists = 0
        self.resumes = 0
        self._stopped = threading.Event()
        self._response: Any = None

    def stop(self) -> None:
        """End the iteration (the blocked read is shut)."""
        self._stopped.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:  # already closed: nothing to shut
                _log.debug("watch of %s: shutting the response failed", self.what)

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        kubernetes = import_kubernetes()
        failures = 0
        while not self._stopped.is_set():
            if self.resource_version is None:
                listed = self.access.call(self.what, self.list_method, *self.args, **self.kwargs)
                self.resource_version = listed["metadata"]["resourceVersion"]
                for item in listed.get("items") or ():
                    yield "ADDED", item
            try:
                for kind, obj in self._watch_once():
                    failures = 0
                    yield kind, obj
            except _Gone:
                self.relists += 1
                self.resource_version = None
                _log.debug("watch of %s: resourceVersion too old, listing again", self.what)
            except kubernetes.client.ApiException as err:
                if err.status == 410:
                    self.relists += 1
                    self.resource_version = None
                    continue
                raise api_error(self.what, err) from None
            except Exception as err:
                if self._stopped.is_set():
                    return
                if not _is_connection_error(err):
                    raise
                if failures >= len(_RECONNECT_PAUSE):
                    raise DeployError(
                        f"{self.what}: the connection to the Kubernetes API server at "
                        f"{self.access.server} keeps failing ({_reason(err)})"
                    ) from None
                self.resumes += 1
                _log.debug("watch of %s dropped (%s); resuming", self.what, _reason(err))
                time.sleep(_RECONNECT_PAUSE[failures])
                failures += 1

    def _watch_once(self) -> Iterator[tuple[str, dict[str, Any]]]:
        self.access.requests += 1
        response = self.list_method(
            *self.args,
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=_WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=_TIMEOUT,
            **self.kwargs,
        )
        self._response = response
        ended = False
        try:
            if self._stopped.is_set():
                return
            for line in _lines(response):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone
                    raise DeployError(f"{self.what}: the API server said {obj.get('message')}")
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version:
                    self.resource_version = version
                if kind != "BOOKMARK":
                    yield kind, obj
            ended = True
        finally:
            self._response = None
            _let_go(response, read_to_the_end=ended)


def _let_go(response: Any, *, read_to_the_end: bool) -> None:
    """Give a streamed answer's connection back to the pool. One cut short (shut by another
    thread, or left unread) is closed first: urllib3 would hand the half-read or shut socket
    to the next request, which then waits its whole read timeout for an answer."""
    if not read_to_the_end:
        response.close()
    response.release_conn()


class _Gone(Exception):
    """The watch's resourceVersion is older than the API server keeps."""


class KubeApiError(DeployError):
    """The API server refused a request; ``status`` and ``reason`` are its answer's."""

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def api_error(what: str, err: Any) -> KubeApiError:
    """One line for an ``ApiException``: what failed, and what the API server said."""
    status = int(getattr(err, "status", 0) or 0)
    reason, message = str(getattr(err, "reason", "") or ""), ""
    try:
        body = json.loads(err.body or "{}")
        reason, message = body.get("reason") or reason, body.get("message") or ""
    except (TypeError, ValueError):
        message = str(err.body or "")[:200]
    hint = {
        401: "; check the credentials of your kubeconfig context",
        403: "; your account may not do this: ask for the permission, or use another namespace",
    }.get(status, "")
    detail = f"{status} {reason}: {message}" if message else f"{status} {reason}"
    return KubeApiError(
        f"{what}: the API server answered {detail}{hint}", status=status, reason=reason
    )


def _lines(response: Any) -> Iterator[bytes]:
    """The lines of a streamed answer, as they arrive (without their line ends)."""
    pending = b""
    for chunk in response.stream(64 * 1024, decode_content=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


def _is_connection_error(err: BaseException) -> bool:
    import urllib3.exceptions

    return isinstance(err, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError))


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None)
    text = str(reason or err)
    return " ".join(text.split())[:200] or type(err).__name__
