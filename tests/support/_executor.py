"""A test executor: plays Kaniko or BuildKit for the ``cluster`` builder's Job on kwok.

kwok runs no containers, so this thread does what the executor container would. It watches
the namespace for the builder's pods (label ``ocibuild/build-id``; kwok's Stage in
``_kube_stages`` holds them Running), reads the pod spec the builder made, fetches the
context from the real store the spec names, unpacks it, builds the image from that context
with ocibuild's own append path into the destination registry, and ends the pod as the
kubelet would: the digest as its termination message and phase Succeeded, or
(``fail_with``) exit code 1 with the log's end as the message (``FallbackToLogsOnError``)
and phase Failed. ``report`` replaces the digest in the message (a broken executor).

The context is fetched only from what the pod spec says, as the executor would: a
``tar://`` path from the volume mounted there (a ConfigMap; a claim, through its bound
PV's hostPath; a hostPath), an ``s3://`` URL with boto3 configured from the container's env
alone (``S3_ENDPOINT``, ``S3_FORCE_PATH_STYLE``, ``AWS_REGION``, the credentials, Secrets'
keys resolved), so a wrong env fails the build; other schemes through ``fetchers``. A pod
without credentials in its env sends unsigned requests (in a real cluster it would have an
identity of its own, IRSA); moto, like S3, refuses them for a private bucket.

A BuildKit pod (one with an init container) is played from its parts: the init container's
``tar -xzf PATH`` or ``wget URL | tar`` gives the context, buildctl's ``--local`` /
``--opt filename`` / ``--output name=`` the Dockerfile and destination, and the script's own
``sed`` step runs on a ``--metadata-file`` written as buildctl writes it, so the message the
builder reads is the one that step makes.

Only what a generated Dockerfile holds is played: FROM, WORKDIR, ENV, COPY files/ /,
ENTRYPOINT. A RUN step fails the pod (the tests use contexts without requirements).
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import re
import shlex
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request
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
    executor: str = "kaniko"
    fetched: dict[str, Any] = field(default_factory=dict)  # how the context was fetched


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
        # The client's models type every field optional; these tests read what is there.
        self.core: Any = client.CoreV1Api(api)
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
            message = run.digest
            if run.executor == "buildkit":
                message = _buildkit_report(run.spec["containers"][0], run.digest)
            self._end(pod, exit_code=0, message=self.report or message)
        except Exception as err:  # the pod must end, and the test must see why
            self.errors.append(f"{name}: {type(err).__name__}: {err}")
            self._end(pod, exit_code=1, message=f"test executor: {err}")

    # -- reading what the builder made ----------------------------------------------------

    def _read(self, pod: dict[str, Any]) -> ExecutorRun:
        spec = pod["spec"]
        container = spec["containers"][0]
        fetched: dict[str, Any] = {}
        if spec.get("initContainers"):
            executor = "buildkit"
            args = _buildkit_args(container)
            tar = self._fetch_for_init(spec, spec["initContainers"][0], fetched)
        else:
            executor = "kaniko"
            args = dict(_flag(a) for a in container.get("args") or ())
            tar = self._fetch(spec, container, args["context"], fetched)
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
            executor=executor,
            fetched=fetched,
        )

    def _job(self, pod: dict[str, Any]) -> dict[str, Any]:
        owner = next(o for o in pod["metadata"]["ownerReferences"] if o["kind"] == "Job")
        job = client.BatchV1Api(self.api).read_namespaced_job(owner["name"], self.namespace)
        body: dict[str, Any] = self.api.sanitize_for_serialization(job)  # type: ignore[no-untyped-call]
        return body

    def _fetch(
        self, spec: dict[str, Any], container: dict[str, Any], url: str, fetched: dict[str, Any]
    ) -> bytes:
        scheme, _, rest = url.partition("://")
        if scheme == "s3":
            return self._fetch_s3(container, url, fetched)
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
            if "persistentVolumeClaim" in volume:
                host = self._claim_host_path(volume["persistentVolumeClaim"]["claimName"])
                fetched["host_path"] = host / posixpath.relpath(path, base)
                return Path(fetched["host_path"]).read_bytes()
            if "hostPath" in volume:
                return (
                    Path(volume["hostPath"]["path"]) / posixpath.relpath(path, base)
                ).read_bytes()
            raise AssertionError(f"the test executor cannot read volume {volume}")
        raise AssertionError(f"no volume of the pod holds {path}")

    def _claim_host_path(self, claim_name: str) -> Path:
        """Where the claim's bound PV keeps its files on this host (a hostPath PV)."""
        claim = self.core.read_namespaced_persistent_volume_claim(claim_name, self.namespace)
        assert claim.status.phase == "Bound", f"claim {claim_name} is {claim.status.phase}"
        volume = self.core.read_persistent_volume(claim.spec.volume_name)
        assert volume.spec.host_path is not None, f"PV {volume.metadata.name} is no hostPath"
        return Path(volume.spec.host_path.path)

    def _fetch_s3(self, container: dict[str, Any], url: str, fetched: dict[str, Any]) -> bytes:
        """The object, as Kaniko's S3 context reads it: configured by the container's env."""
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        env = self._env(container)
        bucket, _, key = url.removeprefix("s3://").partition("/")
        path_style = env.get("S3_FORCE_PATH_STYLE", "").lower() == "true"
        credentials = {
            "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": env.get("AWS_SESSION_TOKEN"),
        }
        signed = credentials["aws_access_key_id"] is not None
        config = Config(
            region_name=env.get("AWS_REGION"),
            s3={"addressing_style": "path" if path_style else "virtual"},
            signature_version="s3v4" if signed else UNSIGNED,
            # Nothing from this process's environment: the pod's env is all there is.
            ignore_configured_endpoint_urls=True,
            connect_timeout=3,
            retries={"max_attempts": 1},
        )
        session = boto3.session.Session(**(credentials if signed else {}))
        s3 = session.client("s3", endpoint_url=env.get("S3_ENDPOINT"), config=config)
        fetched.update(
            endpoint=env.get("S3_ENDPOINT"),
            region=env.get("AWS_REGION"),
            path_style=path_style,
            access_key=credentials["aws_access_key_id"],
            bucket=bucket,
            key=key,
        )
        data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    def _fetch_for_init(
        self, spec: dict[str, Any], init: dict[str, Any], fetched: dict[str, Any]
    ) -> bytes:
        """What BuildKit's init container unpacks: ``tar -xzf PATH`` or ``wget URL | tar``."""
        words = shlex.split(init["command"][2])
        if words[0] == "tar":
            return self._fetch(spec, init, "tar://" + words[2], fetched)
        assert words[:4] == ["wget", "-q", "-O", "-"], words
        fetched["fetch_url"] = words[4]
        with urllib.request.urlopen(words[4], timeout=30) as answer:
            data: bytes = answer.read()
        return data

    def _env(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's env as the kubelet sets it: values, and Secrets' keys resolved."""
        env: dict[str, str] = {}
        for item in container.get("env") or ():
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            ref = item["valueFrom"]["secretKeyRef"]
            secret = self.core.read_namespaced_secret(ref["name"], self.namespace)
            if ref["key"] not in (secret.data or {}):
                assert ref.get("optional"), f"secret {ref['name']} has no key {ref['key']}"
                continue
            env[item["name"]] = base64.b64decode(secret.data[ref["key"]]).decode()
        return env

    def _docker_config(self, spec: dict[str, Any], container: dict[str, Any]) -> Any:
        for mount in container.get("volumeMounts") or ():
            if mount["name"] != "docker-config":
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


def _buildkit_args(container: dict[str, Any]) -> dict[str, str]:
    """buildctl's command line, in Kaniko's terms: ``dockerfile`` (in the context),
    ``destination``, ``push``, ``insecure``."""
    argv = shlex.split(container["command"][2].split(" && ", 1)[0])
    assert argv[:2] == ["buildctl-daemonless.sh", "build"], argv
    pairs = list(zip(argv[2::2], argv[3::2], strict=True))
    local = dict(v.split("=", 1) for k, v in pairs if k == "--local")
    opts = dict(v.split("=", 1) for k, v in pairs if k == "--opt")
    (output,) = (v for k, v in pairs if k == "--output")
    out = dict(part.split("=", 1) for part in output.split(","))
    assert out.pop("type") == "image", output
    directory = posixpath.relpath(local["dockerfile"], local["context"])
    args = {
        "dockerfile": posixpath.normpath(posixpath.join(directory, opts["filename"])),
        "destination": out["name"],
        "push": out["push"],
        "metadata-file": dict(pairs)["--metadata-file"],
    }
    if out.get("registry.insecure") == "true":
        args["insecure"] = ""
    return args


def _buildkit_report(container: dict[str, Any], digest: str) -> str:
    """The termination message BuildKit's pod writes: the script's own step after buildctl,
    run on a metadata file as buildctl writes it (indented JSON)."""
    script = container["command"][2]
    _, step = script.split(" && ", 1)
    metadata_path = _buildkit_args(container)["metadata-file"]
    with tempfile.TemporaryDirectory(prefix="test-buildkit-") as scratch:
        metadata, log = Path(scratch) / "metadata.json", Path(scratch) / "termination-log"
        # As buildctl's json.MarshalIndent writes it: sorted keys, two spaces, objects nested.
        descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest}
        answer = {
            "containerimage.config.digest": "sha256:" + "0" * 64,
            "containerimage.descriptor": {**descriptor, "size": 1},
            "containerimage.digest": digest,
            "image.name": _buildkit_args(container)["destination"],
        }
        metadata.write_text(json.dumps(answer, indent=2, sort_keys=True))
        step = step.replace(metadata_path, str(metadata)).replace("/dev/termination-log", str(log))
        subprocess.run(["sh", "-c", step], check=True, timeout=30)
        return log.read_text()


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
