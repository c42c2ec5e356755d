"""A test executor: plays Kaniko for the ``cluster`` builder's Job on the kwok test bed.

kwok runs no containers, so this thread does what the executor container would. It watches
the namespace for the builder's pods (label ``ocibuild/build-id``; kwok's Stage in
``_kube_stages`` holds them Running), reads the pod spec the builder made, fetches the
context from the real store the spec names (the ConfigMap the pod mounts; other schemes
through ``fetchers``, e.g. moto's S3), unpacks it, builds the image from that context with
ocibuild's own append path into the destination registry, and ends the pod as the kubelet
would: the digest as its termination message and phase Succeeded, or (``fail_with``) exit
code 1 with the log's end as the message (``FallbackToLogsOnError``) and phase Failed.
``report`` replaces the digest in the message (a broken executor).

Only what a generated Dockerfile holds is played: FROM, WORKDIR, ENV, COPY files/ /,
ENTRYPOINT. A RUN step fails the pod (the tests use contexts without requirements).
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import re
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kubernetes import client

__all__ = ["BUILD_ID_LABEL", "ExecutorRun", "TestExecutor"]

BUILD_ID_LABEL = "ocibuild/build-id"
_POLL_SECONDS = 0.1


@dataclass
class ExecutorRun:
    """What the executor saw and did for one build pod."""

    pod: str
    spec: dict[str, Any]
    args: dict[str, str]
    files: dict[str, bytes]  # the unpacked context: path -> content (directories left out)
    modes: dict[str, int]
    docker_config: dict[str, Any] | None = None
    digest: str | None = None
    context_tar: bytes = b""
    labels: dict[str, str] = field(default_factory=dict)
    job: dict[str, Any] = field(default_factory=dict)  # the Job that owns the pod, as created


class TestExecutor:
    """Plays the executor of every build pod in ``namespace`` until stopped."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        *,
        fail_with: str | None = None,
        fetchers: Mapping[str, Callable[[str], bytes]] | None = None,
        registry_options: Any = None,
        report: str | None = None,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.api = api
        self.namespace = namespace
        self.fail_with = fail_with
        self.fetchers = dict(fetchers or {})
        self.registry_options = registry_options
        self.report = report  # what to report instead of the pushed digest
        self.runs: list[ExecutorRun] = []
        self.errors: list[str] = []
        self._done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="test-executor", daemon=True)

    def __enter__(self) -> TestExecutor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # -- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.core.list_namespaced_pod(self.namespace, label_selector=BUILD_ID_LABEL)
            except client.ApiException:
                time.sleep(_POLL_SECONDS)
                continue
            for pod in pods.items:
                name = pod.metadata.name
                if name in self._done or pod.status.phase != "Running":
                    continue
                self._done.add(name)
                body = self.api.sanitize_for_serialization(pod)  # type: ignore[no-untyped-call]
                self._play(body)
            time.sleep(_POLL_SECONDS)

    def _play(self, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        try:
            run = self._read(pod)
            self.runs.append(run)
            if self.fail_with is not None:
                self._end(pod, exit_code=1, message=self.fail_with)
                return
            run.digest = self._build(run)
            self._end(pod, exit_code=0, message=self.report or run.digest)
        except Exception as err:  # the pod must end, and the test must see why
            self.errors.append(f"{name}: {type(err).__name__}: {err}")
            self._end(pod, exit_code=1, message=f"test executor: {err}")

    # -- reading what the builder made ----------------------------------------------------

    def _read(self, pod: dict[str, Any]) -> ExecutorRun:
        spec = pod["spec"]
        container = spec["containers"][0]
        args = dict(_flag(a) for a in container.get("args") or ())
        tar = self._fetch(spec, container, args["context"])
        files, modes = _unpack(tar)
        return ExecutorRun(
            pod=pod["metadata"]["name"],
            spec=spec,
            args=args,
            files=files,
            modes=modes,
            docker_config=self._docker_config(spec, container),
            context_tar=tar,
            labels=dict(pod["metadata"].get("labels") or {}),
            job=self._job(pod),
        )

    def _job(self, pod: dict[str, Any]) -> dict[str, Any]:
        owner = next(o for o in pod["metadata"]["ownerReferences"] if o["kind"] == "Job")
        job = client.BatchV1Api(self.api).read_namespaced_job(owner["name"], self.namespace)
        body: dict[str, Any] = self.api.sanitize_for_serialization(job)  # type: ignore[no-untyped-call]
        return body

    def _fetch(self, spec: dict[str, Any], container: dict[str, Any], url: str) -> bytes:
        scheme, _, rest = url.partition("://")
        if scheme != "tar":
            return self.fetchers[scheme](url)
        path = rest
        for mount in container.get("volumeMounts") or ():
            base = mount["mountPath"].rstrip("/") + "/"
            if not path.startswith(base):
                continue
            volume = _volume(spec, mount["name"])
            if "configMap" in volume:
                config_map = self.core.read_namespaced_config_map(
                    volume["configMap"]["name"], self.namespace
                )
                return base64.b64decode(config_map.binary_data[posixpath.relpath(path, base)])
            if "hostPath" in volume:
                return (
                    Path(volume["hostPath"]["path"]) / posixpath.relpath(path, base)
                ).read_bytes()
            raise AssertionError(f"the test executor cannot read volume {volume}")
        raise AssertionError(f"no volume of the pod holds {path}")

    def _docker_config(self, spec: dict[str, Any], container: dict[str, Any]) -> Any:
        for mount in container.get("volumeMounts") or ():
            if mount["mountPath"] != "/kaniko/.docker":
                continue
            volume = _volume(spec, mount["name"])
            secret = self.core.read_namespaced_secret(
                volume["secret"]["secretName"], self.namespace
            )
            assert secret.type == "kubernetes.io/dockerconfigjson", secret.type
            return json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))
        return None

    # -- building ------------------------------------------------------------------------

    def _build(self, run: ExecutorRun) -> str:
        from ocibuild import FileTreeLayer, Image, write
        from ocibuild.layer import Source

        dockerfile = run.files[run.args.get("dockerfile", "Dockerfile")].decode()
        image: Image | None = None
        env: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="test-executor-") as scratch:
            root = Path(scratch)
            for path, data in run.files.items():
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                target.chmod(run.modes[path])
            for word, rest in _instructions(dockerfile):
                if word == "FROM":
                    image = Image.load(rest.split()[0], registry_options=self.registry_options)
                    env = dict(image.config.env)
                    continue
                assert image is not None, "FROM first"
                if word == "WORKDIR":
                    image = image.with_config(working_dir=rest)
                elif word == "ENV":
                    env.update(_env(rest, env))
                    image = image.with_config(env=dict(env))
                elif word == "COPY":
                    src, dest = rest.split()
                    layer = FileTreeLayer([Source(root / src.rstrip("/"), dest)])
                    image = image.append(layer, created_by=f"COPY {rest}")
                elif word == "ENTRYPOINT":
                    image = image.with_config(entrypoint=json.loads(rest))
                else:
                    raise AssertionError(f"the test executor does not play {word}")
            assert image is not None
            result = write(image, run.args["destination"], registry_options=self.registry_options)
        return str(result.digest)

    def _end(self, pod: dict[str, Any], *, exit_code: int, message: str) -> None:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        container = pod["spec"]["containers"][0]
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "message": message,
            "startedAt": now,
            "finishedAt": now,
        }
        status = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"terminated": terminated},
                }
            ],
        }
        self.core.patch_namespaced_pod_status(
            pod["metadata"]["name"], self.namespace, {"status": status}
        )


def _flag(arg: str) -> tuple[str, str]:
    key, _, value = arg.removeprefix("--").partition("=")
    return key, value


def _volume(spec: dict[str, Any], name: str) -> dict[str, Any]:
    for volume in spec.get("volumes") or ():
        if volume["name"] == name:
            found: dict[str, Any] = volume
            return found
    raise AssertionError(f"no volume {name} in the pod spec")


def _unpack(data: bytes) -> tuple[dict[str, bytes], dict[str, int]]:
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                path = posixpath.normpath(member.name.removeprefix("./"))
                files[path] = extracted.read()
                modes[path] = member.mode
    return files, modes


def _instructions(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')


def _env(rest: str, env: Mapping[str, str]) -> dict[str, str]:
    """``ENV K=V K2="V2"``, with ``${K:+:$K}`` (the generated PYTHONPATH) and ``$K`` expanded."""
    out: dict[str, str] = {}
    for key, raw in _PAIR.findall(rest):
        value = raw[1:-1].replace('\\"', '"').replace("\\$", "\0") if raw.startswith('"') else raw
        value = re.sub(
            r"\$\{(\w+):\+([^}]*)\}", lambda m: m.group(2) if env.get(m.group(1)) else "", value
        )
        value = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), value)
        out[key] = value.replace("\0", "$").replace("\\\\", "\\")
    return out
