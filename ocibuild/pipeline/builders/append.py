"""The ``append`` builder: base image + dependency layer + code layer, no daemon, then a push."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...image._image import Image, load
from ...image._platforms import PlatformSpec, wanted_platforms
from ...layer import Layer, LayerCache, LayerOptions, default_cache_dir
from ...oci import ContainerConfig, Digest
from ...transports._base import phase
from ...transports._location import Location
from .._context import BuildContext
from .._errors import DependencyError, PipelineError
from .._protocols import BuildResult, PodSpec, Preprocessor
from ._base import pod_spec_for
from ._deps import PythonTarget, python_version_from_env
from ._layers import code_layer, dependency_layer, image_env

if TYPE_CHECKING:
    from ...image._write import TagRule
    from ...transports._base import Progress
    from ...transports.registry import RegistryOptions

__all__ = ["DEFAULT_IMAGE_NAME", "AppendBuilder", "content_tag", "default_base_image"]

_log = logging.getLogger("ocibuild.builders")
DEFAULT_IMAGE_NAME = "ocibuild-job"


def default_base_image() -> str:
    """``python:X.Y-slim`` for this interpreter, so pickles and wheels match by default."""
    return "python:{}.{}-slim".format(*sys.version_info[:2])


def content_tag(digest: Digest) -> str:
    """The default tag: the manifest digest's first 16 hex digits (Fairing tagged by context hash).

    It changes exactly when the image does, and ``write`` names it once the layers are written,
    so it costs no pass over them: a tag computed up front had to build each layer just to
    learn its digest, and then the write built it again.
    """
    return digest.hex[:16]


class AppendBuilder:
    """Fairing's ``AppendBuilder``, with dependencies: appends layers to ``base_image``.

    The image is written to ``registry/image_name:tag`` (``tag`` defaults to
    :func:`content_tag` of the manifest digest), or to ``to`` (any destination spelling:
    ``REGISTRY/REPO:TAG``, ``oci:DIR:TAG``, ``docker-archive:FILE``). With ``push=False`` and
    no ``to``, it goes to an OCI layout in the cache dir instead of a registry.

    Requirements of the context become their own layer below the code (see :mod:`ocibuild._deps`);
    their Python version is ``python_version`` or the base image's ``PYTHON_VERSION``.
    ``platform`` picks the base's platforms as :func:`ocibuild.load` does (one, a list or
    ``"all"``); several give an index, each platform with its own dependency layer.
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
        platform: PlatformSpec = None,
        python_version: str | None = None,
        platform_tags: Sequence[str] | None = None,
        layer_options: LayerOptions | None = None,
        config: ContainerConfig | None = None,
        annotations: Mapping[str, str] | None = None,
        registry_options: RegistryOptions | None = None,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        pip_args: Sequence[str] = (),
        progress: Progress | None = None,
        base_annotations: bool = True,
    ) -> None:
        if preprocessor is None:
            raise PipelineError("the append builder needs a preprocessor")
        self.registry = registry.rstrip("/") if registry else None
        self.image_name = image_name
        self.base_image = base_image or default_base_image()
        self.push = push
        self.preprocessor = preprocessor
        self.tag = tag
        self.to = to
        self.platform = wanted_platforms(platform)  # checked now, not after preprocessing
        self.python_version = python_version
        self.platform_tags = tuple(platform_tags or ())
        self.layer_options = layer_options or LayerOptions()
        self.config = config
        self.annotations = dict(annotations or {})
        self.registry_options = registry_options
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.layer_cache = LayerCache(self.cache_dir) if cache else None
        self.pip_args = tuple(pip_args)
        self.progress = progress  # told each step and blob (the CLI draws them)
        self.base_annotations = base_annotations
        self.image_tag: str | None = None  # Fairing's attribute: the last image written
        self.context: BuildContext | None = None
        if self.to is None and self.push and not self.registry:
            raise PipelineError(
                "the append builder needs registry='host[:port]/namespace' to push to "
                "(or to='REGISTRY/REPO:TAG', or push=False)",
                flags="the append builder needs --registry HOST[/NAMESPACE] to push to, or "
                "--to REF",
            )

    def build(self) -> BuildResult:
        """Preprocess, append the layers to the base, write; the image pinned by digest."""
        from ...image._write import write

        with phase(self.progress, "preprocess") as step:
            context = self.preprocessor.preprocess()
            step.detail = f"{len(context.files)} files"
        self.context = context
        with phase(self.progress, "resolve base") as step:
            loaded = load(
                self.base_image, platform=self.platform, registry_options=self.registry_options
            )
            platforms = ", ".join(str(b.platform) for b in loaded.images)
            step.detail = f"{self.base_image} ({platforms})"
        for base in loaded.images:
            self._check_python(context, base)
        code = code_layer(context, self.layer_options, self.layer_cache)
        images = [self._assemble(context, base, code) for base in loaded.images]
        dest, tag = self._destination()
        pushed = Location.parse(dest).kind == "registry"
        _log.info("pushing to %s" if pushed else "writing %s", dest)
        result = write(
            images,
            dest,
            registry_options=self.registry_options,
            tag=tag,
            base_annotations=self.base_annotations,
            progress=self.progress,
        )
        self.image_tag = result.reference
        return BuildResult(result.reference, result.digest, pushed, context, result)

    def generate_pod_spec(self, image: str | None = None) -> PodSpec:
        """A PodSpec running the last built image's command (Fairing's method)."""
        if self.context is None or (image is None and self.image_tag is None):
            raise PipelineError("generate_pod_spec() needs build() to have run first")
        return pod_spec_for(image or self.image_tag or "", self.context)

    # -- steps -----------------------------------------------------------------------

    def _target_python(self, base: Image) -> str | None:
        return self.python_version or python_version_from_env(base.config.env)

    def _check_python(self, context: BuildContext, base: Image) -> None:
        """A pickled function only loads on the Python minor version that pickled it."""
        if context.python_version is None:
            return
        image_python = self._target_python(base)
        if image_python is None:
            _log.warning(
                "%s does not say its Python version (PYTHON_VERSION); the runner "
                "checks it when the image starts",
                self.base_image,
            )
        elif image_python != context.python_version:
            raise PipelineError(
                f"the function is pickled with Python {context.python_version} but "
                f"{self.base_image} has Python {image_python}: pickles only load on the same "
                f"minor version; use a base image with Python {context.python_version}"
            )

    def _assemble(self, context: BuildContext, base: Image, code: Layer) -> Image:
        deps = self._dependency_layer(context, base)
        image = base
        if deps is not None:
            image = image.append(deps[0], created_by="ocibuild: pip install (dependencies)")
        image = image.append(code, created_by=f"ocibuild: {' '.join(context.command)} (code)")
        env = image_env(
            base.config.env, context, deps=deps is not None, deps_bin=deps is not None and deps[1]
        )
        image = image.with_config(
            entrypoint=list(context.command), env=env, working_dir=context.workdir
        )
        if self.config is not None:
            image = image.with_config(self.config)
        if self.annotations:
            image = image.with_annotations(self.annotations)
        return image

    def _dependency_layer(self, context: BuildContext, base: Image) -> tuple[Layer, bool] | None:
        if context.requirements is None or context.requirements.is_empty():
            return None
        version = self._target_python(base)
        if version is None:
            where = (
                f"{self.base_image} does not say its Python version (no PYTHON_VERSION in its env)"
            )
            raise DependencyError(
                f"{where}: pass python_version='3.11' for the dependency layer",
                flags=f"{where}: give --python-version X.Y for the dependency layer",
            )
        target = PythonTarget(base.platform, version, platform_tags=self.platform_tags)
        with phase(self.progress, "dependencies") as step:
            step.detail = f"{context.requirements.origin} for {target.describe()}"
            return dependency_layer(
                context,
                target,
                self.layer_options,
                self.layer_cache,
                cache_dir=self.cache_dir,
                pip_args=self.pip_args,
            )

    def _destination(self) -> tuple[str, str | TagRule | None]:
        """Where to write, and the tag to give it there (``None``: the one ``to`` names)."""
        if self.to is not None:
            return self.to, None
        tag = self.tag or content_tag
        if self.push and self.registry:
            return f"{self.registry}/{self.image_name}", tag
        safe = re.sub(r"[^a-z0-9._-]+", "-", self.image_name.lower()).strip("-") or "image"
        return f"oci:{self.cache_dir / 'images' / safe}", tag
