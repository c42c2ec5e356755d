"""Fairing's configuration API: ``set_preprocessor``, ``set_builder``, ``set_deployer``, ``run``.

Port Fairing code by changing one import::

    import ocibuild as fairing          # was: from kubeflow import fairing

    fairing.config.set_preprocessor("python", input_files=["train.py"])
    fairing.config.set_builder("append", base_image="python:3.11-slim",
                               registry="registry.example.com/team", push=True)
    fairing.config.set_deployer("job")
    result = fairing.config.run()       # result.image: the pushed reference, pinned by digest
    preprocessor, builder, deployer = result   # Fairing's tuple still unpacks

``run()`` and ``build()`` log their phases ("Building the image ...", "Pushed ...",
"Deploying ...") at INFO on the ``ocibuild.config`` logger; when the program configured no
logging they reach stderr, with the builder's and deployer's steps ("pushing to ..."), as
Fairing's did. ``run(quiet=True)`` shows none of them.

The setters take Fairing's names and parameters; names are looked up through the plugin
manager, so a plugin's preprocessors, builders and deployers work the same way. The module-level
functions act on one shared :class:`Config`; make your own ``Config()`` for a separate one.
Inside a built image ``ocibuild`` is a stand-in whose ``config.run()`` builds nothing and
returns the names given to the setters, as ``(preprocessor, builder, deployer)``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from .pipeline._context import BuildContext
from .pipeline._errors import PipelineError
from .pipeline._protocols import (
    Builder,
    BuildResult,
    Deployer,
    DeployHandle,
    PodSpec,
    Preprocessor,
)
from .pipeline._run import RunResult, build_image, checked_handle, create, deploy_image

__all__ = [
    "DEFAULT_BUILDER",
    "DEFAULT_DEPLOYER",
    "Config",
    "build",
    "deploy",
    "fn",
    "get_builder",
    "get_deployer",
    "get_preprocessor",
    "reset",
    "run",
    "set_builder",
    "set_deployer",
    "set_preprocessor",
]

_log = logging.getLogger("ocibuild.config")
# The loggers whose INFO records a run shows on stderr when the program set up no logging.
_SHOWN = ("ocibuild.config", "ocibuild.builders", "ocibuild.deps", "ocibuild.deployers")

DEFAULT_BUILDER = "append"
DEFAULT_DEPLOYER = "job"


class Config:
    """One pipeline's choices: a preprocessor, a builder and a deployer, each with options."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the defaults: detected preprocessor, ``append`` builder, ``job`` deployer."""
        self._preprocessor: tuple[str | None, dict[str, Any]] = (None, {})
        self._builder: tuple[str, dict[str, Any]] = (DEFAULT_BUILDER, {})
        self._deployer: tuple[str, dict[str, Any]] = (DEFAULT_DEPLOYER, {})
        self._last_context: BuildContext | None = None

    def set_preprocessor(self, name: str | None = None, **kwargs: Any) -> None:
        """Choose the preprocessor; ``None``: ``notebook`` in a notebook kernel, else ``python``."""
        self._preprocessor = (name, kwargs)

    def set_builder(self, name: str = DEFAULT_BUILDER, **kwargs: Any) -> None:
        """Choose the builder (``append``: ``base_image``, ``registry``, ``image_name``, ...;
        ``docker``: the same, and ``dockerfile``, ``build_args``, ``target``, ``push``, ...)."""
        self._builder = (name, kwargs)

    def set_deployer(self, name: str = DEFAULT_DEPLOYER, **kwargs: Any) -> None:
        """Choose the deployer (``job``, ``local``, or a plugin's)."""
        self._deployer = (name, kwargs)

    def get_preprocessor(self) -> Preprocessor:
        """A new preprocessor from the current choice."""
        from .pipeline.preprocessors import default_preprocessor

        name, kwargs = self._preprocessor
        return create("preprocessor", name or default_preprocessor(), kwargs)

    def get_builder(self, preprocessor: Preprocessor) -> Builder:
        """A new builder for ``preprocessor`` from the current choice."""
        name, kwargs = self._builder
        return create("builder", name, {"preprocessor": preprocessor, **kwargs})

    def get_deployer(self) -> Deployer:
        """A new deployer from the current choice."""
        name, kwargs = self._deployer
        return create("deployer", name, kwargs)

    def run(self, *, quiet: bool = False) -> RunResult:
        """Preprocess, build (and push), then deploy; the result has ``.image`` and ``.handle``
        and unpacks as Fairing's ``(preprocessor, builder, deployer)``."""
        preprocessor = self.get_preprocessor()
        builder = self.get_builder(preprocessor)
        deployer = self.get_deployer()
        with _phases(quiet) as say:
            try:
                result = self._build(builder, say)
            finally:
                # Fairing's builders keep the last context; config.deploy() runs it again.
                context = getattr(builder, "context", None)
                self._last_context = context if isinstance(context, BuildContext) else None
            say("Deploying with the %s deployer...", self._deployer[0])
            handle = deploy_image(deployer, builder, result)
            say("Deployed %s", result.image)
        return RunResult(result.image, preprocessor, builder, deployer, handle, result)

    def build(self, *, quiet: bool = False) -> str:
        """Preprocess and build (and push) only; the image reference pinned by digest."""
        builder = self.get_builder(self.get_preprocessor())
        with _phases(quiet) as say:
            result = self._build(builder, say)
        self._last_context = result.context
        return result.image

    def _build(self, builder: Builder, say: Callable[..., None]) -> BuildResult:
        say("Building the image with the %s builder...", self._builder[0])
        start = time.monotonic()
        result = build_image(builder)
        done = "Pushed" if result.pushed else "Wrote"
        say("%s %s (%.1f s)", done, result.image, time.monotonic() - start)
        return result

    def deploy(self, pod_spec: PodSpec) -> DeployHandle:
        """Deploy a pod spec with the chosen deployer (Fairing's ``config.deploy``)."""
        if self._last_context is None and self._deployer[0] == "local":
            raise PipelineError("the local deployer needs a build first: call run() or build()")
        deployer = self.get_deployer()
        return checked_handle(deployer, deployer.deploy(pod_spec, self._last_context))

    def fn(self, func: Callable[..., Any]) -> Callable[[], RunResult]:
        """A callable that builds ``func`` with the function preprocessor and runs it."""

        def run_function() -> RunResult:
            self.set_preprocessor("function", function_obj=func)
            return self.run()

        run_function.__name__ = getattr(func, "__name__", "run_function")
        run_function.__doc__ = getattr(func, "__doc__", None)
        return run_function


@contextlib.contextmanager
def _phases(quiet: bool) -> Iterator[Callable[..., None]]:
    """A function logging one phase at INFO. When the program set up no logging, the phases
    and the steps of the build and deploy (``ocibuild.builders``, ``.deps``, ``.deployers``)
    reach stderr meanwhile, one line each, as Fairing's did."""
    if quiet:
        yield lambda *args: None
        return
    logger = logging.getLogger("ocibuild")
    if logger.hasHandlers():  # the program's logging decides what is shown, and where
        yield lambda *args: _log.info(*args)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(lambda record: record.name.startswith(_SHOWN))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lambda *args: _log.info(*args)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


_config = Config()

reset = _config.reset
set_preprocessor = _config.set_preprocessor
set_builder = _config.set_builder
set_deployer = _config.set_deployer
get_preprocessor = _config.get_preprocessor
get_builder = _config.get_builder
get_deployer = _config.get_deployer
run = _config.run
build = _config.build
deploy = _config.deploy
fn = _config.fn
