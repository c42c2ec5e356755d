"""The ``local`` deployer: a quick check of the built context with this machine's Python.

It is not a container: the context's files are copied into a temporary directory (in-image
paths under it), and the command runs there with this interpreter in place of ``python``,
``OCIBUILD_RUNTIME=1``/``FAIRING_RUNTIME=1`` set and the runtime dir on ``PYTHONPATH``.
Requirements are not installed: the code sees the packages of this environment. The run is
over when ``deploy`` returns: its :class:`LocalRun` handle is a finished workload.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._context import RUNTIME_DIR, RUNTIME_ENV, BuildContext
from .._errors import DeployError
from .._protocols import DeployPhase, DeployStatus, PodSpec

__all__ = ["LocalDeployer", "LocalRun"]

_log = logging.getLogger("ocibuild.deployers")
_PYTHONS = ("python", "python3")


@dataclass(frozen=True)
class LocalRun:
    """What a local run did; a :class:`~ocibuild.pipeline.DeployHandle` of a finished run."""

    command: tuple[str, ...]
    returncode: int
    directory: Path  # the root the context was copied to (gone unless cleanup=False)
    workdir: Path
    output: str | None = None  # stdout and stderr, when not streamed
    url: str | None = None  # a local run serves nothing

    def status(self) -> DeployStatus:
        """``succeeded`` or ``failed``, with the exit status."""
        phase: DeployPhase = "succeeded" if self.returncode == 0 else "failed"
        return DeployStatus(phase, f"{' '.join(self.command)} exited with status {self.returncode}")

    def wait(self, timeout: float | None = None) -> DeployStatus:
        """The status: the run ended before ``deploy`` returned."""
        return self.status()

    def logs(self, follow: bool = False) -> Iterator[str]:
        """The captured output by line; none when it was streamed (``stream_log=True``)."""
        return iter((self.output or "").splitlines())

    def delete(self) -> None:
        """Remove the directory the context was copied to (kept with ``cleanup=False``)."""
        shutil.rmtree(self.directory, ignore_errors=True)


class LocalDeployer:
    """Run the command against the built context with the local interpreter (not a container)."""

    def __init__(
        self,
        cleanup: bool = True,
        stream_log: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.cleanup = cleanup
        self.stream_log = stream_log
        self.timeout = timeout
        self.env = dict(env or {})
        self.last_run: LocalRun | None = None

    def deploy(self, pod_spec: PodSpec, context: BuildContext | None) -> LocalRun:
        """Copy the context into a temp dir and run the command there."""
        if context is None:
            raise DeployError("the local deployer runs a build context: build the image first")
        root = Path(tempfile.mkdtemp(prefix="ocibuild-local-"))
        try:
            materialize(context, root)
            run = self._run(context, root)
        finally:
            if self.cleanup:
                shutil.rmtree(root, ignore_errors=True)
        self.last_run = run
        if run.returncode != 0:
            tail = (run.output or "").strip().splitlines()[-1:] or [""]
            raise DeployError(
                f"the local run of {' '.join(context.command)} exited with status "
                f"{run.returncode}" + (f": {tail[0]}" if tail[0] else "")
            )
        return run

    def _run(self, context: BuildContext, root: Path) -> LocalRun:
        command = list(context.command)
        if command[0] in _PYTHONS:
            command[0] = sys.executable
        workdir = root / context.workdir.lstrip("/")
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **RUNTIME_ENV, **context.env, **self.env}
        paths = [str(root / RUNTIME_DIR.lstrip("/")), os.environ.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        _log.info("running %s in %s", command, workdir)
        try:
            proc = subprocess.run(
                command,
                cwd=workdir,
                env=env,
                timeout=self.timeout,
                check=False,
                stdout=None if self.stream_log else subprocess.PIPE,
                stderr=None if self.stream_log else subprocess.STDOUT,
                text=True,
            )
        except FileNotFoundError as err:
            raise DeployError(f"cannot run {command[0]!r} locally: not found") from err
        except subprocess.TimeoutExpired as err:
            raise DeployError(f"the local run timed out after {self.timeout} s") from err
        return LocalRun(tuple(command), proc.returncode, root, workdir, proc.stdout)


def materialize(context: BuildContext, root: Path) -> None:
    """Write the context's files under ``root`` at their in-image paths."""
    for dest, item in context.files.items():
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(item.source, bytes):
            target.write_bytes(item.source)
            os.chmod(target, item.mode if item.mode is not None else 0o644)
        elif item.source.is_dir():
            shutil.copytree(item.source, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(item.source, target)
            if item.mode is not None:
                os.chmod(target, item.mode)
