"""The pods of the ``cluster`` builder's executors: Kaniko (the default) and BuildKit rootless.

Kaniko comes from the community fork ``ghcr.io/osscontainertools/kaniko``: Google archived
GoogleContainerTools/kaniko on 2025-06-03 (last release v1.24.0, no more fixes), the
Chainguard fork publishes no public images, and osscontainertools keeps the flags and the
``/kaniko/executor`` entrypoint, so Fairing-era recipes carry over. Both images are pinned by
tag here and replaceable (``executor_image=``).

Each executor reports the digest it pushed in its container's termination message: Kaniko
with ``--digest-file=/dev/termination-log``; BuildKit writes ``--metadata-file`` and a shell
step copies its ``containerimage.digest`` there. ``FallbackToLogsOnError`` makes the message
of a failed build the end of its log, so the error line survives the pod's log.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import PipelineError
from .._protocols import ExecutorContext

__all__ = [
    "BUILDKIT_IMAGE",
    "DOCKER_CONFIG_VOLUME",
    "EXECUTORS",
    "KANIKO_IMAGE",
    "Executor",
    "ExecutorBuild",
    "executor_pod_spec",
]

Executor = Literal["kaniko", "buildkit"]
EXECUTORS: tuple[str, ...] = ("kaniko", "buildkit")
KANIKO_IMAGE = "ghcr.io/osscontainertools/kaniko:v1.27.6"
BUILDKIT_IMAGE = "moby/buildkit:v0.30.0-rootless"
DOCKER_CONFIG_VOLUME = "docker-config"
_KANIKO_DOCKER_CONFIG = "/kaniko/.docker"  # the image's own DOCKER_CONFIG
_BUILDKIT_HOME = "/home/user"
_BUILDKIT_DOCKER_CONFIG = f"{_BUILDKIT_HOME}/.docker"
_BUILDKIT_STATE = f"{_BUILDKIT_HOME}/.local/share/buildkit"
_WORKSPACE = "/workspace"
_METADATA = "/tmp/ocibuild-build.json"
_TAR = "tar://"


@dataclass(frozen=True)
class ExecutorBuild:
    """What one executor pod builds: ``destination`` (``REG/REPO:TAG``) from ``context``."""

    destination: str
    dockerfile: str  # the Dockerfile's path inside the context
    context: ExecutorContext
    image: str
    push: bool = True
    insecure: bool = False
    secret: str | None = None  # a kubernetes.io/dockerconfigjson secret for the destination
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    cache: bool = False
    cache_repo: str | None = None


def executor_pod_spec(executor: str, build: ExecutorBuild) -> dict[str, Any]:
    """The pod spec (JSON form) that runs ``executor`` on ``build``."""
    if executor == "kaniko":
        return _kaniko(build)
    if executor == "buildkit":
        return _buildkit(build)
    raise PipelineError(f"executor={executor!r}: use one of {', '.join(EXECUTORS)}")


def _kaniko(build: ExecutorBuild) -> dict[str, Any]:
    name, _, _ = build.destination.rpartition(":")
    args = [
        f"--context={build.context.url}",
        f"--dockerfile={build.dockerfile}",
        f"--destination={build.destination}",
        "--digest-file=/dev/termination-log",
    ]
    if not build.push:
        args.append("--no-push")
    if build.insecure:
        args += ["--insecure", "--insecure-pull"]
    if build.cache:
        args += ["--cache=true", f"--cache-repo={build.cache_repo or name + '/cache'}"]
    args += [f"--build-arg={k}={v}" for k, v in build.build_args.items()]
    if build.target:
        args.append(f"--target={build.target}")
    container: dict[str, Any] = {
        "name": "kaniko",
        "image": build.image,
        "args": args,
        "env": list(build.context.env),
        "volumeMounts": list(build.context.volume_mounts),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    volumes = list(build.context.volumes)
    if build.secret is not None:
        container["volumeMounts"].append(
            {"name": DOCKER_CONFIG_VOLUME, "mountPath": _KANIKO_DOCKER_CONFIG, "readOnly": True}
        )
        volumes.append(_secret_volume(build.secret))
    return {"restartPolicy": "Never", "containers": [container], "volumes": volumes}


def _buildkit(build: ExecutorBuild) -> dict[str, Any]:
    directory = posixpath.dirname(build.dockerfile) or "."
    output = f"type=image,name={build.destination},push={'true' if build.push else 'false'}"
    if build.insecure:
        output += ",registry.insecure=true"
    argv = [
        "buildctl-daemonless.sh",
        "build",
        "--frontend",
        "dockerfile.v0",
        "--local",
        f"context={_WORKSPACE}",
        "--local",
        f"dockerfile={posixpath.join(_WORKSPACE, directory)}",
        "--opt",
        f"filename={posixpath.basename(build.dockerfile)}",
        "--output",
        output,
        "--metadata-file",
        _METADATA,
    ]
    for key, value in build.build_args.items():
        argv += ["--opt", f"build-arg:{key}={value}"]
    if build.target:
        argv += ["--opt", f"target={build.target}"]
    if build.cache:
        ref = build.cache_repo or build.destination.rpartition(":")[0] + ":buildcache"
        argv += ["--export-cache", f"type=registry,ref={ref},mode=max"]
        argv += ["--import-cache", f"type=registry,ref={ref}"]
    # buildctl writes the digest into its metadata file only: copy it where the pod's
    # status carries it.
    script = (
        f"{shlex.join(argv)} && sed -n "
        '\'s/.*"containerimage.digest": *"\\([^"]*\\)".*/\\1/p\' '
        f"{_METADATA} | head -n 1 | tr -d '\\n' > /dev/termination-log"
    )
    env: list[dict[str, Any]] = [
        {"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"}
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "workspace", "mountPath": _WORKSPACE},
        {"name": "buildkitd", "mountPath": _BUILDKIT_STATE},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "workspace", "emptyDir": {}},
        {"name": "buildkitd", "emptyDir": {}},
        *build.context.volumes,
    ]
    if build.secret is not None:
        env.append({"name": "DOCKER_CONFIG", "value": _BUILDKIT_DOCKER_CONFIG})
        mounts.append(
            {"name": DOCKER_CONFIG_VOLUME, "mountPath": _BUILDKIT_DOCKER_CONFIG, "readOnly": True}
        )
        volumes.append(_secret_volume(build.secret))
    container = {
        "name": "buildkit",
        "image": build.image,
        "command": ["sh", "-c", script],
        "env": env,
        "volumeMounts": mounts,
        "securityContext": _BUILDKIT_SECURITY,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "restartPolicy": "Never",
        "initContainers": [_unpack(build)],
        "containers": [container],
        "volumes": volumes,
    }


def _unpack(build: ExecutorBuild) -> dict[str, Any]:
    """The init container that puts the context into the workspace BuildKit reads."""
    context = build.context
    if context.url.startswith(_TAR):
        fetch = f"tar -xzf {shlex.quote(context.url[len(_TAR) :])}"
    elif context.fetch_url is not None:
        fetch = f"wget -q -O - {shlex.quote(context.fetch_url)} | tar -xzf -"
    else:
        raise PipelineError(
            f"the BuildKit executor cannot fetch {context.url}: use a context store that "
            "mounts the context (configmap, pvc) or gives a fetch URL (s3 presigned), or "
            "executor='kaniko'"
        )
    return {
        "name": "unpack-context",
        "image": build.image,
        "command": ["sh", "-c", f"{fetch} -C {_WORKSPACE}"],
        "env": list(context.env),
        "volumeMounts": [{"name": "workspace", "mountPath": _WORKSPACE}, *context.volume_mounts],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
    }


# What rootless BuildKit needs without a process sandbox (moby/buildkit's
# examples/kubernetes/job.rootless.yaml): its own user namespaces and mounts.
_BUILDKIT_SECURITY: dict[str, Any] = {
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "seccompProfile": {"type": "Unconfined"},
    "appArmorProfile": {"type": "Unconfined"},
}


def _secret_volume(secret: str) -> dict[str, Any]:
    return {
        "name": DOCKER_CONFIG_VOLUME,
        "secret": {
            "secretName": secret,
            "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
        },
    }
