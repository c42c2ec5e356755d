"""The ``docker`` builder: a Dockerfile built by a Docker-compatible engine, then pushed by it.

For builds that must ``RUN`` something (system packages, requirements without wheels, a base
without Python). The Dockerfile is generated from the preprocessor's build context, or is the
user's own (:mod:`._dockerfile`); the context goes to ``POST /build`` as a tar streamed from
ocibuild's tar writer. The image is tagged only once it is built, so a failed step moves no
tag and pushes nothing; then ``POST /images/{name}/push`` sends it with ocibuild's own
credentials (:mod:`._engine_auth`). The engine is the one ``docker_host``, ``DOCKER_HOST`` or
the docker context names (:class:`ocibuild.transports.docker.Engine`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..._errors import OCIBuildError
from ...oci import Digest, Platform, Reference
from ...transports import Location, open_source
from ...transports.docker import EngineError
from .._context import BuildContext
from .._errors import PipelineError
from .._protocols import BuildResult, PodSpec, Preprocessor
from ._base import pod_spec_for
from ._build_output import BuildOutput, DockerBuildError
from ._dockerfile import DockerContext, base_images, dockerfile_context, generated_context
from ._engine_auth import registry_auth, registry_config
from .append import DEFAULT_IMAGE_NAME, content_tag, default_base_image

if TYPE_CHECKING:
    from ...transports.docker import Engine
    from ...transports.registry import RegistryOptions

__all__ = ["DAEMON_PREFIX", "DockerBuildError", "DockerBuilder", "registry_digest"]

_log = logging.getLogger("ocibuild.builders")
DAEMON_PREFIX = "docker-daemon:"


class DockerBuilder:
    """Fairing's ``DockerBuilder``: builds with the local engine, pushes with it.

    The image goes to ``registry/image_name:tag`` (``tag`` defaults to :func:`content_tag` of
    the image ID) or to ``to`` (``REGISTRY/REPO[:TAG]``, or ``docker-daemon:NAME[:TAG]`` to
    leave it in the engine). With ``push=False`` it stays in the engine, and the result is
    ``docker-daemon:NAME:TAG@<image ID>``. ``dockerfile`` (with ``context_dir``, default the
    Dockerfile's directory) replaces the generated Dockerfile; then the preprocessor is
    optional. ``network`` is the ``RUN`` steps' network (``host``, ``none``; default: the
    engine's, a bridge). ``buildkit`` picks the engine's builder (``None``: BuildKit where
    the engine offers it). ``dry_run`` prints the Dockerfile and the context's files, and
    builds nothing.
    """

    def __init__(
        self,
        registry: str | None = None,
        image_name: str = DEFAULT_IMAGE_NAME,
        base_image: str | None = None,
        push: bool = True,
        preprocessor: Preprocessor | None = None,
        *,
        tag: str | None = None,
        to: str | None = None,
        dockerfile: str | os.PathLike[str] | None = None,
        context_dir: str | os.PathLike[str] | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        platform: Platform | str | None = None,
        labels: Mapping[str, str] | None = None,
        no_cache: bool = False,
        pull: bool = False,
        network: str | None = None,
        buildkit: bool | None = None,
        docker_host: str | None = None,
        dry_run: bool = False,
        excludes: Sequence[str] = (),
        registry_options: RegistryOptions | None = None,
        output: TextIO | None = None,
    ) -> None:
        if preprocessor is None and dockerfile is None:
            raise PipelineError("the docker builder needs a preprocessor, or a dockerfile=")
        self.registry = registry.rstrip("/") if registry else None
        self.image_name = image_name
        self.base_image = base_image or default_base_image()
        self.push = push
        self.preprocessor = preprocessor
        self.tag = tag
        self.to = to
        self.dockerfile = dockerfile
        self.context_dir = context_dir
        self.build_args = dict(build_args or {})
        self.target = target
        # the engine's own spelling; a comma list is the engine's to accept or refuse
        self.platform = None if platform is None else str(platform)
        self.labels = dict(labels or {})
        self.no_cache = no_cache
        self.pull = pull
        self.network = network
        self.buildkit = buildkit
        self.docker_host = docker_host
        self.dry_run = dry_run
        self.excludes = tuple(excludes)
        self.registry_options = registry_options
        self.output = output
        self.image_tag: str | None = None  # Fairing's attribute: the last image built
        self.context: BuildContext | None = None
        self.docker_context: DockerContext | None = None
        self._name, self._tag, self._pushes = self._destination()

    def build(self) -> BuildResult:
        """Preprocess, build in the engine, tag, push; the image pinned by digest."""
        context = self.preprocessor.preprocess() if self.preprocessor is not None else None
        self.context = context
        if self.dry_run:
            return self._dry_run(context)
        # The engine client (and httpx) loads when a build talks to an engine: looking up
        # the builder by name stays light.
        from ...transports.docker import Engine

        with Engine.from_environment(self.docker_host) as engine:
            docker_context = self._docker_context(context, engine)
            image_id = self._build(engine, docker_context)
            if context is None:
                context = self._context_from_image(engine, image_id)
                self.context = context
            tag = self._tag or content_tag(image_id)
            engine.request(
                "POST", f"/images/{image_id}/tag", params={"repo": self._name, "tag": tag}
            )
            if not self._pushes:
                image = f"{DAEMON_PREFIX}{self._name}:{tag}@{image_id}"
                _log.info("built %s in the engine at %s", image, engine.host)
                self.image_tag = image
                return BuildResult(image, image_id, False, context)
            digest = self._push(engine, tag)
        image = f"{self._name}:{tag}@{digest}"
        self.image_tag = image
        return BuildResult(image, digest, True, context)

    def generate_pod_spec(self, image: str | None = None) -> PodSpec:
        """A PodSpec running the last built image's command (Fairing's method)."""
        if self.context is None or (image is None and self.image_tag is None):
            raise PipelineError("generate_pod_spec() needs build() to have run first")
        return pod_spec_for(image or self.image_tag or "", self.context)

    # -- steps -----------------------------------------------------------------------

    def _destination(self) -> tuple[str, str | None, bool]:
        """The image's name in the engine, its tag (``None``: from the image ID), and whether
        it is pushed."""
        if self.to is not None:
            if self.to.startswith(DAEMON_PREFIX):
                name, tag = _split_tag(self.to[len(DAEMON_PREFIX) :])
                _check_name(name, self.to)
                return name, tag, False
            reference = _registry_reference(self.to)
            return reference.name, reference.tag, self.push
        if self.push and not self.registry:
            raise PipelineError(
                "the docker builder needs registry='host[:port]/namespace' to push to "
                "(or to='REGISTRY/REPO:TAG', or push=False to leave the image in the engine)",
                flags="the docker builder needs --registry HOST[/NAMESPACE] to push to (or --to "
                "REF, or --to docker-daemon:NAME:TAG to leave the image in the engine)",
            )
        name = f"{self.registry}/{self.image_name}" if self.registry else self.image_name
        _check_name(name, name)
        return name, self.tag, self.push

    def _docker_context(self, context: BuildContext | None, engine: Engine | None) -> DockerContext:
        if self.dockerfile is not None:
            made = dockerfile_context(self.dockerfile, self.context_dir, excludes=self.excludes)
        else:
            assert context is not None  # the constructor made sure of one of them
            base = self._pinned_base(engine)
            made = generated_context(context, base, excludes=self.excludes)
        self.docker_context = made
        return made

    def _pinned_base(self, engine: Engine | None) -> str:
        """The base as ``FROM`` names it: pinned by digest where the digest can be known."""
        base = self.base_image
        if base.startswith(DAEMON_PREFIX):
            name = base[len(DAEMON_PREFIX) :]
            _log.info("FROM %s: an image of the engine, by its tag", name)
            return name
        location = Location.parse(base)
        reference = location.reference
        if location.kind != "registry" or reference is None:
            raise PipelineError(
                f"the docker builder's base must be in a registry or in the engine "
                f"(docker-daemon:NAME:TAG), not {base}: copy it to one of them first"
            )
        if reference.digest is not None:
            return base
        if engine is not None and not self.pull:
            local = _engine_image(engine, base)
            if local is not None:
                return _pinned_in_engine(base, reference, local)
        try:
            digest = registry_digest(location, self.registry_options)
        except OCIBuildError as err:
            if engine is not None:
                raise
            _log.info("FROM %s: kept by its tag (%s)", base, err)
            return base
        pinned = str(reference.with_digest(digest))
        _log.info("FROM %s: %s in the registry", base, digest)
        return pinned

    def _build(self, engine: Engine, docker_context: DockerContext) -> Digest:
        """``POST /build`` with the context streamed as the body; the image ID."""
        params = self._build_params(engine, docker_context)
        credentials = registry_config(base_images(docker_context.text), self.registry_options)
        if params["version"] == "2" and credentials.images:
            # BuildKit asks the client for credentials over a session, which a tar upload
            # has not: the engine pulls those bases itself first, and BuildKit finds them
            # there (asked to pull again, it would need the session after all).
            for image in credentials.images:
                self._pull(engine, image)
            params["pull"] = None
        headers = {"Content-Type": "application/x-tar", **credentials.values}
        output = BuildOutput()
        with engine.stream(
            "POST", "/build", params=params, content=docker_context.stream(), headers=headers
        ) as response:
            for message in engine.messages(response):
                output.feed(message)
        if output.image_id is None and output.short_id is not None and not output.failed:
            output.image_id = _image_id(engine, output.short_id)
        return output.result()

    def _pull(self, engine: Engine, image: str) -> None:
        """``POST /images/create``: the engine pulls ``image`` with ocibuild's credentials."""
        reference = Reference.parse(image)
        _log.info("pulling %s into the engine", image)
        headers = registry_auth(reference, self.registry_options).values
        params = {"fromImage": reference.name, "tag": reference.identifier}
        with engine.stream("POST", "/images/create", params=params, headers=headers) as answer:
            error = _stream_error(engine.messages(answer))
        if error is not None:
            raise PipelineError(f"the engine could not pull {image}: {error}")

    def _build_params(self, engine: Engine, docker_context: DockerContext) -> dict[str, Any]:
        buildkit = engine.buildkit if self.buildkit is None else self.buildkit
        if buildkit and not engine.buildkit:
            where = f"the engine at {engine.host} does not offer BuildKit"
            raise PipelineError(
                f"{where}: pass buildkit=None (or False) to use its own builder",
                flags=f"{where}: give --builder-option buildkit=none (or false) to use its "
                "own builder",
            )
        return {
            "dockerfile": docker_context.dockerfile,
            "buildargs": json.dumps(self.build_args) if self.build_args else None,
            "labels": json.dumps(self.labels) if self.labels else None,
            "target": self.target,
            "platform": self.platform,
            "nocache": self.no_cache or None,
            "pull": self.pull or None,
            "networkmode": self.network,
            "rm": True,
            "forcerm": True,
            "version": "2" if buildkit else "1",
        }

    def _push(self, engine: Engine, tag: str) -> Digest:
        """``POST /images/{name}/push``; the manifest digest the push stream reports."""
        reference = Reference.parse(f"{self._name}:{tag}")
        headers = registry_auth(reference, self.registry_options).values
        _log.info("pushing %s:%s", self._name, tag)
        found: list[Digest] = []

        def digests(messages: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for message in messages:
                aux = message.get("aux")
                if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
                    found.append(Digest.parse(aux["Digest"]))
                yield message

        with engine.stream(
            "POST", f"/images/{self._name}/push", params={"tag": tag}, headers=headers
        ) as response:
            error = _stream_error(digests(engine.messages(response)))
        digest = found[-1] if found else None
        if error is not None:
            raise PipelineError(f"the engine could not push {self._name}:{tag}: {error}")
        if digest is None:
            raise PipelineError(
                f"the engine pushed {self._name}:{tag} without reporting its digest"
            )
        return digest

    def _context_from_image(self, engine: Engine, image_id: Digest) -> BuildContext:
        """For a user's Dockerfile without a preprocessor: what the built image runs."""
        config = engine.request("GET", f"/images/{image_id}/json").json().get("Config") or {}
        command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
        if not command:
            raise PipelineError(
                f"the image built from {self.dockerfile} has no ENTRYPOINT or CMD: add one "
                "(a pipeline runs the image's command), or pass a preprocessor"
            )
        return BuildContext({}, tuple(command), workdir=config.get("WorkingDir") or "/")

    def _dry_run(self, context: BuildContext | None) -> BuildResult:
        """Print the Dockerfile and the context's files; the digest is the context tar's."""
        docker_context = self._docker_context(context, None)
        out = self.output or sys.stdout
        files = docker_context.file_list()
        out.write(docker_context.text)
        out.write(f"# build context: {len(files)} entries\n")
        out.writelines(f"{path}\n" for path in files)
        out.flush()
        hasher = hashlib.sha256()
        for chunk in docker_context.stream():
            hasher.update(chunk)
        digest = Digest.parse(f"sha256:{hasher.hexdigest()}")
        image = f"{self._name}:{self._tag or content_tag(digest)}"
        if context is None:
            # A user's Dockerfile without a preprocessor: what the image runs is known only
            # once it is built, and a dry run builds nothing.
            context = BuildContext({}, ("true",))
        return BuildResult(image if self._pushes else DAEMON_PREFIX + image, digest, False, context)


def _stream_error(messages: Iterator[Mapping[str, Any]]) -> str | None:
    """Read a pull or push stream to its end; the error it reported, if any."""
    error: str | None = None
    for message in messages:
        detail = message.get("errorDetail")
        if isinstance(detail, Mapping) and detail.get("message"):
            error = str(detail["message"])
        elif message.get("error"):
            error = str(message["error"])
        elif message.get("status"):
            _log.debug("%s", message["status"])
    return error


def _split_tag(name: str) -> tuple[str, str | None]:
    """``NAME[:TAG]``: a colon after the last ``/`` starts the tag."""
    head, sep, tail = name.rpartition(":")
    if sep and "/" not in tail and head:
        return head, tail
    return name, None


def _check_name(name: str, given: str) -> None:
    try:
        reference = Reference.parse(name, default_tag=None)
    except OCIBuildError as err:
        raise PipelineError(f"{given!r} is not an image name the engine takes: {err}") from err
    if reference.digest is not None or reference.tag is not None:
        raise PipelineError(f"{given!r}: give NAME[:TAG], without a digest")


def _registry_reference(text: str) -> Reference:
    location = Location.parse(text)
    if location.kind != "registry" or location.reference is None:
        raise PipelineError(
            f"the docker builder pushes to a registry (REGISTRY/REPO[:TAG]) or leaves the image "
            f"in the engine (docker-daemon:NAME[:TAG]), not {text}"
        )
    reference = Reference.parse(text.removeprefix("docker://"), default_tag=None)
    if reference.digest is not None:
        why = "give a tag, not a digest (the push makes the digest)"
        raise PipelineError(f"to={text!r}: {why}", flags=f"--to {text}: {why}")
    return reference


def _engine_image(engine: Engine, name: str) -> dict[str, Any] | None:
    """The engine's inspect of image ``name``, or ``None`` when it has no such image."""
    try:
        answer = engine.request("GET", f"/images/{name}/json")
    except EngineError as err:
        if err.status == 404:
            return None
        raise
    value = answer.json()
    return value if isinstance(value, dict) else None


def _pinned_in_engine(base: str, reference: Reference, image: Mapping[str, Any]) -> str:
    """A base the engine has: by the digest it was pulled by, else by its tag."""
    for repo_digest in image.get("RepoDigests") or ():
        try:
            pulled = Reference.parse(str(repo_digest))
        except OCIBuildError:
            continue
        if pulled.name == reference.name and pulled.digest is not None:
            _log.info("FROM %s: %s in the engine", base, pulled.digest)
            return str(reference.with_digest(pulled.digest))
    _log.info("FROM %s: an image of the engine with no registry digest, by its tag", base)
    return base


def registry_digest(location: Location, options: RegistryOptions | None) -> Digest:
    source = open_source(location, options)
    try:
        data, _media_type = source.get_manifest()
    finally:
        source.close()
    # The digest of the bytes received: FROM then names exactly what this answer was.
    return Digest.of(data)


def _image_id(engine: Engine, short_id: str) -> Digest | None:
    image = _engine_image(engine, short_id)
    found = image.get("Id") if image is not None else None
    return Digest.parse(found) if isinstance(found, str) else None
