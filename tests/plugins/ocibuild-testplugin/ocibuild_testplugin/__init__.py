"""A tiny ocibuild plugin: the ``greeting`` preprocessor and the ``recorder`` deployer."""

from __future__ import annotations

import json
import os
from typing import Any

from ocibuild.hookspecs import hookimpl
from ocibuild.preprocessors import BuildContext, ContextFile

PREPROCESSOR = "greeting"
DEPLOYER = "recorder"


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

    def deploy(self, pod_spec: dict[str, Any], context: BuildContext | None) -> str:
        record = {
            "pod_spec": pod_spec,
            "command": list(context.command) if context else None,
            "files": sorted(context.files) if context else None,
        }
        with open(self.record_file, "w", encoding="utf-8") as f:
            json.dump(record, f)
        return self.record_file


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
def ocibuild_after_build(context: BuildContext, image_ref: str) -> None:
    _log(f"after_build {image_ref} {' '.join(context.command)}")


@hookimpl
def ocibuild_after_push(reference: str) -> None:
    _log(f"after_push {reference}")


@hookimpl
def ocibuild_before_deploy(deployer: Any, image_ref: str) -> None:
    _log(f"before_deploy {type(deployer).__name__} {image_ref}")
