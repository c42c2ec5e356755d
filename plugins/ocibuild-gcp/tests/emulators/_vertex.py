"""Vertex AI (REST v1) and Cloud Logging's ``entries:list``, played on loopback.

One :class:`VertexEmulator` serves both APIs on one port (``api_endpoint`` and
``logging_endpoint`` of the deployers are its ``url``). Every request must carry a bearer
token the token emulator issued; every body is checked against the documented shape (an
unknown field, at any depth, is ``400 INVALID_ARGUMENT`` as Google's JSON APIs answer it; so
is a missing required field). A CustomJob walks QUEUED, PENDING, RUNNING (one log line per
read), then SUCCEEDED, or FAILED when its label ``emulator-outcome`` (or
:attr:`VertexEmulator.job_outcome`) says ``failed``; ``running`` keeps it running. Long-running
operations are done after :attr:`VertexEmulator.operation_polls` reads. Log pages hold
:attr:`VertexEmulator.log_page_size` entries at most. :meth:`VertexEmulator.fail` and
:meth:`VertexEmulator.expire_token` inject the failures a client must retry or surface.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.emulators._server import Drop, Emulator, Handler, Reply, Request, error_reply
from tests.emulators._vertex_shapes import (
    ACCELERATORS,
    CUSTOM_JOB,
    DEPLOY,
    ENDPOINT,
    ENTRIES_LIST,
    PREDICT,
    UNDEPLOY,
    UPLOAD,
    BadRequest,
    check_labels,
    check_shape,
    required,
)

__all__ = ["LOCATION", "Fault", "VertexEmulator"]

LOCATION = "us-central1"
_OUTCOME_LABEL = "emulator-outcome"
_T = "type.googleapis.com/google.cloud.aiplatform.v1."
_P = r"/v1/projects/([^/]+)/locations/([^/]+)"


@dataclass
class Fault:
    """An injected failure: the next ``times`` requests that match answer ``status``."""

    status: int
    reason: str
    method: str | None
    path: str | None
    times: int
    retry_after: str | None
    drop: bool = False

    def matches(self, request: Request) -> bool:
        return (self.method is None or self.method == request.method) and (
            self.path is None or re.search(self.path, request.path) is not None
        )


@dataclass
class Operation:
    """A long-running operation: done after ``polls`` reads, then ``finish`` gives the
    response (or raises :class:`BadRequest` for its error)."""

    name: str
    polls: int
    finish: Callable[[], dict[str, Any]]
    kind: str
    done: bool = False
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "metadata": {"@type": _T + self.kind, "genericMetadata": {}},
            "done": self.done,
        }
        if self.error is not None:
            out["error"] = self.error
        elif self.done:
            out["response"] = self.response
        return out


class VertexEmulator(Emulator):
    """Vertex AI and Cloud Logging; ``token_valid`` says which bearer tokens are good.

    What a test may set: ``operation_polls`` (reads before an operation is done),
    ``log_page_size`` (entries per page at most), ``job_outcome`` (``succeeded``, ``failed``
    or ``running``; a job's label ``emulator-outcome`` overrides it), ``serving_outcome``
    (``succeeded`` or ``failed``: how deployModel ends; the model's label overrides it),
    ``job_log`` and ``server_log`` (the lines a job or a server writes), ``job_error``,
    ``log_delay`` (how many reads of the log an entry stays unseen, as Cloud Logging shows an
    entry seconds after it was written).
    """

    def __init__(
        self, token_valid: Callable[[str], bool], *, project: str = "test-project"
    ) -> None:
        super().__init__("Vertex AI")
        self.token_valid = token_valid
        self.project = project
        self.operation_polls = 2
        self.log_page_size = 2
        self.job_outcome = "succeeded"
        self.serving_outcome = "succeeded"
        self.job_log = ["loading data", "epoch 1", "done"]
        self.server_log = ["listening on port 8080"]
        self.job_error = "The replica workerpool0-0 exited with a non-zero status of 1."
        self.lock = threading.RLock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, Operation] = {}
        self.entries: list[dict[str, Any]] = []
        self.log_delay = 0  # entries:list calls an entry stays unseen (ingestion lag)
        self._unseen: list[tuple[int, dict[str, Any]]] = []
        self.faults: list[Fault] = []
        self.revoked: set[str] = set()
        self._expire_next = False
        self._ids = iter(range(1000, 10**9))
        self._clock = iter(range(1, 10**9))
        self._job_steps: dict[str, Iterator[str | None]] = {}
        self._routes_for_vertex()

    # -- what a test tells it --------------------------------------------------------------

    @property
    def options(self) -> dict[str, Any]:
        """The deployer options that point a deployer here, polling fast."""
        return {"api_endpoint": self.url, "logging_endpoint": self.url, "poll_interval": 0.01}

    @property
    def cli_options(self) -> list[str]:
        """The same, as ``--deployer-option`` arguments of the command line."""
        out: list[str] = []
        for key, value in self.options.items():
            out += ["--deployer-option", f"{key}={value}"]
        return out

    def fail(
        self,
        status: int,
        reason: str = "",
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        retry_after: str | None = "0",
        drop: bool = False,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and the ``path`` regex
        (searched) with Google's error ``status``; ``drop`` cuts the connection instead."""
        self.faults.append(Fault(status, reason, method, path, times, retry_after, drop))

    def expire_token(self) -> None:
        """The token of the next request is refused from then on (401), as an access token
        that expired early: the client must fetch another one."""
        self._expire_next = True

    def job(self, job_id: str) -> dict[str, Any]:
        """A job as the API shows it."""
        return self.jobs[job_id]

    # -- routing ---------------------------------------------------------------------------

    def api(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """A route whose handler runs after the faults and the token are checked."""

        def add(handler: Handler) -> Handler:
            def guarded(request: Request) -> Reply:
                with self.lock:
                    early = self._before(request)
                    if early is not None:
                        return early
                    try:
                        return handler(request)
                    except BadRequest as err:
                        return error_reply(err.status, err.reason, str(err))

            self.route(method, pattern)(guarded)
            return handler

        return add

    def _before(self, request: Request) -> Reply | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(request):
                fault.times -= 1
                if fault.drop:
                    raise Drop
                reply = error_reply(fault.status, fault.reason, "injected by the emulator")
                if fault.retry_after is not None:
                    reply.headers["Retry-After"] = fault.retry_after
                return reply
        token = request.bearer
        if token is not None and self._expire_next:
            self._expire_next = False
            self.revoked.add(token)
        if token is None or token in self.revoked or not self.token_valid(token):
            return error_reply(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        return None

    def _body(self, request: Request, shape: Any) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            raise BadRequest("Invalid JSON payload received.") from None
        if body is None:
            body = {}
        check_shape(body, shape, "")
        return dict(body)

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _timestamp(self) -> str:
        """A later time at each call (microseconds apart), as Cloud Logging spells it."""
        micros = next(self._clock)
        seconds, fraction = divmod(micros, 1_000_000)
        minutes, seconds = divmod(seconds, 60)
        return f"2026-01-01T00:{minutes:02d}:{seconds:02d}.{fraction:06d}000Z"

    def _operation(
        self, parent: str, kind: str, finish: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        name = f"{parent}/operations/{self._next_id()}"
        op = Operation(name, self.operation_polls, finish, kind)
        self.operations[name] = op
        return op.json()

    def _routes_for_vertex(self) -> None:
        jobs = _P + r"/customJobs"
        self.api("POST", jobs)(self._create_job)
        self.api("GET", jobs + r"/([^/:]+)")(self._get_job)
        self.api("POST", jobs + r"/([^/:]+):cancel")(self._cancel_job)
        self.api("DELETE", jobs + r"/([^/:]+)")(self._delete_job)
        self.api("GET", r"/v1/(projects/.+/operations/[^/:]+)")(self._get_operation)
        self.api("POST", _P + r"/models:upload")(self._upload_model)
        self.api("GET", _P + r"/models/([^/:]+)")(self._get_model)
        self.api("DELETE", _P + r"/models/([^/:]+)")(self._delete_model)
        endpoints = _P + r"/endpoints"
        self.api("POST", endpoints)(self._create_endpoint)
        self.api("GET", endpoints)(self._list_endpoints)
        self.api("GET", endpoints + r"/([^/:]+)")(self._get_endpoint)
        self.api("DELETE", endpoints + r"/([^/:]+)")(self._delete_endpoint)
        self.api("POST", endpoints + r"/([^/:]+):deployModel")(self._deploy_model)
        self.api("POST", endpoints + r"/([^/:]+):undeployModel")(self._undeploy_model)
        self.api("POST", endpoints + r"/([^/:]+):predict")(self._predict)
        self.api("POST", r"/v2/entries:list")(self._list_entries)

    # -- operations ------------------------------------------------------------------------

    def _get_operation(self, request: Request) -> Reply:
        op = self.operations.get(request.groups[0])
        if op is None:
            raise BadRequest(f"Operation {request.groups[0]} not found", 404, "NOT_FOUND")
        if not op.done:
            op.polls -= 1
            if op.polls <= 0:
                op.done = True
                try:
                    op.response = op.finish()
                except BadRequest as err:
                    op.error = {"code": 9, "message": str(err)}
        return Reply(200, op.json())

    # -- custom jobs -----------------------------------------------------------------------

    def _create_job(self, request: Request) -> Reply:
        project, location = request.groups
        body = self._body(request, CUSTOM_JOB)
        required(body, "displayName", "jobSpec.workerPoolSpecs")
        check_labels(body.get("labels") or {})
        pools = body["jobSpec"]["workerPoolSpecs"]
        for i, pool in enumerate(pools):
            if not pool:
                continue  # an empty pool keeps the indexes of the next ones
            required(pool, "machineSpec.machineType", "replicaCount", "containerSpec.imageUri")
            machine = pool["machineSpec"]
            accelerator = machine.get("acceleratorType")
            if accelerator is not None and accelerator not in ACCELERATORS:
                raise BadRequest(
                    f"Invalid value at 'custom_job.job_spec.worker_pool_specs[{i}].machine_spec."
                    f"accelerator_type' (type.googleapis.com/google.cloud.aiplatform.v1."
                    f'AcceleratorType), "{accelerator}"'
                )
            if machine.get("acceleratorCount") and accelerator is None:
                raise BadRequest("acceleratorCount needs an acceleratorType")
        if int(pools[0].get("replicaCount", 0)) != 1:
            raise BadRequest("The first worker pool must have a replica count of 1.")
        timeout = (body["jobSpec"].get("scheduling") or {}).get("timeout")
        if timeout is not None and not re.fullmatch(r"\d+(\.\d+)?s", timeout):
            raise BadRequest(f"Invalid value at 'scheduling.timeout' (Duration), {timeout!r}")
        output = (body["jobSpec"].get("baseOutputDirectory") or {}).get("outputUriPrefix")
        if output is not None and not output.startswith("gs://"):
            raise BadRequest("baseOutputDirectory.outputUriPrefix must be a gs:// URI")
        job_id = self._next_id()
        now = self._timestamp()
        job = {
            **body,
            "name": f"projects/{project}/locations/{location}/customJobs/{job_id}",
            "state": "JOB_STATE_QUEUED",
            "createTime": now,
            "updateTime": now,
        }
        self.jobs[job_id] = job
        outcome = (body.get("labels") or {}).get(_OUTCOME_LABEL, self.job_outcome)
        self._job_steps[job_id] = self._walk(job_id, outcome)
        return Reply(200, job)

    def _walk(self, job_id: str, outcome: str) -> Iterator[str | None]:
        """The states a job takes, one per read; a log line is written on each RUNNING read."""
        yield "JOB_STATE_PENDING"
        yield "JOB_STATE_RUNNING"
        for line in self.job_log:
            self._job_line(job_id, line)
            yield None
        if outcome == "running":
            while True:
                yield None
        yield "JOB_STATE_FAILED" if outcome == "failed" else "JOB_STATE_SUCCEEDED"
        while True:
            yield None

    def _job_line(self, job_id: str, line: str) -> None:
        job = self.jobs[job_id]
        pools = job["jobSpec"]["workerPoolSpecs"]
        stamp = self._timestamp()  # the tasks' lines share it: the reader must keep both
        for index, pool in enumerate(pools):
            for replica in range(int(pool.get("replicaCount") or 0)):
                task = f"workerpool{index}-{replica}"
                self._write(
                    {
                        "insertId": f"{job_id}-{self._written}",
                        "logName": f"projects/{self.project}/logs/workerpool0-0",
                        "resource": {
                            "type": "ml_job",
                            "labels": {
                                "job_id": job_id,
                                "project_id": self.project,
                                "task_name": task,
                            },
                        },
                        "timestamp": stamp,
                        "severity": "INFO",
                        "textPayload": line,
                    }
                )

    @property
    def _written(self) -> int:
        return len(self.entries) + len(self._unseen)

    def _write(self, entry: dict[str, Any]) -> None:
        """Log ``entry``: seen at once, or after ``log_delay`` reads of the log."""
        if self.log_delay:
            self._unseen.append((self.log_delay, entry))
        else:
            self.entries.append(entry)

    def _known_job(self, request: Request) -> dict[str, Any]:
        job = self.jobs.get(request.groups[2])
        if job is None:
            raise BadRequest(f"CustomJob {request.groups[2]} not found", 404, "NOT_FOUND")
        return job

    def _get_job(self, request: Request) -> Reply:
        job = self._known_job(request)
        job_id = request.groups[2]
        if job["state"] == "JOB_STATE_CANCELLING":
            self._set_state(job, "JOB_STATE_CANCELLED")
            job["error"] = {"code": 1, "message": "CANCELED"}
        elif job["state"] not in ("JOB_STATE_CANCELLED",):
            state = next(self._job_steps[job_id])
            if state is not None:
                self._set_state(job, state)
                if state == "JOB_STATE_FAILED":
                    job["error"] = {"code": 3, "message": self.job_error}
        return Reply(200, job)

    def _set_state(self, job: dict[str, Any], state: str) -> None:
        job["state"] = state
        job["updateTime"] = self._timestamp()
        if state == "JOB_STATE_RUNNING":
            job["startTime"] = job["updateTime"]
        if state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            job["endTime"] = job["updateTime"]

    def _cancel_job(self, request: Request) -> Reply:
        job = self._known_job(request)
        self._body(request, {})
        if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            raise BadRequest(
                f"Cannot cancel job {job['name']} in state {job['state']}",
                400,
                "FAILED_PRECONDITION",
            )
        self._set_state(job, "JOB_STATE_CANCELLING")
        return Reply(200, {})

    def _delete_job(self, request: Request) -> Reply:
        job = self._known_job(request)
        if job["state"] not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            raise BadRequest(
                f"CustomJob {job['name']} is in state {job['state']}: only a job that has "
                "ended can be deleted",
                400,
                "FAILED_PRECONDITION",
            )
        job_id = request.groups[2]

        def finish() -> dict[str, Any]:
            self.jobs.pop(job_id, None)
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return Reply(200, self._operation(job["name"], "DeleteOperationMetadata", finish))

    # -- models and endpoints --------------------------------------------------------------

    def _upload_model(self, request: Request) -> Reply:
        project, location = request.groups
        body = self._body(request, UPLOAD)
        required(body, "model.displayName", "model.containerSpec.imageUri")
        model = body["model"]
        check_labels(model.get("labels") or {})
        for route in ("predictRoute", "healthRoute"):
            value = model["containerSpec"].get(route)
            if value is not None and not value.startswith("/"):
                raise BadRequest(f"containerSpec.{route} must start with /")
        model_id = self._next_id()
        name = f"projects/{project}/locations/{location}/models/{model_id}"

        def finish() -> dict[str, Any]:
            self.models[model_id] = {**model, "name": name, "versionId": "1"}
            return {"@type": _T + "UploadModelResponse", "model": name, "modelVersionId": "1"}

        parent = f"projects/{project}/locations/{location}/models/{model_id}"
        return Reply(200, self._operation(parent, "UploadModelOperationMetadata", finish))

    def _get_model(self, request: Request) -> Reply:
        model = self.models.get(request.groups[2])
        if model is None:
            raise BadRequest(f"Model {request.groups[2]} not found", 404, "NOT_FOUND")
        return Reply(200, model)

    def _delete_model(self, request: Request) -> Reply:
        model_id = request.groups[2]
        model = self.models.get(model_id)
        if model is None:
            raise BadRequest(f"Model {model_id} not found", 404, "NOT_FOUND")
        for endpoint in self.endpoints.values():
            if any(d["model"] == model["name"] for d in endpoint["deployedModels"]):
                raise BadRequest(
                    f"Model {model['name']} is deployed on {endpoint['name']}: undeploy it first",
                    400,
                    "FAILED_PRECONDITION",
                )

        def finish() -> dict[str, Any]:
            self.models.pop(model_id, None)
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return Reply(200, self._operation(model["name"], "DeleteOperationMetadata", finish))

    def _create_endpoint(self, request: Request) -> Reply:
        project, location = request.groups
        body = self._body(request, ENDPOINT)
        required(body, "displayName")
        check_labels(body.get("labels") or {})
        endpoint_id = request.param("endpointId") or self._next_id()
        name = f"projects/{project}/locations/{location}/endpoints/{endpoint_id}"

        def finish() -> dict[str, Any]:
            endpoint = {
                **body,
                "name": name,
                "deployedModels": [],
                "trafficSplit": {},
                "createTime": self._timestamp(),
            }
            self.endpoints[endpoint_id] = endpoint
            return {"@type": _T + "Endpoint", **endpoint}

        return Reply(200, self._operation(name, "CreateEndpointOperationMetadata", finish))

    def _list_endpoints(self, request: Request) -> Reply:
        query = request.param("filter") or ""
        match = re.fullmatch(r'display_name="([^"]*)"', query)
        if query and match is None:
            raise BadRequest(f"Unsupported filter: {query}")
        found = [
            e
            for e in self.endpoints.values()
            if match is None or e.get("displayName") == match.group(1)
        ]
        return Reply(200, {"endpoints": found} if found else {})

    def _known_endpoint(self, request: Request) -> dict[str, Any]:
        endpoint = self.endpoints.get(request.groups[2])
        if endpoint is None:
            raise BadRequest(f"Endpoint {request.groups[2]} not found", 404, "NOT_FOUND")
        return endpoint

    def _get_endpoint(self, request: Request) -> Reply:
        return Reply(200, self._known_endpoint(request))

    def _delete_endpoint(self, request: Request) -> Reply:
        endpoint = self._known_endpoint(request)
        if endpoint["deployedModels"]:
            raise BadRequest(
                f"Endpoint {endpoint['name']} has deployed models: undeploy them first",
                400,
                "FAILED_PRECONDITION",
            )
        endpoint_id = request.groups[2]

        def finish() -> dict[str, Any]:
            self.endpoints.pop(endpoint_id, None)
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return Reply(200, self._operation(endpoint["name"], "DeleteOperationMetadata", finish))

    def _deploy_model(self, request: Request) -> Reply:
        endpoint = self._known_endpoint(request)
        body = self._body(request, DEPLOY)
        required(body, "deployedModel.model")
        deployed = body["deployedModel"]
        model = next((m for m in self.models.values() if m["name"] == deployed["model"]), None)
        if model is None:
            raise BadRequest(f"Model {deployed['model']} does not exist", 404, "NOT_FOUND")
        resources = deployed.get("dedicatedResources")
        if resources is None and deployed.get("automaticResources") is None:
            raise BadRequest("Required field is not set: deployedModel.dedicatedResources")
        if resources is not None:
            required(resources, "machineSpec.machineType", "minReplicaCount")
            low, high = resources["minReplicaCount"], resources.get("maxReplicaCount")
            if low < 1 or (high is not None and high < low):
                raise BadRequest(f"Invalid replica counts: min {low}, max {high}")
        split = body.get("trafficSplit") or {}
        known = {"0", *(d["id"] for d in endpoint["deployedModels"])}
        if split and (sum(split.values()) != 100 or not set(split) <= known):
            raise BadRequest(f"Invalid traffic split {split}: the values must sum to 100")
        outcome = (model.get("labels") or {}).get(_OUTCOME_LABEL, self.serving_outcome)
        deployed_id = self._next_id()

        def finish() -> dict[str, Any]:
            if outcome == "failed":
                raise BadRequest(
                    "Model server never became ready. Please validate that your model file "
                    "or container configuration are valid."
                )
            model_entry = {**deployed, "id": deployed_id, "createTime": self._timestamp()}
            endpoint["deployedModels"].append(model_entry)
            if split:
                given = {(deployed_id if k == "0" else k): v for k, v in split.items()}
                endpoint["trafficSplit"] = {k: v for k, v in given.items() if v}
            elif not endpoint["trafficSplit"]:
                endpoint["trafficSplit"] = {deployed_id: 100}
            endpoint_id = endpoint["name"].rsplit("/", 1)[-1]
            for line in self.server_log:
                self._server_line(endpoint_id, deployed_id, line)
            return {"@type": _T + "DeployModelResponse", "deployedModel": model_entry}

        return Reply(200, self._operation(endpoint["name"], "DeployModelOperationMetadata", finish))

    def _server_line(self, endpoint_id: str, deployed_id: str, line: str) -> None:
        self._write(
            {
                "insertId": f"{endpoint_id}-{self._written}",
                "resource": {
                    "type": "aiplatform.googleapis.com/Endpoint",
                    "labels": {
                        "endpoint_id": endpoint_id,
                        "location": LOCATION,
                        "resource_container": self.project,
                    },
                },
                "labels": {"deployed_model_id": deployed_id},
                "timestamp": self._timestamp(),
                "jsonPayload": {"message": line},
            }
        )

    def _undeploy_model(self, request: Request) -> Reply:
        endpoint = self._known_endpoint(request)
        body = self._body(request, UNDEPLOY)
        required(body, "deployedModelId")
        target = body["deployedModelId"]
        if not any(d["id"] == target for d in endpoint["deployedModels"]):
            raise BadRequest(f"Deployed model {target} not found", 404, "NOT_FOUND")
        others = [d["id"] for d in endpoint["deployedModels"] if d["id"] != target]
        split = body.get("trafficSplit")
        if split is not None and (sum(split.values()) != 100 or not set(split) <= set(others)):
            raise BadRequest(f"Invalid traffic split {split}")
        if others and endpoint["trafficSplit"].get(target) and split is None:
            raise BadRequest(
                f"Deployed model {target} has traffic: give a traffic split without it",
                400,
                "FAILED_PRECONDITION",
            )

        def finish() -> dict[str, Any]:
            endpoint["deployedModels"] = [
                d for d in endpoint["deployedModels"] if d["id"] != target
            ]
            endpoint["trafficSplit"] = dict(split) if others and split else {}
            return {"@type": _T + "UndeployModelResponse"}

        return Reply(
            200, self._operation(endpoint["name"], "UndeployModelOperationMetadata", finish)
        )

    def _predict(self, request: Request) -> Reply:
        endpoint = self._known_endpoint(request)
        body = self._body(request, PREDICT)
        if "instances" not in body:
            raise BadRequest("Required field is not set: instances")
        if not endpoint["deployedModels"]:
            raise BadRequest(
                f"Endpoint {endpoint['name']} has no deployed model", 400, "FAILED_PRECONDITION"
            )
        split = endpoint["trafficSplit"]
        serving = max(endpoint["deployedModels"], key=lambda d: split.get(d["id"], 0))
        predictions = [{"instance": i, "label": "cat"} for i in body["instances"]]
        return Reply(
            200,
            {
                "predictions": predictions,
                "deployedModelId": serving["id"],
                "model": serving["model"],
                "modelVersionId": "1",
            },
        )

    # -- Cloud Logging ---------------------------------------------------------------------

    def _list_entries(self, request: Request) -> Reply:
        body = self._body(request, ENTRIES_LIST)
        required(body, "resourceNames")
        if any(not re.fullmatch(r"projects/[^/]+", r) for r in body["resourceNames"]):
            raise BadRequest(f"Invalid resource names: {body['resourceNames']}")
        order = body.get("orderBy", "timestamp asc")
        if order not in ("timestamp asc", "timestamp desc"):
            raise BadRequest(f"Invalid orderBy: {order}")
        query = body.get("filter", "")
        keep = _log_filter(query)
        offset = 0
        if body.get("pageToken"):
            try:
                token = json.loads(base64.urlsafe_b64decode(body["pageToken"]))
            except ValueError:
                raise BadRequest("Invalid page token") from None
            if token.get("f") != query or token.get("o") != order:
                raise BadRequest("The page token does not belong to this filter and order")
            offset = int(token["i"])
        self._unseen = [(calls - 1, entry) for calls, entry in self._unseen]
        self.entries += [entry for calls, entry in self._unseen if calls <= 0]
        self._unseen = [(calls, entry) for calls, entry in self._unseen if calls > 0]
        found = [e for e in self.entries if keep(e)]
        if order == "timestamp desc":
            found.reverse()
        size = min(body.get("pageSize") or 50, self.log_page_size)
        page = found[offset : offset + size]
        out: dict[str, Any] = {"entries": page} if page else {}
        if offset + size < len(found):
            token = {"f": query, "o": order, "i": offset + size}
            out["nextPageToken"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
        return Reply(200, out)


def _log_filter(query: str) -> Callable[[Mapping[str, Any]], bool]:
    """A Cloud Logging filter of ``FIELD="VALUE"`` and ``timestamp>=``/``>`` clauses joined
    by AND, as a predicate; any other filter is a 400."""
    equal: list[tuple[str, str]] = []
    after: list[tuple[str, str]] = []
    for clause in filter(None, (c.strip() for c in query.split(" AND "))):
        match = re.fullmatch(r'(resource\.type|resource\.labels\.\w+)="([^"]*)"', clause)
        stamp = re.fullmatch(r'timestamp(>=|>)"([^"]+)"', clause)
        if match is not None:
            equal.append((match.group(1), match.group(2)))
        elif stamp is not None:
            after.append((stamp.group(1), stamp.group(2)))
        else:
            raise BadRequest(f"Unparseable filter clause: {clause}")

    def keep(entry: Mapping[str, Any]) -> bool:
        stamp = str(entry.get("timestamp"))
        return all(_field(entry, path) == value for path, value in equal) and all(
            stamp >= value if op == ">=" else stamp > value for op, value in after
        )

    return keep


def _field(entry: Mapping[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value
