"""Applying pod spec mutators, in ocibuild's shape or in Fairing's.

A mutator edits the pod spec before the deployer creates what runs it. Two call shapes work,
told apart by the mutator's signature:

- ocibuild's ``mutate(pod_spec, namespace)``: ``pod_spec`` is the PodSpec dict (JSON form).
- Fairing's ``mutate(backend, pod_spec, namespace)``: ``pod_spec`` is a
  ``kubernetes.client.V1PodSpec`` made from the dict (so the ``kubernetes`` package must be
  installed: ``pip install 'ocibuild[kubernetes]'``), and the dict is made again from it
  afterwards. ``backend`` is what the deployer passes, an object with
  ``secret_exists(name, namespace) -> bool`` like Fairing's ``KubeManager``.

A signature that takes two positional arguments is ocibuild's; one that needs three is
Fairing's. Mutators run in the order given. A mutator edits in place and returns None; one
that returns a new pod spec instead (a mapping with ``containers``, or a ``V1PodSpec``) has
that one taken. Any other return value is ignored, as Fairing ignored them.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, cast

from ..._errors import OCIBuildError
from .._errors import DeployError, PipelineError
from .._protocols import PodSpec

__all__ = ["Shape", "apply_pod_spec_mutators", "mutator_name", "mutator_shape"]

Shape = Literal["ocibuild", "fairing"]


def mutator_name(mutator: object) -> str:
    """How errors name a mutator: its ``__qualname__`` (a helper's says what it was made with)."""
    target = mutator.func if isinstance(mutator, functools.partial) else mutator
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return str(name)


def mutator_shape(mutator: object) -> Shape:
    """``"ocibuild"`` for ``(pod_spec, namespace)``, ``"fairing"`` for ``(backend, pod_spec,
    namespace)``; anything else is a :class:`PipelineError`."""
    if not callable(mutator):
        raise PipelineError(
            f"pod spec mutator {mutator!r} is not callable: pass a function, or give its "
            "plugin name through config.set_deployer() or ocibuild.run()"
        )
    try:
        signature = inspect.signature(mutator)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return "ocibuild"
    for shape, count in (("ocibuild", 2), ("fairing", 3)):
        try:
            signature.bind(*range(count))
        except TypeError:
            continue
        return cast("Shape", shape)
    raise PipelineError(
        f"pod spec mutator {mutator_name(mutator)} takes {signature}: a mutator takes "
        "(pod_spec, namespace), or Fairing's (backend, pod_spec, namespace)"
    )


def apply_pod_spec_mutators(
    mutators: Iterable[Callable[..., object]],
    pod_spec: PodSpec,
    namespace: str | None,
    backend: object = None,
) -> PodSpec:
    """Apply ``mutators`` in order to ``pod_spec``, which ends up holding the result (and is
    returned). Nothing changes unless all of them succeed.

    A mutator that is not one (:func:`mutator_shape`), or a Fairing-shaped one without the
    ``kubernetes`` package, is a :class:`PipelineError` before any runs; one that raises is a
    :class:`DeployError` naming it.
    """
    shaped = [(mutator, mutator_shape(mutator)) for mutator in mutators]
    fairing = [m for m, shape in shaped if shape == "fairing"]
    client = _kubernetes_client(fairing[0]) if fairing else None
    work = cast("dict[str, Any]", copy.deepcopy(pod_spec))
    for mutator, shape in shaped:
        try:
            if shape == "fairing":
                work = _call_fairing(client, mutator, work, namespace, backend)
            else:
                result = mutator(work, namespace)
                if isinstance(result, Mapping) and "containers" in result and result is not work:
                    work = dict(result)
        except Exception as err:
            raise DeployError(
                f"pod spec mutator {mutator_name(mutator)} failed: {_reason(err)}"
            ) from err
    spec = cast("dict[str, Any]", pod_spec)
    spec.clear()
    spec.update(work)
    return pod_spec


def _reason(err: BaseException) -> str:
    """One line: ocibuild's own message as it is, a foreign one after its type."""
    text = " ".join(str(err).split())
    if isinstance(err, OCIBuildError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _kubernetes_client(mutator: object) -> Any:
    try:
        from kubernetes import client
    except ImportError as err:
        raise PipelineError(
            f"pod spec mutator {mutator_name(mutator)} takes Fairing's (backend, pod_spec, "
            "namespace) and needs the kubernetes client: pip install 'ocibuild[kubernetes]'"
        ) from err
    return client


# -- Fairing's shape: the dict as a V1PodSpec and back -----------------------------------


def _call_fairing(
    client: Any,
    mutator: Callable[..., object],
    spec: dict[str, Any],
    namespace: str | None,
    backend: object,
) -> dict[str, Any]:
    api = client.ApiClient()
    try:
        model = _to_model(api, spec)
        result = mutator(backend, model, namespace)
        if isinstance(result, client.V1PodSpec):
            model = result
        elif isinstance(result, Mapping) and "containers" in result:
            return dict(result)
        with warnings.catch_warnings():
            # The client's models do not check what a mutator assigns, and warn when they
            # serialise a number where the schema says string; the API takes the number.
            warnings.filterwarnings("ignore", "Pydantic serializer warnings", UserWarning)
            out = cast("dict[str, Any]", api.sanitize_for_serialization(model))
    finally:
        api.close()
    # Fields this client does not know would be lost on the way: keep the top-level ones.
    known = set(client.V1PodSpec.attribute_map.values())
    out.update({k: v for k, v in spec.items() if k not in known})
    return out


def _to_model(api: Any, spec: dict[str, Any]) -> object:
    """The spec as a ``V1PodSpec``, through the client's own deserialisation."""
    text = json.dumps(_quantities_as_strings(spec))
    try:
        if "response_text" in inspect.signature(api.deserialize).parameters:
            return api.deserialize(text, "V1PodSpec", "application/json")
        # The clients before the pydantic models (30, for one) read it from a response.
        return api.deserialize(_Body(text), "V1PodSpec")
    except Exception as err:
        raise PipelineError(
            f"the pod spec cannot be read as a kubernetes V1PodSpec for a mutator of "
            f"Fairing's shape: {_reason(err)}"
        ) from err


class _Body:
    """The one attribute the older clients' ``deserialize`` reads from a response."""

    def __init__(self, data: str) -> None:
        self.data = data


def _quantities_as_strings(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy with numbers in quantity maps as strings: the client's models take strings
    only, and a dict spec may say ``{"nvidia.com/gpu": 1}``."""
    out = copy.deepcopy(spec)
    owners = [out]  # a pod has resources of its own too
    for key in ("containers", "initContainers"):
        items = out.get(key)
        if isinstance(items, list):
            owners.extend(c for c in items if isinstance(c, dict))
    maps = [out.get("overhead")]
    for owner in owners:
        resources = owner.get("resources")
        if isinstance(resources, dict):
            maps.extend(resources.get(field) for field in ("limits", "requests"))
    for values in maps:
        if isinstance(values, dict):
            for key, value in values.items():
                numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
                values[key] = str(value) if numeric else value
    return out
