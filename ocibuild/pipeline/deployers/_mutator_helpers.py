"""Pod spec mutators for everyday needs: resources, volumes, env, scheduling.

Each helper returns a mutator in ocibuild's shape, ``mutate(pod_spec, namespace)``, that edits
the pod spec dict in place. Container-level edits go to every container of the pod (not to
init containers), and every helper copes with a partly filled spec (see :mod:`._pod_spec`).
Arguments are checked when the helper is called, so a wrong one fails before any build.

Fairing's names (``get_resource_mutator``, ``mounting_pvc``, ``volume_mounts``, ``add_env``,
``get_node_selector``) take Fairing's arguments; the others are ocibuild's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from ..._errors import InvalidOptionError
from .._protocols import PodSpec, PodSpecMutator
from . import _pod_spec
from ._pod_spec import (
    add_env_from,
    add_volume,
    containers_of,
    dict_field,
    list_field,
    mount,
    set_env,
)

__all__ = [
    "FAIRING_VOLUME_PREFIX",
    "add_env",
    "add_tolerations",
    "env_from_config_map",
    "env_from_secret",
    "get_node_selector",
    "get_resource_mutator",
    "image_pull_secrets",
    "mount_config_map",
    "mount_secret",
    "mounting_pvc",
    "named",
    "node_selector",
    "volume_mounts",
]

FAIRING_VOLUME_PREFIX = "fairing-volume-"  # Fairing's volume names, kept for ported code

# A Kubernetes quantity without a sign: "2", "0.5", "500m", "4Gi", "1e3".
_QUANTITY = re.compile(r"(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")
_GIB_PER_GB = 1.073741824


def named(label: str, mutate: PodSpecMutator) -> PodSpecMutator:
    """``mutate``, calling itself ``label`` in reprs and errors (``mount_secret('db', ...)``)."""
    mutate.__name__ = mutate.__qualname__ = label
    return mutate


def _call(name: str, *args: object, **kwargs: object) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items() if v]
    return f"{name}({', '.join(shown)})"


# -- resources ---------------------------------------------------------------------------


def get_resource_mutator(
    cpu: float | str | None = None,
    memory: float | str | None = None,
    gpu: int | str | None = None,
    gpu_vendor: str = "nvidia",
) -> PodSpecMutator:
    """Resource limits for every container (Fairing's helper).

    ``cpu``: cores (``2``, ``0.5``) or a quantity (``"500m"``). ``memory``: a number is GB,
    converted to GiB as Fairing did (``4`` -> ``"3.73Gi"``); a string is a quantity passed as
    is (``"4Gi"``). ``gpu``: a count, set as ``{gpu_vendor}.com/gpu``. Only limits are set, as
    Fairing did: Kubernetes then requests what the limit says. Limits already set for other
    resources stay.
    """
    limits: dict[str, str] = {}
    if cpu is not None:
        limits["cpu"] = _quantity("cpu", cpu)
    if memory is not None:
        if isinstance(memory, (int, float)) and not isinstance(memory, bool):
            _positive("memory", memory)
            gib = round(memory / _GIB_PER_GB, 2)
            _positive("memory in GiB (from GB, to 2 places)", gib)
            limits["memory"] = f"{gib}Gi"
        else:
            limits["memory"] = _quantity("memory", memory)
    if gpu is not None:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", gpu_vendor):
            raise InvalidOptionError(f"gpu_vendor {gpu_vendor!r} is not a vendor name like nvidia")
        limits[f"{gpu_vendor}.com/gpu"] = _gpu_count(gpu)

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        for container in containers_of(pod_spec):
            dict_field(dict_field(container, "resources"), "limits").update(limits)

    return named(_call("get_resource_mutator", cpu=cpu, memory=memory, gpu=gpu), mutate)


def _positive(what: str, value: float) -> None:
    if not value > 0:
        raise InvalidOptionError(f"{what} must be more than 0, got {value!r}")


def _quantity(what: str, value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _positive(what, value)
        return str(value)
    if isinstance(value, str) and _QUANTITY.fullmatch(value):
        return value
    raise InvalidOptionError(
        f"{what} {value!r} is not a number or a Kubernetes quantity like '500m' or '4Gi'"
    )


def _gpu_count(value: object) -> str:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidOptionError(f"gpu must be a whole number of GPUs, got {value!r}")
    return str(value)


# -- volumes -----------------------------------------------------------------------------


def _volume_mutator(
    label: str,
    name: str,
    source: dict[str, Any],
    mount_path: str,
    *,
    read_only: bool,
    sub_path: str | None = None,
) -> PodSpecMutator:
    """Add the volume ``{name, **source}`` to the pod, mount it in every container."""
    volume = {"name": _pod_spec.volume_name(name), **source}

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        in_pod = add_volume(pod_spec, volume)
        for container in containers_of(pod_spec):
            mount(container, in_pod, mount_path, read_only=read_only, sub_path=sub_path)

    return named(label, mutate)


def volume_mounts(
    volume_type: str, volume_name: str, mount_path: str, sub_path: str | None = None
) -> PodSpecMutator:
    """Mount a ``"pvc"``, ``"secret"`` or ``"config_map"`` in every container (Fairing's
    helper; the volume is named ``fairing-volume-NAME`` as Fairing named it)."""
    sources: dict[str, dict[str, Any]] = {
        "pvc": {"persistentVolumeClaim": {"claimName": volume_name}},
        "secret": {"secret": {"secretName": volume_name}},
        "config_map": {"configMap": {"name": volume_name}},
    }
    if volume_type not in sources:
        raise InvalidOptionError(
            f"volume_type {volume_type!r} is not one of {', '.join(map(repr, sources))}"
        )
    return _volume_mutator(
        _call("volume_mounts", volume_type, volume_name, mount_path),
        FAIRING_VOLUME_PREFIX + volume_name,
        sources[volume_type],
        mount_path,
        read_only=False,
        sub_path=sub_path,
    )


def mounting_pvc(pvc_name: str, pvc_mount_path: str = "/mnt") -> PodSpecMutator:
    """Mount the persistent volume claim ``pvc_name`` in every container (Fairing's helper)."""
    return named(
        _call("mounting_pvc", pvc_name, pvc_mount_path),
        volume_mounts("pvc", pvc_name, pvc_mount_path),
    )


Items = Mapping[str, str] | Sequence[str] | None


def mount_secret(
    secret_name: str, mount_path: str, items: Items = None, *, optional: bool = False
) -> PodSpecMutator:
    """Mount the secret ``secret_name`` read-only at ``mount_path`` in every container.

    ``items``: only these keys, as ``{key: file name}`` or a list of keys. ``optional=True``:
    a missing secret mounts an empty directory instead of keeping the pod from starting.
    """
    source = _with_items({"secretName": secret_name}, items, optional)
    label = _call("mount_secret", secret_name, mount_path, optional=optional)
    volume = {"secret": source}
    return _volume_mutator(label, secret_name, volume, mount_path, read_only=True)


def mount_config_map(
    config_map_name: str, mount_path: str, items: Items = None, *, optional: bool = False
) -> PodSpecMutator:
    """Mount the config map ``config_map_name`` read-only at ``mount_path`` in every
    container; ``items`` and ``optional`` as for :func:`mount_secret`."""
    source = _with_items({"name": config_map_name}, items, optional)
    label = _call("mount_config_map", config_map_name, mount_path, optional=optional)
    volume = {"configMap": source}
    return _volume_mutator(label, config_map_name, volume, mount_path, read_only=True)


def _with_items(source: dict[str, Any], items: Items, optional: bool) -> dict[str, Any]:
    """Kubernetes ``items`` from ``{key: path}``, or from keys each under its own name."""
    if items is not None:
        pairs = items.items() if isinstance(items, Mapping) else ((k, k) for k in _keys(items))
        source["items"] = [{"key": key, "path": path} for key, path in pairs]
    if optional:
        source["optional"] = True
    return source


def _keys(keys: Iterable[str] | str) -> list[str]:
    return [keys] if isinstance(keys, str) else list(keys)


# -- env ---------------------------------------------------------------------------------


def add_env(env_vars: Mapping[str, str | int | float]) -> PodSpecMutator:
    """Set these environment variables in every container (Fairing's helper); a variable
    already set gets the new value."""
    values: dict[str, str] = {}
    for name, value in env_vars.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidOptionError(f"env {name!r}: {value!r} is not a string or a number")
        values[name] = str(value)

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        for container in containers_of(pod_spec):
            for name, value in values.items():
                set_env(container, {"name": name, "value": value})

    return named(_call("add_env", list(values)), mutate)


def _env_from(
    label: str, kind: str, name: str, keys: Mapping[str, str] | Iterable[str] | None, optional: bool
) -> PodSpecMutator:
    """Env from a secret or config map (``kind`` is ``secret`` or ``configMap``)."""
    ref: dict[str, Any] = {"name": name, **({"optional": True} if optional else {})}
    pairs = None
    if keys is not None:
        pairs = dict(keys) if isinstance(keys, Mapping) else {k: k for k in _keys(keys)}

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        for container in containers_of(pod_spec):
            if pairs is None:
                add_env_from(container, {f"{kind}Ref": dict(ref)})
                continue
            for env_name, key in pairs.items():
                selector = {**ref, "key": key}
                set_env(container, {"name": env_name, "valueFrom": {f"{kind}KeyRef": selector}})

    return named(label, mutate)


def env_from_secret(
    secret_name: str,
    keys: Mapping[str, str] | Iterable[str] | None = None,
    *,
    optional: bool = False,
) -> PodSpecMutator:
    """Environment variables from the secret ``secret_name``, in every container.

    ``keys``: a list of keys (each becomes a variable of its name), or ``{VARIABLE: key}``;
    none: every key of the secret (``envFrom``). ``optional=True``: a missing secret or key
    leaves the variable unset instead of keeping the pod from starting.
    """
    label = _call("env_from_secret", secret_name, optional=optional)
    return _env_from(label, "secret", secret_name, keys, optional)


def env_from_config_map(
    config_map_name: str,
    keys: Mapping[str, str] | Iterable[str] | None = None,
    *,
    optional: bool = False,
) -> PodSpecMutator:
    """Environment variables from the config map ``config_map_name``, in every container;
    ``keys`` and ``optional`` as for :func:`env_from_secret`."""
    label = _call("env_from_config_map", config_map_name, optional=optional)
    return _env_from(label, "configMap", config_map_name, keys, optional)


# -- scheduling and pulling --------------------------------------------------------------


def node_selector(labels: Mapping[str, str] | None) -> PodSpecMutator:
    """Run the pod only on nodes with these labels (added to any the pod has already)."""
    selector = dict(labels or {})
    for key, value in selector.items():
        if not isinstance(value, str):
            raise InvalidOptionError(f"node selector {key!r}: {value!r} is not a string")

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        if selector:
            dict_field(cast("dict[str, Any]", pod_spec), "nodeSelector").update(selector)

    return named(_call("node_selector", selector), mutate)


get_node_selector = node_selector  # Fairing's name


def add_tolerations(tolerations: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> PodSpecMutator:
    """Let the pod run on nodes with these taints: Kubernetes tolerations such as
    ``{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}`` (one, or a list)."""
    items = [tolerations] if isinstance(tolerations, Mapping) else list(tolerations)
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidOptionError(f"toleration {item!r} is not a mapping like {{'key': ...}}")
    wanted = [dict(item) for item in items]

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        present = list_field(cast("dict[str, Any]", pod_spec), "tolerations")
        present.extend(t for t in wanted if t not in present)

    return named(_call("add_tolerations", [t.get("key") for t in wanted]), mutate)


def image_pull_secrets(*secret_names: str) -> PodSpecMutator:
    """Pull the pod's images with the registry credentials in these secrets
    (``kubernetes.io/dockerconfigjson`` secrets of the pod's namespace)."""
    wanted = [{"name": name} for name in secret_names]

    def mutate(pod_spec: PodSpec, namespace: str | None) -> None:
        present = list_field(cast("dict[str, Any]", pod_spec), "imagePullSecrets")
        present.extend(s for s in wanted if s not in present)

    return named(_call("image_pull_secrets", *secret_names), mutate)
