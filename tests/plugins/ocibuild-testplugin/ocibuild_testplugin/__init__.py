"""A tiny ocibuild plugin: the ``greeting`` preprocessor, the ``recorder`` deployer, the
``testmem:NAME[:TAG]`` transport (OCI layouts under ``$OCIBUILD_TESTPLUGIN_STORE``) and the
credential source ``testsecrets`` (``$OCIBUILD_TESTPLUGIN_USERNAME``/``_PASSWORD`` for the
registry ``$OCIBUILD_TESTPLUGIN_REGISTRY``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ocibuild.hookspecs import hookimpl
from ocibuild.pipeline import DeployStatus
from ocibuild.preprocessors import BuildContext, ContextFile
from ocibuild.registry import Credential
from ocibuild.transports import (
    ImageSink,
    ImageSource,
    Location,
    Transport,
    open_sink,
    open_source,
)

PREPROCESSOR = "greeting"
DEPLOYER = "recorder"
TRANSPORT = "testmem"
CREDENTIAL_SOURCE = "testsecrets"


class GreetingPreprocessor:
    """A one-file context: ``greet.py`` prints the message."""

    def __init__(self, message: str = "hello from a plugin", path_prefix: str = "/srv/") -> None:
        self.message = message
        self.workdir = "/" + path_prefix.strip("/")

    def preprocess(self) -> BuildContext:
        script = f"print({self.message!r})\n".encode()
        return BuildContext(
            files={f"{self.workdir}/greet.py": ContextFile(script, 0o644)},
            command=("python", "greet.py"),
            workdir=self.workdir,
            env={"GREETING": self.message},
        )


class RecorderDeployer:
    """Writes the pod spec and the context's command to ``record_file``."""

    def __init__(self, record_file: str) -> None:
        self.record_file = record_file

    def deploy(self, pod_spec: Any, context: BuildContext | None) -> RecordHandle:
        record = {
            "pod_spec": pod_spec,
            "command": list(context.command) if context else None,
            "files": sorted(context.files) if context else None,
        }
        with open(self.record_file, "w", encoding="utf-8") as f:
            json.dump(record, f)
        return RecordHandle(Path(self.record_file))


class RecordHandle:
    """A finished deploy: the record file is its only output."""

    def __init__(self, record_file: Path) -> None:
        self.record_file = record_file

    def status(self) -> DeployStatus:
        return DeployStatus("succeeded", f"recorded in {self.record_file}")

    def wait(self, timeout: float | None = None) -> DeployStatus:
        return self.status()

    def logs(self, follow: bool = False) -> Iterator[str]:
        return iter(self.record_file.read_text(encoding="utf-8").splitlines())

    def delete(self) -> None:
        self.record_file.unlink(missing_ok=True)


def _layout(location: Location) -> Location:
    store = Path(os.environ["OCIBUILD_TESTPLUGIN_STORE"]) / (location.path or "default")
    return Location.parse(f"oci:{store}" + (f":{location.tag}" if location.tag else ""))


def _source(location: Location, registry_options: Any) -> ImageSource:
    return open_source(_layout(location))


def _sink(location: Location, registry_options: Any) -> ImageSink:
    return open_sink(_layout(location))


TESTMEM = Transport(TRANSPORT, _source, _sink)


def _log(line: str) -> None:
    path = os.environ.get("OCIBUILD_TESTPLUGIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@hookimpl
def ocibuild_preprocessors() -> dict[str, Any]:
    return {PREPROCESSOR: GreetingPreprocessor}


@hookimpl
def ocibuild_deployers() -> dict[str, Any]:
    return {DEPLOYER: RecorderDeployer}


@hookimpl
def ocibuild_transports() -> dict[str, Transport]:
    return {TRANSPORT: TESTMEM}


def _secrets(registry: str, repository: str | None) -> Credential | None:
    _log(f"credential {registry} {repository}")
    if registry != os.environ.get("OCIBUILD_TESTPLUGIN_REGISTRY"):
        return None
    username, password = (os.environ[f"OCIBUILD_TESTPLUGIN_{k}"] for k in ("USERNAME", "PASSWORD"))
    return Credential("the testsecrets plugin", username, password)


@hookimpl
def ocibuild_credential_sources() -> dict[str, Any]:
    return {CREDENTIAL_SOURCE: _secrets}


@hookimpl
def ocibuild_after_build(context: BuildContext, image_ref: str) -> None:
    _log(f"after_build {image_ref} {' '.join(context.command)}")


@hookimpl
def ocibuild_after_push(reference: str) -> None:
    _log(f"after_push {reference}")


@hookimpl
def ocibuild_before_deploy(deployer: Any, image_ref: str) -> None:
    _log(f"before_deploy {type(deployer).__name__} {image_ref}")
