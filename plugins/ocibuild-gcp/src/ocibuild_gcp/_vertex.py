"""What the Vertex AI deployers share: where the API is, resource names, polling, logs.

:class:`VertexTarget` is the project, region and endpoints a deploy talks to (with its
credentials) and makes the two API clients: Vertex AI at ``https://{region}-aiplatform.
googleapis.com`` (or the ``api_endpoint`` option) and Cloud Logging. :class:`Backoff` spaces
the polls of a job or a long-running operation (:func:`wait_operation`). :func:`vertex_container`
turns the pod spec a builder made into the one container Vertex AI runs, saying once what of
it cannot go there. :class:`LogReader` reads a resource's Cloud Logging entries page by page
and remembers where it stopped, so following a log is reading it again.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
import string
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

from ocibuild import DeployError, DeployTimeoutError, InvalidReferenceError
from ocibuild.pipeline import PodSpec, PodSpecMutator
from ocibuild.preprocessors import RUNTIME_ENV
from ocibuild.transports import Location

from ._auth import (
    GoogleCredentials,
    application_default_credentials,
    default_project,
    default_region,
    find_credentials,
)
from ._errors import VertexJobFailedError

if TYPE_CHECKING:
    from ._api import GoogleApi

__all__ = [
    "CONSOLE",
    "DEFAULT_LOGGING_ENDPOINT",
    "MANAGED_BY",
    "Backoff",
    "Cleanup",
    "LogReader",
    "VertexContainer",
    "VertexDeployer",
    "VertexTarget",
    "check_cleanup",
    "check_count",
    "check_labels",
    "check_mutators",
    "check_poll_interval",
    "display_name_for",
    "entry_lines",
    "mutated",
    "resolve_target",
    "resource_id",
    "rpc_code_name",
    "vertex_container",
    "wait_operation",
]

DEFAULT_LOGGING_ENDPOINT = "https://logging.googleapis.com"
CONSOLE = "https://console.cloud.google.com"
MANAGED_BY = {"managed-by": "ocibuild"}
_HTTP_TIMEOUT = 60.0

# A poll waits half as long again as the one before, up to this many first intervals
# (5 s grows to 30 s): a job that queues for an hour is not asked every 5 s.
_GROWTH = 1.5
_CAP_FACTOR = 6.0
# Google's label rules (keys and values): lowercase letters, digits, _ and -, 63 at most.
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_MAX_LABELS = 64
_GPU = "nvidia.com/gpu"
# What Vertex AI's container spec has room for; the rest of a pod spec is Kubernetes'.
_CONTAINER_KEYS = frozenset({"name", "image", "command", "args", "env", "resources"})
# The builders set the image's working directory from the same context, so the pod spec's
# copy (which Vertex has no field for) is the image's own and need not be warned about.
_QUIET_CONTAINER_KEYS = frozenset({"workingDir"})
_POD_KEYS = frozenset({"containers"})
_QUIET_POD_KEYS = frozenset({"restartPolicy"})

# google.rpc.Code, for the ``error.code`` of an operation.
_RPC_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


def rpc_code_name(code: object) -> str:
    """The name of a ``google.rpc.Code`` (``9`` is ``FAILED_PRECONDITION``)."""
    return _RPC_CODES.get(code, str(code)) if isinstance(code, int) else str(code or "UNKNOWN")


def resource_id(name: str) -> str:
    """The last part of a resource name (``projects/p/locations/l/customJobs/123``: ``123``)."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def check_poll_interval(poll_interval: float) -> float:
    """``poll_interval`` as a float, or a one-line error."""
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
        raise DeployError(f"poll_interval={poll_interval!r}: a number of seconds, more than 0")
    if poll_interval <= 0:
        raise DeployError(f"poll_interval={poll_interval!r}: a number of seconds, more than 0")
    return float(poll_interval)


Cleanup = bool | Literal["always"]
_NAME_CHARS = string.ascii_lowercase + string.digits


def check_cleanup(cleanup: object) -> Cleanup:
    """``cleanup`` if it is True, False or ``"always"``; else a one-line error."""
    if isinstance(cleanup, bool):
        return cleanup
    if cleanup == "always":
        return "always"
    raise DeployError(f"cleanup={cleanup!r}: use True, False or 'always'")


def check_count(option: str, value: object, minimum: int) -> int:
    """``value`` if it is a whole number of at least ``minimum``; else a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DeployError(f"{option}={value!r}: a whole number, {minimum} or more")
    return value


def display_name_for(display_name: str | None, image: str, default: str) -> str:
    """``display_name``, else the image's repository name and five random characters."""
    if display_name:
        return display_name
    base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0] or default
    return f"{base[:100]}-" + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


def check_labels(deployer: str, labels: Mapping[str, str] | None) -> dict[str, str]:
    """``labels`` with ocibuild's own, checked against Google's rules for labels."""
    out = {**MANAGED_BY, "ocibuild-deployer": deployer, **(labels or {})}
    for key, value in out.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            raise DeployError(
                f"label {key!r}: a Google Cloud label key starts with a lowercase letter and "
                "has up to 63 lowercase letters, digits, '_' and '-'"
            )
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise DeployError(
                f"label {key}={value!r}: a Google Cloud label value has up to 63 lowercase "
                "letters, digits, '_' and '-'"
            )
    if len(out) > _MAX_LABELS:
        raise DeployError(f"{len(out)} labels: Google Cloud takes {_MAX_LABELS} at most")
    return out


# -- where --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VertexTarget:
    """The project and region a deploy goes to, the API endpoints, and the credentials
    (None for a dry run made without any)."""

    project: str
    region: str
    api_endpoint: str | None
    logging_endpoint: str
    credentials: GoogleCredentials | None

    @property
    def base_url(self) -> str:
        """Vertex AI's base URL: ``api_endpoint``, else the region's
        ``https://{region}-aiplatform.googleapis.com``."""
        if self.api_endpoint:
            endpoint = self.api_endpoint.rstrip("/")
            # Google's client libraries take a bare host here; so does this option.
            return endpoint if "://" in endpoint else f"https://{endpoint}"
        return f"https://{self.region}-aiplatform.googleapis.com"

    @property
    def parent(self) -> str:
        """``projects/{project}/locations/{region}``."""
        return f"projects/{self.project}/locations/{self.region}"

    def apis(self) -> tuple[GoogleApi, GoogleApi]:
        """Clients of Vertex AI and of Cloud Logging, sharing one HTTP client (making one
        loads the system's CA certificates: tens of milliseconds)."""
        import httpx  # when a deploy talks to Vertex AI: the plugin's hooks stay light

        from ._api import GoogleApi

        client = httpx.Client(timeout=_HTTP_TIMEOUT)
        endpoint = self.logging_endpoint.rstrip("/")
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        return (
            GoogleApi(self.base_url, self.credentials, api="Vertex AI", client=client),
            GoogleApi(endpoint, self.credentials, api="Cloud Logging", client=client),
        )

    def console(self, path: str) -> str:
        """The Cloud Console's page ``vertex-ai/{path}`` of this project."""
        return f"{CONSOLE}/vertex-ai/{path}?project={self.project}"


class VertexDeployer:
    """What both Vertex AI deployers take and check: where (``project``, ``region``, the base
    URLs), the machine, the names, and how ``deploy()`` behaves (``wait``, ``stream_log``,
    ``dry_run``, ``cleanup``, ``timeout``, ``poll_interval``). Subclasses keep their own
    explicit signatures (the CLI types ``--deployer-option`` values from them) and pass
    these on."""

    def __init__(
        self,
        deployer: str,
        *,
        project: str | None,
        region: str | None,
        display_name: str | None,
        machine_type: str,
        accelerator_type: str | None,
        accelerator_count: int | None,
        service_account: str | None,
        labels: Mapping[str, str] | None,
        timeout: float | None,
        api_endpoint: str | None,
        logging_endpoint: str,
        poll_interval: float,
        wait: bool,
        stream_log: bool,
        dry_run: bool,
        cleanup: Cleanup,
        pod_spec_mutators: Sequence[PodSpecMutator] | None,
        credentials: GoogleCredentials | None,
        log_stream: TextIO | None,
    ) -> None:
        if not machine_type:
            raise DeployError("machine_type='': name a Compute Engine machine type")
        if accelerator_count is not None:
            check_count("accelerator_count", accelerator_count, 1)
        if timeout is not None and timeout <= 0:
            raise DeployError(f"timeout={timeout!r}: a number of seconds, more than 0")
        self.display_name = display_name
        self.machine_type = machine_type
        self.accelerator_type = accelerator_type
        self.accelerator_count = accelerator_count
        self.service_account = service_account
        self.labels = check_labels(deployer, labels)
        self.timeout = timeout
        self.poll_interval = check_poll_interval(poll_interval)
        self.wait = wait
        self.stream_log = stream_log
        self.dry_run = dry_run
        self.cleanup = check_cleanup(cleanup)
        self.log_stream = log_stream
        self.pod_spec_mutators = check_mutators(pod_spec_mutators)
        self.target = resolve_target(
            deployer,
            project=project,
            region=region,
            api_endpoint=api_endpoint,
            logging_endpoint=logging_endpoint,
            credentials=credentials,
            dry_run=dry_run,
        )


def resolve_target(
    deployer: str,
    *,
    project: str | None,
    region: str | None,
    api_endpoint: str | None,
    logging_endpoint: str,
    credentials: GoogleCredentials | None,
    dry_run: bool,
) -> VertexTarget:
    """The target of a deploy, with the project and region from the environment (and the
    credentials) when not given; a one-line error says how to set a missing one. A dry run
    works without credentials."""
    if credentials is None:
        credentials = find_credentials() if dry_run else application_default_credentials()
    project = project or default_project(credentials)
    if not project:
        raise DeployError(
            f"{deployer}: no Google Cloud project: pass project=ID (--deployer-option "
            "project=ID), set GOOGLE_CLOUD_PROJECT, or run 'gcloud config set project ID'"
        )
    region = region or default_region()
    if not region:
        raise DeployError(
            f"{deployer}: no Vertex AI region: pass region=REGION (--deployer-option "
            "region=us-central1), set GOOGLE_CLOUD_REGION, or run "
            "'gcloud config set ai/region REGION'"
        )
    return VertexTarget(project, region, api_endpoint, logging_endpoint, credentials)


# -- polling ------------------------------------------------------------------------------


class Backoff:
    """Poll intervals that start at ``first`` seconds and grow to a cap, and the deadline
    ``timeout`` seconds from now (None: none)."""

    def __init__(self, first: float, timeout: float | None = None) -> None:
        self.first = first
        self.interval = first
        self.cap = first * _CAP_FACTOR
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def sleep(self) -> None:
        """Wait the next interval (never past the deadline), and grow it."""
        wait = self.interval
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline - time.monotonic()))
        time.sleep(wait)
        self.interval = min(self.interval * _GROWTH, self.cap)

    def reset(self) -> None:
        """Back to the first interval (something moved: look again soon)."""
        self.interval = self.first


def wait_operation(
    api: GoogleApi, operation: Mapping[str, Any], what: str, backoff: Backoff
) -> dict[str, Any]:
    """Poll a long-running operation until it is done; its ``response``. An operation that
    ended in error raises :class:`VertexJobFailedError` with that error; one still running at
    the deadline :class:`DeployTimeoutError` (it goes on)."""
    op: Mapping[str, Any] = operation
    name = str(op.get("name") or "")
    while not op.get("done"):
        if backoff.expired():
            raise DeployTimeoutError(
                f"{what}: not done after {backoff.timeout:g} s (operation {name} goes on)"
            )
        backoff.sleep()
        op = api.call("GET", f"/v1/{name}")
    error = op.get("error")
    if error:
        reason = rpc_code_name(error.get("code"))
        message = " ".join(str(error.get("message") or "no message").split())
        raise VertexJobFailedError(f"{what} failed: {reason}: {message}", reason=reason)
    response: dict[str, Any] = dict(op.get("response") or {})
    return response


# -- the container ------------------------------------------------------------------------


@dataclass(frozen=True)
class VertexContainer:
    """The one container Vertex AI runs: what of the pod spec's first container it takes."""

    image: str
    command: list[str]
    args: list[str]
    env: list[dict[str, str]]
    gpus: int | None  # the container's nvidia.com/gpu limit

    def spec(self) -> dict[str, Any]:
        """Vertex AI's ``containerSpec`` (a CustomJob's, or a Model's before its ports)."""
        spec: dict[str, Any] = {"imageUri": self.image}
        if self.command:
            spec["command"] = list(self.command)
        if self.args:
            spec["args"] = list(self.args)
        if self.env:
            spec["env"] = [dict(e) for e in self.env]
        return spec


def check_mutators(mutators: Sequence[PodSpecMutator] | None) -> list[PodSpecMutator]:
    """The pod spec mutators, each a callable (the pipeline resolves plugin names)."""
    out = list(mutators or ())
    for mutator in out:
        if not callable(mutator):
            raise DeployError(
                f"pod spec mutator {mutator!r} is not callable: pass a function, or give its "
                "plugin name through config.set_deployer() or ocibuild.run()"
            )
    return out


def mutated(pod_spec: PodSpec, mutators: Sequence[PodSpecMutator]) -> PodSpec:
    """A copy of ``pod_spec`` with each mutator applied (there is no namespace on Vertex)."""
    spec = copy.deepcopy(pod_spec)
    for mutator in mutators:
        mutator(spec, None)
    return spec


def vertex_container(pod_spec: PodSpec, deployer: str, log: logging.Logger) -> VertexContainer:
    """The first container of ``pod_spec`` as Vertex AI runs it; what cannot go to Vertex AI
    (other containers, volumes, ``valueFrom`` env) is named in one warning each."""
    containers = list(pod_spec.get("containers") or ())
    if not containers or not containers[0].get("image"):
        raise DeployError(f"{deployer}: the pod spec has no container image to run")
    first: Mapping[str, Any] = containers[0]
    image = _checked_image(deployer, str(first["image"]), log)
    ignored = [k for k in pod_spec if k not in _POD_KEYS | _QUIET_POD_KEYS]
    taken = _CONTAINER_KEYS | _QUIET_CONTAINER_KEYS
    ignored += [f"containers[0].{k}" for k in first if k not in taken]
    resources = first.get("resources") or {}
    for kind in ("limits", "requests"):
        ignored += [
            f"containers[0].resources.{kind}.{r}"
            for r in resources.get(kind) or {}
            if r != _GPU  # the machine type sizes a Vertex AI node
        ]
    if len(containers) > 1:
        ignored.append(f"containers[1:] ({len(containers) - 1} more)")
    if ignored:
        log.warning(
            "%s: Vertex AI runs one container from the image; ignoring the Kubernetes-only "
            "parts of the pod spec: %s",
            deployer,
            ", ".join(ignored),
        )
    return VertexContainer(
        image,
        [str(c) for c in first.get("command") or ()],
        [str(a) for a in first.get("args") or ()],
        _env(deployer, first.get("env") or (), log),
        _gpus(deployer, resources),
    )


def _checked_image(deployer: str, image: str, log: logging.Logger) -> str:
    try:
        location = Location.parse(image)
    except InvalidReferenceError as err:
        raise DeployError(f"{deployer}: {err}") from None
    reference = location.reference
    if location.kind != "registry" or reference is None:
        raise DeployError(
            f"{deployer}: Vertex AI runs images from a registry (Artifact Registry), and "
            f"{image} is not one: build with registry= (--registry "
            "REGION-docker.pkg.dev/PROJECT/REPO)"
        )
    if reference.digest is None:
        raise DeployError(
            f"{deployer}: the image {image} is not pinned by digest: give REPO@sha256:... "
            "(ocibuild's builders and 'ocibuild deploy' pin it)"
        )
    if reference.is_loopback:
        log.warning(
            "%s: %s is in a registry on this machine's loopback, which Vertex AI cannot pull from",
            deployer,
            image,
        )
    return image


def _env(deployer: str, entries: Any, log: logging.Logger) -> list[dict[str, str]]:
    env: list[dict[str, str]] = []
    dropped: list[str] = []
    for entry in entries:
        name = str(entry.get("name") or "")
        if "value" in entry:
            env.append({"name": name, "value": str(entry["value"])})
        elif "valueFrom" in entry:
            dropped.append(name)
        else:
            env.append({"name": name, "value": ""})
    if dropped:
        log.warning(
            "%s: Vertex AI takes plain env values only; not set: %s (valueFrom a Kubernetes "
            "secret or config map)",
            deployer,
            ", ".join(dropped),
        )
    present = {e["name"] for e in env}
    env += [{"name": k, "value": v} for k, v in RUNTIME_ENV.items() if k not in present]
    return env


def _gpus(deployer: str, resources: Mapping[str, Any]) -> int | None:
    for kind in ("limits", "requests"):
        value = (resources.get(kind) or {}).get(_GPU)
        if value is None:
            continue
        try:
            count = int(str(value))
        except ValueError:
            raise DeployError(
                f"{deployer}: {_GPU}={value!r} in the pod spec: a whole number of GPUs"
            ) from None
        return count or None
    return None


# -- logs ---------------------------------------------------------------------------------


def entry_lines(entry: Mapping[str, Any]) -> list[str]:
    """The text lines of one Cloud Logging entry (its text, or its JSON's message)."""
    if "textPayload" in entry:
        text = str(entry["textPayload"])
    elif "jsonPayload" in entry:
        payload = entry["jsonPayload"] or {}
        message = payload.get("message") if isinstance(payload, dict) else None
        text = str(message) if message is not None else json.dumps(payload, sort_keys=True)
    else:
        return []
    return text.rstrip("\n").splitlines() or [""]


@dataclass
class LogReader:
    """The Cloud Logging entries that ``filter`` selects in ``project``, oldest first.

    :meth:`entries` reads every page of what is there now and remembers the newest entry's
    timestamp; the next call asks only from that timestamp on (skipping the entries already
    read at it), so calling it again follows the log. An entry that arrives late with an
    older timestamp than one read already is missed, as ``gcloud`` misses it.
    """

    api: GoogleApi
    project: str
    filter: str
    page_size: int = 1000
    last_timestamp: str | None = None
    _seen_at_last: set[str] = field(default_factory=set)

    def entries(self) -> Iterator[dict[str, Any]]:
        """The entries not read yet, every page of them."""
        query = self.filter
        if self.last_timestamp is not None:
            query += f' AND timestamp>="{self.last_timestamp}"'
        body: dict[str, Any] = {
            "resourceNames": [f"projects/{self.project}"],
            "filter": query,
            "orderBy": "timestamp asc",
            "pageSize": self.page_size,
        }
        while True:
            page = self.api.call("POST", "/v2/entries:list", json=body)
            for entry in page.get("entries") or ():
                if self._new(entry):
                    yield entry
            token = page.get("nextPageToken")
            if not token:
                return
            body = {**body, "pageToken": token}

    def _new(self, entry: Mapping[str, Any]) -> bool:
        stamp = str(entry.get("timestamp") or "")
        key = str(entry.get("insertId") or json.dumps(entry, sort_keys=True))
        if stamp == self.last_timestamp:
            if key in self._seen_at_last:
                return False
            self._seen_at_last.add(key)
            return True
        if stamp:
            self.last_timestamp = stamp
            self._seen_at_last = {key}
        return True

    def tail(self, lines: int) -> list[str]:
        """The last ``lines`` lines there are now (read newest first, pages until enough)."""
        body: dict[str, Any] = {
            "resourceNames": [f"projects/{self.project}"],
            "filter": self.filter,
            "orderBy": "timestamp desc",
            "pageSize": lines,
        }
        newest_first: list[str] = []
        while len(newest_first) < lines:
            page = self.api.call("POST", "/v2/entries:list", json=body)
            for entry in page.get("entries") or ():
                newest_first += reversed(entry_lines(entry))
            token = page.get("nextPageToken")
            if not token:
                break
            body = {**body, "pageToken": token}
        return list(reversed(newest_first[:lines]))
