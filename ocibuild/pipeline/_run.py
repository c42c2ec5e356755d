"""The pipeline, preprocessor -> builder -> deployer, and ``ocibuild.run(target, ...)``.

``run`` is the short form for new code: the target says which preprocessor fits (a callable:
``function``; a ``.ipynb``: ``notebook``; a file or directory: ``python``), and each keyword
option goes to every component whose factory names it as a parameter (``env`` reaches both a
preprocessor and the ``local`` deployer). ``preprocessor_options``, ``builder_options`` and
``deployer_options`` address one component exactly.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, SupportsIndex, overload

from ._errors import PipelineError, PluginError
from ._protocols import (
    Builder,
    BuildResult,
    ContextStore,
    Deployer,
    DeployHandle,
    PodSpecMutator,
    Preprocessor,
)

__all__ = [
    "RunResult",
    "build_image",
    "checked_handle",
    "context_store",
    "create",
    "deploy_image",
    "run",
    "run_pipeline",
    "target_options",
]

_log = logging.getLogger("ocibuild")


@dataclass(frozen=True)
class RunResult:
    """What a pipeline run made: the image pinned by digest, and the deployer's handle.

    Iterating, indexing and ``len()`` see ``(preprocessor, builder, deployer)``, the tuple
    Fairing's ``run()`` returned: ``pre, builder, dep = result`` and ``result[1]`` both work.
    """

    image: str
    preprocessor: Preprocessor
    builder: Builder
    deployer: Deployer
    handle: DeployHandle
    build: BuildResult

    def _fairing(self) -> tuple[Preprocessor, Builder, Deployer]:
        return (self.preprocessor, self.builder, self.deployer)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._fairing())

    def __len__(self) -> int:
        return 3

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        return self._fairing()[index]


# The protocol each kind's factory must make, and how an error names it. A pod spec mutator
# is any callable.
_CONTRACTS: Mapping[str, tuple[type | None, str]] = {
    "preprocessor": (Preprocessor, "a Preprocessor (preprocess() -> BuildContext)"),
    "builder": (Builder, "a Builder (build() -> BuildResult, generate_pod_spec())"),
    "deployer": (Deployer, "a Deployer (deploy(pod_spec, context) -> DeployHandle)"),
    "context_store": (ContextStore, "a ContextStore (put(context, key) -> url, delete(url))"),
    "pod_spec_mutator": (None, "a pod spec mutator (a callable)"),
}


@overload
def create(
    kind: Literal["preprocessor"], name: str, options: Mapping[str, Any]
) -> Preprocessor: ...
@overload
def create(kind: Literal["builder"], name: str, options: Mapping[str, Any]) -> Builder: ...
@overload
def create(kind: Literal["deployer"], name: str, options: Mapping[str, Any]) -> Deployer: ...
@overload
def create(
    kind: Literal["context_store"], name: str, options: Mapping[str, Any]
) -> ContextStore: ...
@overload
def create(
    kind: Literal["pod_spec_mutator"], name: str, options: Mapping[str, Any]
) -> PodSpecMutator: ...
@overload
def create(kind: str, name: str, options: Mapping[str, Any]) -> object: ...


def create(kind: str, name: str, options: Mapping[str, Any]) -> object:
    """A component from its plugin factory; options it does not take are one clear error,
    and so is a factory that makes something else than its kind's protocol."""
    from ._plugins import lookup, provider_of, resolve_pod_spec_mutators

    factory = lookup(kind, name)
    if kind == "deployer" and "pod_spec_mutators" in options:
        # Names become callables here, so deployers need no plugin lookups of their own.
        mutators = resolve_pod_spec_mutators(options["pod_spec_mutators"])
        options = {**options, "pod_spec_mutators": mutators}
    if kind == "builder" and "context_store_factory" not in options:
        # A builder that names context stores (cluster) gets them made here, as deployers get
        # their mutators: builders make no plugin lookups of their own.
        params = _parameter_names(factory)
        if "context_store_factory" in params:
            options = {**options, "context_store_factory": context_store}
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as err:
        raise PipelineError(f"{kind} {name!r}: {err}") from err
    except ValueError:  # no signature to check (a builtin); let the call decide
        pass
    component = factory(**options)
    protocol, what = _CONTRACTS[kind]
    if not (callable(component) if protocol is None else isinstance(component, protocol)):
        raise PluginError(
            f"the {kind.replace('_', ' ')} {name!r} from {provider_of(kind, name)} made a "
            f"{type(component).__name__}, not {what}"
        )
    return component


def context_store(
    name: str, options: Mapping[str, Any], defaults: Mapping[str, Any]
) -> ContextStore:
    """The store ``name`` with ``options``, and those of ``defaults`` it takes (a builder's
    namespace and kubeconfig reach an in-cluster store; an object store takes none)."""
    from ._plugins import lookup

    params = _parameter_names(lookup("context_store", name))
    taken = {k: v for k, v in defaults.items() if k in params and v is not None}
    return create("context_store", name, {**taken, **options})


def _parameter_names(factory: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


def build_image(builder: Builder) -> BuildResult:
    """Run the builder, then the after_build and after_push hooks."""
    from ._plugins import get_plugins

    result = builder.build()
    if not isinstance(result, BuildResult):
        raise PipelineError(
            f"builder {type(builder).__name__}.build() returned {type(result).__name__}, "
            "expected a BuildResult"
        )
    hook = get_plugins().hook
    hook.ocibuild_after_build(context=result.context, image_ref=result.image)
    if result.pushed:
        hook.ocibuild_after_push(reference=result.image)
    _log.info("built %s", result.image)
    return result


def deploy_image(deployer: Deployer, builder: Builder, result: BuildResult) -> DeployHandle:
    """The before_deploy hook, then ``deployer.deploy(pod spec, context)``; its handle."""
    from ._plugins import get_plugins

    pod_spec = builder.generate_pod_spec(result.image)
    get_plugins().hook.ocibuild_before_deploy(deployer=deployer, image_ref=result.image)
    return checked_handle(deployer, deployer.deploy(pod_spec, result.context))


def checked_handle(deployer: Deployer, handle: object) -> DeployHandle:
    """``handle``, once it is known to be what ``deployer.deploy()`` must return."""
    if not isinstance(handle, DeployHandle):
        raise PipelineError(
            f"deployer {type(deployer).__name__}.deploy() returned {type(handle).__name__}, "
            "expected a DeployHandle (status, wait, logs, delete)"
        )
    return handle


def run_pipeline(preprocessor: Preprocessor, builder: Builder, deployer: Deployer) -> RunResult:
    """Build with ``builder`` (which holds ``preprocessor``) and deploy with ``deployer``."""
    result = build_image(builder)
    handle = deploy_image(deployer, builder, result)
    return RunResult(result.image, preprocessor, builder, deployer, handle, result)


def target_options(target: Any, preprocessor: str | None) -> tuple[str, dict[str, Any]]:
    """The preprocessor a target implies, and the options that carry the target."""
    if callable(target) and not isinstance(target, (str, os.PathLike)):
        return preprocessor or "function", {"function_obj": target}
    path = Path(target)
    if path.suffix == ".ipynb":
        return preprocessor or "notebook", {"notebook_file": path}
    if path.is_dir():
        return preprocessor or "python", {"input_files": [path]}
    return preprocessor or "python", {"executable": path}


def _route(
    options: Mapping[str, Any], factories: Mapping[str, Callable[..., Any]]
) -> dict[str, dict[str, Any]]:
    """Give each option to every component whose factory has a parameter of that name."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params: dict[str, set[str]] = {}
    for role, factory in factories.items():
        try:
            signature = inspect.signature(factory)
        except ValueError:  # no signature to read: explicit *_options only
            params[role] = set()
            continue
        params[role] = {n for n, p in signature.parameters.items() if p.kind in named}
    routed: dict[str, dict[str, Any]] = {role: {} for role in factories}
    for key, value in options.items():
        takers = [role for role in factories if key in params[role]]
        if not takers:
            raise PipelineError(
                f"unknown option {key!r}: none of the {', '.join(factories)} takes it; "
                "use preprocessor_options=, builder_options= or deployer_options="
            )
        for role in takers:
            routed[role][key] = value
    return routed


def run(
    target: Any,
    *,
    base_image: str | None = None,
    registry: str | None = None,
    deployer: str = "job",
    preprocessor: str | None = None,
    builder: str = "append",
    preprocessor_options: Mapping[str, Any] | None = None,
    builder_options: Mapping[str, Any] | None = None,
    deployer_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """Build ``target`` (a file, directory, notebook or callable) into an image and deploy it."""
    from ._plugins import lookup

    pre_name, carried = target_options(target, preprocessor)
    factories = {
        "preprocessor": lookup("preprocessor", pre_name),
        "builder": lookup("builder", builder),
        "deployer": lookup("deployer", deployer),
    }
    routed = _route(options, factories)
    pre = create(
        "preprocessor",
        pre_name,
        {**carried, **routed["preprocessor"], **(preprocessor_options or {})},
    )
    builder_kwargs = {**routed["builder"], **(builder_options or {})}
    if base_image is not None:
        builder_kwargs["base_image"] = base_image
    if registry is not None:
        builder_kwargs["registry"] = registry
    built = create("builder", builder, {"preprocessor": pre, **builder_kwargs})
    dep = create("deployer", deployer, {**routed["deployer"], **(deployer_options or {})})
    return run_pipeline(pre, built, dep)
