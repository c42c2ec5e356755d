"""The ``gcpjob`` deployer: the image runs as a Vertex AI CustomJob (the successor of the AI
Platform Training jobs Fairing's ``GCPJob`` made, shut down in January 2025).

``deploy()`` sends one ``customJobs.create`` (its answer is the job, not an operation), logs
the job's name, its Cloud Console page and how to read its log, then by default waits: it
polls the job with a growing interval, prints its Cloud Logging lines as they come, and
returns once the job is ``JOB_STATE_SUCCEEDED``, or raises :class:`VertexJobFailedError`
with the job's error. The :class:`GcpJobRun` it returns has ``status``, ``wait``, ``logs``
and ``delete`` (cancel, then delete) like the Kubernetes deployers' handles.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ocibuild import DeployError, DeployTimeoutError
from ocibuild.pipeline import DeployPhase, DeployStatus, DryRun, PodSpec, PodSpecMutator

from ._auth import GoogleCredentials
from ._errors import GoogleApiError, VertexJobFailedError
from ._vertex import (
    DEFAULT_LOGGING_ENDPOINT,
    Backoff,
    Cleanup,
    LogReader,
    VertexContainer,
    VertexDeployer,
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

__all__ = ["GcpJob", "GcpJobRun", "job_status"]

_log = logging.getLogger("ocibuild.deployers.gcpjob")

KIND = "CustomJob"
_PHASES: Mapping[str, DeployPhase] = {
    "JOB_STATE_QUEUED": "pending",
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_PAUSED": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_CANCELLING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "failed",
    "JOB_STATE_EXPIRED": "failed",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
}
TERMINAL = frozenset(s for s, phase in _PHASES.items() if phase in ("succeeded", "failed"))
_LOG_TAIL = 20
_LATE_READS = 3
# How long delete() waits for a cancelled job to stop, and for its deletion.
_DELETE_SECONDS = 300.0


def job_status(job: Mapping[str, Any]) -> DeployStatus:
    """The phase of a CustomJob from its ``state`` (with its ``error``, when it has one)."""
    state = str(job.get("state") or "JOB_STATE_UNSPECIFIED")
    message = state
    error = (job.get("error") or {}).get("message")
    if error:
        message += ": " + " ".join(str(error).split())
    return DeployStatus(_PHASES.get(state, "unknown"), message)


class GcpJob(VertexDeployer):
    """Runs the image as a Vertex AI CustomJob: one primary node, and ``replica_count``
    workers on the same machine (worker pool 1).

    ``project``/``region`` default to the environment's (``GOOGLE_CLOUD_PROJECT``,
    ``GOOGLE_CLOUD_REGION``, the ADC file, the gcloud configuration). ``machine_type``,
    ``accelerator_type``/``accelerator_count`` (default: the pod spec's ``nvidia.com/gpu``
    limit), ``boot_disk_type``/``boot_disk_size_gb``, ``service_account``,
    ``base_output_dir`` (``gs://...``: Vertex sets ``AIP_MODEL_DIR`` under it) and ``labels``
    go into the job. ``active_deadline_seconds``: the job's own time limit (Vertex's
    ``scheduling.timeout``). ``timeout``: how long ``deploy()`` and ``wait()`` wait (the job
    goes on after). ``api_endpoint``/``logging_endpoint``: other base URLs for Vertex AI and
    Cloud Logging (an emulator). ``poll_interval``: the first poll's wait in seconds, growing
    to six times that. ``wait=False`` returns once the job is created; ``stream_log=False``
    waits without printing its log. ``cleanup``: delete the job after it succeeded (True), or
    after it ended either way (``"always"``); by default it is kept, so that its console page
    stays (a finished job costs nothing). ``dry_run`` returns the request body, sending
    nothing. ``pod_spec_mutators`` edit the pod spec first (with no namespace);
    ``credentials``: others than the Application Default Credentials; ``log_stream``: where
    the job's log goes (default: stdout).
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
        replica_count: int = 0,
        boot_disk_type: str | None = None,
        boot_disk_size_gb: int | None = None,
        service_account: str | None = None,
        base_output_dir: str | None = None,
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        active_deadline_seconds: int | None = None,
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
        self.replica_count = check_count("replica_count", replica_count, 0)
        if boot_disk_size_gb is not None:
            check_count("boot_disk_size_gb", boot_disk_size_gb, 1)
        if active_deadline_seconds is not None:
            check_count("active_deadline_seconds", active_deadline_seconds, 1)
        if base_output_dir is not None and not base_output_dir.startswith("gs://"):
            raise DeployError(
                f"base_output_dir={base_output_dir!r}: a Cloud Storage URL, gs://BUCKET/PATH"
            )
        self.boot_disk_type = boot_disk_type
        self.boot_disk_size_gb = boot_disk_size_gb
        self.base_output_dir = base_output_dir
        self.active_deadline_seconds = active_deadline_seconds
        super().__init__(
            "gcpjob",
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

    # -- the request ---------------------------------------------------------------------------

    def request_body(self, container: VertexContainer, display_name: str) -> dict[str, Any]:
        """The CustomJob that runs ``container`` (``customJobs.create``'s body)."""
        machine: dict[str, Any] = {"machineType": self.machine_type}
        gpus = self.accelerator_count or container.gpus
        if self.accelerator_type:
            machine["acceleratorType"] = self.accelerator_type
            machine["acceleratorCount"] = gpus or 1
        elif gpus:
            raise DeployError(
                f"gcpjob: {gpus} GPU(s) asked for, and Vertex AI needs their kind: give "
                "accelerator_type= (NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ...)"
            )
        primary: dict[str, Any] = {
            "machineSpec": machine,
            "replicaCount": "1",  # int64: a JSON string
            "containerSpec": container.spec(),
        }
        disk: dict[str, Any] = {}
        if self.boot_disk_type:
            disk["bootDiskType"] = self.boot_disk_type
        if self.boot_disk_size_gb:
            disk["bootDiskSizeGb"] = self.boot_disk_size_gb
        if disk:
            primary["diskSpec"] = disk
        pools = [primary]
        if self.replica_count:
            pools.append({**primary, "replicaCount": str(self.replica_count)})
        job_spec: dict[str, Any] = {"workerPoolSpecs": pools}
        if self.service_account:
            job_spec["serviceAccount"] = self.service_account
        if self.base_output_dir:
            job_spec["baseOutputDirectory"] = {"outputUriPrefix": self.base_output_dir}
        if self.active_deadline_seconds:
            job_spec["scheduling"] = {"timeout": f"{self.active_deadline_seconds}s"}
        return {"displayName": display_name, "labels": dict(self.labels), "jobSpec": job_spec}

    # -- deploy --------------------------------------------------------------------------------

    def deploy(self, pod_spec: PodSpec, context: BuildContext | None = None) -> GcpJobRun | DryRun:
        """Create the CustomJob; unless ``wait=False``, follow it to its end."""
        spec = mutated(pod_spec, self.pod_spec_mutators)
        container = vertex_container(spec, "gcpjob", _log)
        display_name = display_name_for(self.display_name, container.image, "ocibuild-job")
        body = self.request_body(container, display_name)
        if self.dry_run:
            return DryRun([body], display_name, container.image, KIND)
        api, logging_api = self.target.apis()
        job = api.call("POST", f"/v1/{self.target.parent}/customJobs", json=body)
        run = GcpJobRun(self, api, logging_api, job, container.image, [body])
        _log.info("created %s %s (%s) running %s", KIND, run.name, display_name, run.image)
        _log.info("%s: %s", KIND, run.console_url)
        _log.info("its log: %s", run.logs_command)
        if self.wait:
            self._follow(run)
        return run

    def _follow(self, run: GcpJobRun) -> None:
        out = self.log_stream or sys.stdout

        def show(line: str) -> None:
            out.write(f"{line}\n")
            out.flush()

        run.follow(
            on_line=show if self.stream_log else None,
            timeout=self.timeout,
            delete_on_failure=self.cleanup == "always",
        )
        if self.cleanup:
            run.delete()


class GcpJobRun:
    """A CustomJob ``deploy`` created: ``name`` (its resource name), ``id``, ``console_url``,
    ``job`` (as last read), and what it is doing. ``url`` is None: a job serves nothing."""

    kind = KIND
    namespace: str | None = None
    url: str | None = None

    def __init__(
        self,
        deployer: GcpJob,
        api: GoogleApi,
        logging_api: GoogleApi,
        job: dict[str, Any],
        image: str,
        manifests: list[dict[str, Any]],
    ) -> None:
        self.deployer = deployer
        self.api = api
        self.logging_api = logging_api
        self.job = job
        self.name = str(job["name"])
        self.id = resource_id(self.name)
        self.display_name = str(job.get("displayName") or "")
        self.image = image
        self.manifests = manifests
        self.project = deployer.target.project
        self.region = deployer.target.region
        self.console_url = deployer.target.console(f"locations/{self.region}/training/{self.id}")
        self.deleted = False

    def __repr__(self) -> str:
        return f"<GcpJobRun {self.name}>"

    @property
    def what(self) -> str:
        return f"{KIND} {self.name}"

    @property
    def log_filter(self) -> str:
        """The Cloud Logging filter of the job's entries."""
        return f'resource.type="ml_job" AND resource.labels.job_id="{self.id}"'

    @property
    def logs_command(self) -> str:
        """A command that prints the job's log."""
        return (
            f"gcloud logging read '{self.log_filter}' --project {self.project} "
            "--order asc --format 'value(textPayload)'"
        )

    # -- the handle ------------------------------------------------------------------------

    def status(self) -> DeployStatus:
        """The phase now (asks Vertex AI); once deleted, the phase it had last."""
        if self._read() is None:
            last = job_status(self.job)
            if last.done:
                return DeployStatus(last.phase, f"{last.message}; the {KIND} is deleted")
            return DeployStatus("unknown", f"the {KIND} was deleted before it finished")
        return job_status(self.job)

    def wait(self, timeout: float | None = None) -> DeployStatus:
        """Block until the job has ended; its status. A job that failed or was cancelled
        raises :class:`VertexJobFailedError`, one still going after ``timeout`` seconds
        :class:`DeployTimeoutError`."""
        return self.follow(timeout=timeout)

    def logs(self, follow: bool = False) -> Iterator[str]:
        """The job's Cloud Logging lines, oldest first; ``follow`` reads on until the job has
        ended and its last entries are read. With workers, each line starts with
        ``[workerpoolN-M]``."""
        reader = self.reader()
        backoff = Backoff(self.deployer.poll_interval)
        while True:
            ended = not follow or self._ended_now()
            moved = False
            for line in self.lines(reader):
                moved = True
                yield line
            if ended:
                if follow:
                    yield from self.late_lines(reader)
                return
            if moved:
                backoff.reset()
            backoff.sleep()

    def delete(self) -> None:
        """Cancel the job if it has not ended, then delete it; deleting twice is not an error."""
        if self.deleted:
            return
        job = self._read()
        if job is not None and job.get("state") not in TERMINAL:
            self._cancel(job)
        try:
            operation = self.api.call("DELETE", f"/v1/{self.name}")
        except GoogleApiError as err:
            if err.status != 404:
                raise
        else:
            wait_operation(
                self.api,
                operation,
                f"deleting {self.what}",
                Backoff(self.deployer.poll_interval, _DELETE_SECONDS),
            )
        self.deleted = True
        _log.info("deleted %s", self.what)

    # -- following -------------------------------------------------------------------------

    def follow(
        self,
        *,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
        delete_on_failure: bool = False,
    ) -> DeployStatus:
        """Poll the job until it has ended, logging each change of state and passing its log
        lines to ``on_line`` (None: the log is not read); the status, or an error for a job
        that failed or is still going after ``timeout`` seconds (deleted first with
        ``delete_on_failure``)."""
        backoff = Backoff(self.deployer.poll_interval, timeout)
        stream = _LogStream(self, on_line) if on_line is not None else None
        shown: str | None = None
        while True:
            moved = stream.pump() if stream is not None else False
            if self._read() is None:
                raise DeployError(f"{self.what} was deleted before it finished")
            status = job_status(self.job)
            if status.message != shown:
                shown = status.message
                moved = True
                _log.info("%s: %s (%s)", self.what, status.state, status.message)
            if self.job.get("state") in TERMINAL:
                if stream is not None:
                    stream.pump()
                    stream.pump(late=True)
                break
            if backoff.expired():
                raise self._timed_out(status, timeout, delete_on_failure)
            if moved:
                backoff.reset()
            backoff.sleep()
        if status.phase == "failed":
            error = self.failure(streamed=stream is not None, deleted=delete_on_failure)
            if delete_on_failure:
                self.delete()
            raise error
        return status

    def _timed_out(
        self, status: DeployStatus, timeout: float | None, delete: bool
    ) -> DeployTimeoutError:
        message = f"{self.what} is still {status.state} after {timeout:g} s"
        if delete:
            self.delete()
            return DeployTimeoutError(f"{message}; it was cancelled and deleted (cleanup='always')")
        return DeployTimeoutError(f"{message}; it goes on: {self.console_url}")

    def failure(self, *, streamed: bool = False, deleted: bool = False) -> VertexJobFailedError:
        """What went wrong, once the job has failed: its state and error, and the end of its
        log (in the message unless it was ``streamed`` already); whether it is kept."""
        status = job_status(self.job)
        state = str(self.job.get("state") or "JOB_STATE_UNSPECIFIED")
        tail = self._log_tail()
        if deleted:
            where = f"the {KIND} was deleted (cleanup='always')"
        else:
            where = f"the {KIND} is kept: {self.console_url}"
        message = f"{self.what} ended {status.message}; {where}"
        if tail and not streamed:
            message += "\nthe last lines of its log:\n" + "\n".join(f"  {t}" for t in tail)
        return VertexJobFailedError(message, reason=state, log_tail=tail)

    # -- reading ---------------------------------------------------------------------------

    def _read(self) -> dict[str, Any] | None:
        """The job now (kept in ``job``), or None once it is deleted."""
        try:
            self.job = self.api.call("GET", f"/v1/{self.name}")
        except GoogleApiError as err:
            if err.status == 404:
                return None
            raise
        return self.job

    def _ended_now(self) -> bool:
        job = self._read()
        return job is None or job.get("state") in TERMINAL

    def _cancel(self, job: Mapping[str, Any]) -> None:
        if job.get("state") != "JOB_STATE_CANCELLING":
            try:
                self.api.call("POST", f"/v1/{self.name}:cancel", json={})
            except GoogleApiError as err:
                # FAILED_PRECONDITION: it ended between the read and the cancel.
                if err.status not in (400, 404):
                    raise
            _log.info("cancelling %s", self.what)
        # Vertex AI deletes only a job that has ended.
        backoff = Backoff(self.deployer.poll_interval, _DELETE_SECONDS)
        while not self._ended_now():
            if backoff.expired():
                raise DeployError(
                    f"{self.what} is still being cancelled after {_DELETE_SECONDS:g} s: "
                    f"delete it once it has stopped ({self.console_url})"
                )
            backoff.sleep()

    def reader(self) -> LogReader:
        """A reader of the job's Cloud Logging entries, from the first."""
        return LogReader(self.logging_api, self.project, self.log_filter)

    def lines(self, reader: LogReader) -> Iterator[str]:
        """The lines of the entries ``reader`` has not read yet (named by node, with
        workers)."""
        for entry in reader.entries():
            prefix = ""
            if self.deployer.replica_count:
                labels = (entry.get("resource") or {}).get("labels") or {}
                task = labels.get("task_name") or (entry.get("labels") or {}).get(
                    "ml.googleapis.com/task_name"
                )
                prefix = f"[{task}] " if task else ""
            for line in entry_lines(entry):
                yield prefix + line

    def late_lines(self, reader: LogReader) -> Iterator[str]:
        """What the job wrote last: Cloud Logging shows an entry seconds after it was
        written, so once the job has ended its log is read again after a pause, until a
        read brings nothing new."""
        for _ in range(_LATE_READS):
            time.sleep(self.deployer.poll_interval)
            lines = list(self.lines(reader))
            yield from lines
            if not lines:
                return

    def _log_tail(self) -> list[str]:
        try:
            return self.reader().tail(_LOG_TAIL)
        except GoogleApiError as err:
            _log.debug("no log tail for %s: %s", self.what, err)
            return []


class _LogStream:
    """Passes a job's new log lines to ``on_line`` as they come. If Cloud Logging refuses
    (no permission to read logs, say), it says so once and the job is followed without."""

    def __init__(self, run: GcpJobRun, on_line: Callable[[str], None]) -> None:
        self.run = run
        self.on_line = on_line
        self.reader: LogReader | None = run.reader()

    def pump(self, *, late: bool = False) -> bool:
        """Pass on the lines not passed yet (``late``: those shown after the job ended);
        whether there were any."""
        if self.reader is None:
            return False
        moved = False
        try:
            lines = self.run.late_lines(self.reader) if late else self.run.lines(self.reader)
            for line in lines:
                self.on_line(line)
                moved = True
        except GoogleApiError as err:
            _log.warning(
                "%s: its log cannot be read (%s); following its state only. Read it later: %s",
                self.run.what,
                err,
                self.run.logs_command,
            )
            self.reader = None
        return moved
