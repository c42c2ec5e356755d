"""The ``gcpserving`` deployer: the image serves predictions on a Vertex AI Endpoint.

``deploy()`` uploads a Model whose serving container is the image (its ports, predict and
health routes), creates an Endpoint (or reuses one, by id or display name), and deploys the
model to it on dedicated machines with all of the endpoint's traffic. Each step is a
long-running operation, polled with a growing interval until it is done; one that ends in
error raises :class:`VertexJobFailedError` with that error. By default ``deploy()`` returns
once the model serves; the :class:`GcpServingRun` it returns has the predict URL (``url``),
``status``, ``wait``, ``logs``, ``predict`` and ``delete`` (undeploy, then delete what this
deploy created). The server stays up until then, as the Kubernetes ``serving`` deployer's.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ocibuild import DeployError
from ocibuild.pipeline import DeployStatus, DryRun, PodSpec, PodSpecMutator

from ._auth import GoogleCredentials
from ._errors import GoogleApiError, VertexJobFailedError
from ._vertex import (
    DEFAULT_LOGGING_ENDPOINT,
    Backoff,
    Cleanup,
    LogReader,
    VertexContainer,
    VertexDeployer,
    VertexTarget,
    check_count,
    display_name_for,
    entry_lines,
    mutated,
    resource_id,
    vertex_container,
    wait_operation,
)

if TYPE_CHECKING:
    from ocibuild.preprocessors import BuildContext

    from ._api import GoogleApi

__all__ = ["GcpServing", "GcpServingRun"]

_log = logging.getLogger("ocibuild.deployers.gcpserving")

KIND = "Endpoint"
_DELETE_SECONDS = 600.0
# An endpoint given by id (Vertex AI's are numbers) or by resource name; else a display name.
_ENDPOINT_ID = re.compile(r"^(?:[0-9]+|projects/[^/]+/locations/[^/]+/endpoints/[^/]+)$")
_Error = TypeVar("_Error", bound=Exception)


class GcpServing(VertexDeployer):
    """Serves the image from a Vertex AI Endpoint: a Model with the image as its container,
    deployed on ``min_replica_count`` to ``max_replica_count`` machines.

    ``project``/``region`` default to the environment's, as for ``gcpjob``; so do
    ``machine_type``, ``accelerator_type``/``accelerator_count``, ``service_account`` (the
    identity the server runs as), ``labels``, ``api_endpoint``, ``logging_endpoint`` and
    ``poll_interval``. ``endpoint``: an existing endpoint's id or display name to deploy to
    (a display name that matches none makes a new endpoint of that name); the new model then
    takes all of its traffic. ``ports``: the port(s) the server listens on (Vertex sends
    requests to the first), ``predict_route``/``health_route`` its HTTP paths,
    ``artifact_uri`` a ``gs://`` directory Vertex copies in (``AIP_STORAGE_URI``).
    ``timeout``: how long ``deploy()`` waits in all. ``wait=False`` returns once the model is
    being deployed; ``stream_log`` prints the server's log read once it serves. ``cleanup``:
    False (the default) leaves the server up; True deletes it once it served (a smoke
    test), ``"always"`` also when the deploy failed. ``dry_run`` returns the request bodies.
    ``pod_spec_mutators``, ``credentials`` and ``log_stream`` as for ``gcpjob``.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        region: str | None = None,
        display_name: str | None = None,
        machine_type: str = "n1-standard-4",
        accelerator_type: str | None = None,
        accelerator_count: int | None = None,
        min_replica_count: int = 1,
        max_replica_count: int | None = None,
        endpoint: str | None = None,
        ports: int | Sequence[int] = 8080,
        predict_route: str = "/predict",
        health_route: str = "/health",
        artifact_uri: str | None = None,
        service_account: str | None = None,
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        api_endpoint: str | None = None,
        logging_endpoint: str = DEFAULT_LOGGING_ENDPOINT,
        poll_interval: float = 5.0,
        wait: bool = True,
        stream_log: bool = True,
        dry_run: bool = False,
        cleanup: Cleanup = False,
        pod_spec_mutators: Sequence[PodSpecMutator] | None = None,
        credentials: GoogleCredentials | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        self.min_replica_count = check_count("min_replica_count", min_replica_count, 1)
        if max_replica_count is None:
            max_replica_count = min_replica_count
        check_count("max_replica_count", max_replica_count, min_replica_count)
        self.max_replica_count = max_replica_count
        self.ports = _checked_ports(ports)
        for option, route in (("predict_route", predict_route), ("health_route", health_route)):
            if not route.startswith("/"):
                raise DeployError(f"{option}={route!r}: an HTTP path starts with /")
        if artifact_uri is not None and not artifact_uri.startswith("gs://"):
            raise DeployError(f"artifact_uri={artifact_uri!r}: a Cloud Storage URL, gs://...")
        self.endpoint = endpoint
        self.predict_route = predict_route
        self.health_route = health_route
        self.artifact_uri = artifact_uri
        super().__init__(
            "gcpserving",
            project=project,
            region=region,
            display_name=display_name,
            machine_type=machine_type,
            accelerator_type=accelerator_type,
            accelerator_count=accelerator_count,
            service_account=service_account,
            labels=labels,
            timeout=timeout,
            api_endpoint=api_endpoint,
            logging_endpoint=logging_endpoint,
            poll_interval=poll_interval,
            wait=wait,
            stream_log=stream_log,
            dry_run=dry_run,
            cleanup=cleanup,
            pod_spec_mutators=pod_spec_mutators,
            credentials=credentials,
            log_stream=log_stream,
        )

    # -- the requests --------------------------------------------------------------------------

    def upload_body(self, container: VertexContainer, display_name: str) -> dict[str, Any]:
        """``models.upload``'s body: a Model whose serving container is ``container``."""
        spec = {
            **container.spec(),
            "ports": [{"containerPort": port} for port in self.ports],
            "predictRoute": self.predict_route,
            "healthRoute": self.health_route,
        }
        model: dict[str, Any] = {
            "displayName": display_name,
            "labels": dict(self.labels),
            "containerSpec": spec,
        }
        if self.artifact_uri:
            model["artifactUri"] = self.artifact_uri
        return {"model": model}

    def endpoint_body(self, display_name: str) -> dict[str, Any]:
        """``endpoints.create``'s body."""
        return {"displayName": display_name, "labels": dict(self.labels)}

    def deploy_body(
        self, container: VertexContainer, model: str, display_name: str
    ) -> dict[str, Any]:
        """``endpoints.deployModel``'s body: ``model`` on dedicated machines, all traffic."""
        machine: dict[str, Any] = {"machineType": self.machine_type}
        gpus = self.accelerator_count or container.gpus
        if self.accelerator_type:
            machine["acceleratorType"] = self.accelerator_type
            machine["acceleratorCount"] = gpus or 1
        elif gpus:
            raise DeployError(
                f"gcpserving: {gpus} GPU(s) asked for, and Vertex AI needs their kind: give "
                "accelerator_type= (NVIDIA_TESLA_T4, NVIDIA_L4, ...)"
            )
        deployed: dict[str, Any] = {
            "model": model,
            "displayName": display_name,
            "dedicatedResources": {
                "machineSpec": machine,
                "minReplicaCount": self.min_replica_count,
                "maxReplicaCount": self.max_replica_count,
            },
        }
        if self.service_account:
            deployed["serviceAccount"] = self.service_account
        # "0" is the model being deployed by this request.
        return {"deployedModel": deployed, "trafficSplit": {"0": 100}}

    # -- deploy --------------------------------------------------------------------------------

    def deploy(
        self, pod_spec: PodSpec, context: BuildContext | None = None
    ) -> GcpServingRun | DryRun:
        """Upload the model, create or find the endpoint, deploy the model to it; unless
        ``wait=False``, until it serves."""
        spec = mutated(pod_spec, self.pod_spec_mutators)
        container = vertex_container(spec, "gcpserving", _log)
        name = display_name_for(self.display_name, container.image, "ocibuild-serving")
        upload = self.upload_body(container, name)
        reused = self._reused_endpoint()
        endpoint_body = None if reused else self.endpoint_body(self.endpoint or name)
        # Made (and checked) before anything is sent; the uploaded model's name goes in later.
        deploy = self.deploy_body(container, f"{self.target.parent}/models/MODEL_ID", name)
        manifests = [b for b in (upload, endpoint_body, deploy) if b is not None]
        if self.dry_run:
            if reused is None and self.endpoint is not None:
                _log.info("gcpserving: an endpoint named %r is used if there is one", self.endpoint)
            url = predict_url(self.target, reused) if reused else None
            return DryRun(manifests, name, container.image, KIND, url=url)
        api, logging_api = self.target.apis()
        run = GcpServingRun(self, api, logging_api, container.image, manifests)
        try:
            self._steps(run, upload, endpoint_body, deploy)
        except (DeployError, GoogleApiError) as err:
            raise self._failed(run, err) from None
        if self.wait and self.stream_log:
            self._show_log(run)
        if self.wait and self.cleanup:
            run.delete()
        return run

    def _show_log(self, run: GcpServingRun) -> None:
        """What the server has written so far (its start), if Cloud Logging lets it be read."""
        out = self.log_stream or sys.stdout
        try:
            for line in run.logs():
                out.write(f"{line}\n")
        except GoogleApiError as err:
            _log.warning("%s: its log cannot be read (%s)", run.name, err)
        out.flush()

    def _steps(
        self,
        run: GcpServingRun,
        upload: dict[str, Any],
        endpoint_body: dict[str, Any] | None,
        deploy: dict[str, Any],
    ) -> None:
        backoff = Backoff(self.poll_interval, self.timeout)
        # The endpoint is looked for first: a wrong one is said before anything is made.
        reused = self._reused_endpoint()
        if reused is not None:
            run.reuse_endpoint(reused)
        elif self.endpoint is not None:
            run.find_endpoint(self.endpoint)
        if run.endpoint is not None and endpoint_body in run.manifests:
            run.manifests.remove(endpoint_body)  # not sent
        run.upload(upload, backoff)
        if run.endpoint is None:
            assert endpoint_body is not None
            run.create_endpoint(endpoint_body, backoff)
        deploy["deployedModel"]["model"] = run.model
        run.start_deploy(deploy)
        if self.wait:
            run.finish_deploy(backoff)

    def _reused_endpoint(self) -> str | None:
        """The resource name of the endpoint ``endpoint`` names by id (None: by name)."""
        if self.endpoint is None or _ENDPOINT_ID.match(self.endpoint) is None:
            return None
        if self.endpoint.startswith("projects/"):
            return self.endpoint
        return f"{self.target.parent}/endpoints/{self.endpoint}"

    def _failed(self, run: GcpServingRun, err: _Error) -> _Error:
        """``err`` saying what the failed deploy left (or that it was deleted)."""
        left = run.made()
        if not left:
            return err
        things = ", ".join(what for what, _ in left)
        if self.cleanup == "always":
            run.delete()
            note = f"; {things} deleted (cleanup='always')"
        else:
            where = f"--region {self.target.region} --project {self.target.project}"
            commands = "; ".join(f"{command} {where}" for _, command in left)
            note = f"; kept: {things} (to remove: {commands})"
        first, _, rest = str(err).partition("\n")
        new = type(err).__new__(type(err))
        new.__dict__.update(err.__dict__)
        new.args = (first + note + (f"\n{rest}" if rest else ""),)
        return new


def predict_url(target: VertexTarget, endpoint: str) -> str:
    """Where an endpoint answers predictions."""
    return f"{target.base_url}/v1/{endpoint}:predict"


def _checked_ports(ports: int | Sequence[int]) -> list[int]:
    listed = [ports] if isinstance(ports, int) else list(ports)
    if not listed:
        raise DeployError("ports=[]: give the port the server listens on")
    for port in listed:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise DeployError(f"ports={ports!r}: a port is a whole number, 1 to 65535")
    return listed


class GcpServingRun:
    """A model ``deploy`` put on an endpoint: ``name`` (the endpoint's resource name),
    ``url`` (its predict URL), ``model``, ``deployed_model_id``, ``console_url``."""

    kind = KIND
    namespace: str | None = None

    def __init__(
        self,
        deployer: GcpServing,
        api: GoogleApi,
        logging_api: GoogleApi,
        image: str,
        manifests: list[dict[str, Any]],
    ) -> None:
        self.deployer = deployer
        self.api = api
        self.logging_api = logging_api
        self.target = deployer.target
        self.image = image
        self.manifests = manifests
        self.model: str | None = None
        self.endpoint: str | None = None
        self.endpoint_created = False
        self.deployed_model_id: str | None = None
        self.deploy_operation: dict[str, Any] | None = None
        self.deploy_error: str | None = None
        self.traffic_before: dict[str, int] = {}  # a reused endpoint's split
        self.deleted = False

    def __repr__(self) -> str:
        return f"<GcpServingRun {self.endpoint or 'no endpoint yet'}>"

    @property
    def name(self) -> str | None:
        """The endpoint's resource name."""
        return self.endpoint

    @property
    def url(self) -> str | None:
        """The endpoint's predict URL (POST ``{"instances": [...]}``)."""
        return predict_url(self.target, self.endpoint) if self.endpoint else None

    @property
    def console_url(self) -> str | None:
        """The endpoint's page in the Cloud Console."""
        if self.endpoint is None:
            return None
        where = f"online-prediction/locations/{self.target.region}/endpoints"
        return self.target.console(f"{where}/{resource_id(self.endpoint)}")

    @property
    def log_filter(self) -> str:
        """The Cloud Logging filter of the server's entries."""
        endpoint_id = resource_id(self.endpoint or "")
        return (
            'resource.type="aiplatform.googleapis.com/Endpoint" AND '
            f'resource.labels.endpoint_id="{endpoint_id}"'
        )

    # -- the deploy's steps ----------------------------------------------------------------

    def upload(self, body: Mapping[str, Any], backoff: Backoff) -> None:
        """Upload the model and wait until it is there."""
        parent = self.target.parent
        operation = self.api.call("POST", f"/v1/{parent}/models:upload", json=body)
        backoff.reset()
        response = wait_operation(self.api, operation, "uploading the model", backoff)
        self.model = str(response["model"])
        _log.info("uploaded model %s running %s", self.model, self.image)

    def reuse_endpoint(self, endpoint: str) -> None:
        """Deploy to the existing ``endpoint``."""
        try:
            found = self.api.call("GET", f"/v1/{endpoint}")
        except GoogleApiError as err:
            if err.status == 404:
                raise DeployError(
                    f"gcpserving: there is no endpoint {endpoint}: give the id of one in "
                    f"{self.target.parent}, or a display name"
                ) from None
            raise
        self._use(found)

    def find_endpoint(self, display_name: str) -> None:
        """Deploy to the endpoint displayed as ``display_name``, if there is one."""
        listed = self.api.call(
            "GET",
            f"/v1/{self.target.parent}/endpoints",
            params={"filter": f'display_name="{display_name}"'},
        )
        found = listed.get("endpoints") or []
        if len(found) > 1:
            names = ", ".join(resource_id(str(e["name"])) for e in found)
            raise DeployError(
                f"gcpserving: {len(found)} endpoints are named {display_name!r} ({names}): "
                "give endpoint= the id of one"
            )
        if found:
            self._use(found[0])

    def create_endpoint(self, body: Mapping[str, Any], backoff: Backoff) -> None:
        """Make a new endpoint and wait until it is there."""
        operation = self.api.call("POST", f"/v1/{self.target.parent}/endpoints", json=body)
        backoff.reset()
        created = wait_operation(self.api, operation, "creating the endpoint", backoff)
        self.endpoint = str(created["name"])
        self.endpoint_created = True
        _log.info("created %s %s: %s", KIND, self.endpoint, self.console_url)

    def _use(self, endpoint: Mapping[str, Any]) -> None:
        self.endpoint = str(endpoint["name"])
        self.traffic_before = {
            str(k): int(v) for k, v in (endpoint.get("trafficSplit") or {}).items()
        }
        _log.info("deploying to the existing %s %s", KIND, self.endpoint)

    def start_deploy(self, body: Mapping[str, Any]) -> None:
        """Ask for the model to be deployed (it takes minutes on Vertex AI)."""
        self.deploy_operation = self.api.call("POST", f"/v1/{self.endpoint}:deployModel", json=body)
        _log.info("deploying model %s to %s %s", self.model, KIND, self.endpoint)

    def finish_deploy(self, backoff: Backoff) -> None:
        """Wait until the model is deployed."""
        if self.deployed_model_id is not None or self.deploy_operation is None:
            return
        backoff.reset()
        what = f"deploying model {self.model} to {KIND} {self.endpoint}"
        try:
            response = wait_operation(self.api, self.deploy_operation, what, backoff)
        except VertexJobFailedError as err:
            self.deploy_operation = None  # nothing is deployed
            self.deploy_error = str(err)
            raise
        self.deployed_model_id = str(response["deployedModel"]["id"])
        self.deploy_operation = None
        _log.info("serving at %s", self.url)

    def made(self) -> list[tuple[str, str]]:
        """What this deploy created and has not deleted yet: each thing in words, and the
        gcloud command that removes it."""
        endpoint_id = resource_id(self.endpoint or "")
        out: list[tuple[str, str]] = []
        if self.deployed_model_id is not None or self.deploy_operation is not None:
            deployed = self.deployed_model_id or "ID"
            out.append(
                (
                    f"the model deployed on {self.endpoint}",
                    f"gcloud ai endpoints undeploy-model {endpoint_id} "
                    f"--deployed-model-id {deployed}",
                )
            )
        if self.endpoint_created:
            out.append((f"endpoint {self.endpoint}", f"gcloud ai endpoints delete {endpoint_id}"))
        if self.model is not None:
            model_id = resource_id(self.model)
            out.append((f"model {self.model}", f"gcloud ai models delete {model_id}"))
        return out

    # -- the handle ------------------------------------------------------------------------

    def status(self) -> DeployStatus:
        """``pending`` while the model is being deployed, ``running`` once the endpoint
        serves it, ``failed`` if its deployment failed; asked now."""
        if self.deleted:
            return DeployStatus("unknown", "deleted")
        if self.deployed_model_id is None:
            if self.deploy_operation is None:
                return DeployStatus("failed", self.deploy_error or "the model was not deployed")
            operation = self.api.call("GET", f"/v1/{self.deploy_operation['name']}")
            if not operation.get("done"):
                return DeployStatus("pending", f"deploying model {self.model}")
            try:
                self.finish_deploy(Backoff(self.deployer.poll_interval))
            except VertexJobFailedError as err:
                return DeployStatus("failed", str(err))
        try:
            endpoint = self.api.call("GET", f"/v1/{self.endpoint}")
        except GoogleApiError as err:
            if err.status == 404:
                return DeployStatus("unknown", f"{KIND} {self.endpoint} is gone")
            raise
        deployed = {str(d.get("id")) for d in endpoint.get("deployedModels") or ()}
        if self.deployed_model_id not in deployed:
            return DeployStatus("unknown", f"the model is no longer on {KIND} {self.endpoint}")
        traffic = (endpoint.get("trafficSplit") or {}).get(self.deployed_model_id, 0)
        return DeployStatus(
            "running", f"serving: deployed model {self.deployed_model_id}, {traffic}% of traffic"
        )

    def wait(self, timeout: float | None = None) -> DeployStatus:
        """Block until the model serves; its status. A deployment that failed raises
        :class:`VertexJobFailedError`, one still going after ``timeout`` seconds
        :class:`DeployTimeoutError`."""
        self.finish_deploy(Backoff(self.deployer.poll_interval, timeout))
        return self.status()

    def logs(self, follow: bool = False) -> Iterator[str]:
        """The server's Cloud Logging lines, oldest first; ``follow`` reads on until the
        endpoint is deleted."""
        if self.endpoint is None:
            return
        reader = LogReader(self.logging_api, self.target.project, self.log_filter)
        backoff = Backoff(self.deployer.poll_interval)
        while True:
            moved = False
            for entry in reader.entries():
                for line in entry_lines(entry):
                    moved = True
                    yield line
            if not follow or self.deleted:
                return
            if moved:
                backoff.reset()
            backoff.sleep()

    def predict(
        self, instances: Sequence[Any], parameters: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The endpoint's answer to ``{"instances": [...], "parameters": {...}}``."""
        if self.endpoint is None:
            raise DeployError("gcpserving: there is no endpoint to ask")
        body: dict[str, Any] = {"instances": list(instances)}
        if parameters is not None:
            body["parameters"] = dict(parameters)
        return self.api.call("POST", f"/v1/{self.endpoint}:predict", json=body)

    def delete(self) -> None:
        """Undeploy the model, then delete the endpoint (if this deploy created it) and the
        model; deleting twice is not an error."""
        if self.deleted:
            return
        backoff = Backoff(self.deployer.poll_interval, _DELETE_SECONDS)
        if self.deploy_operation is not None:
            # A model being deployed cannot be undeployed yet; one that failed is not there.
            with contextlib.suppress(VertexJobFailedError):
                self.finish_deploy(backoff)
        if self.deployed_model_id is not None:
            self._undeploy(backoff)
        if self.endpoint_created and self.endpoint is not None:
            self._delete(self.endpoint, backoff)
            self.endpoint_created = False
        if self.model is not None:
            self._delete(self.model, backoff)
        self.deleted = True
        _log.info("deleted the deployment of %s", self.image)

    def _undeploy(self, backoff: Backoff) -> None:
        assert self.deployed_model_id is not None
        body: dict[str, Any] = {"deployedModelId": self.deployed_model_id}
        try:
            endpoint = self.api.call("GET", f"/v1/{self.endpoint}")
        except GoogleApiError as err:
            if err.status != 404:
                raise
            self.deployed_model_id = None
            return
        others = [
            str(d.get("id"))
            for d in endpoint.get("deployedModels") or ()
            if str(d.get("id")) != self.deployed_model_id
        ]
        if others:
            # The model holds the traffic this deploy gave it: hand it back to the others.
            split = {k: v for k, v in self.traffic_before.items() if k in others}
            if sum(split.values()) != 100:
                split = {others[0]: 100}
            body["trafficSplit"] = split
        operation = self.api.call("POST", f"/v1/{self.endpoint}:undeployModel", json=body)
        backoff.reset()
        wait_operation(self.api, operation, f"undeploying the model from {self.endpoint}", backoff)
        self.deployed_model_id = None

    def _delete(self, name: str, backoff: Backoff) -> None:
        try:
            operation = self.api.call("DELETE", f"/v1/{name}")
        except GoogleApiError as err:
            if err.status == 404:
                return
            raise
        backoff.reset()
        wait_operation(self.api, operation, f"deleting {name}", backoff)
