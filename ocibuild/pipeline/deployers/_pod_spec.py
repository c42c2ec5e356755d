"""Editing a pod spec dict that may be only partly filled in.

Pod spec mutators run on whatever the builder and the mutators before them left: a spec
without ``containers``, a container without ``env``, ``resources: None``. The edits here
read a missing or ``None`` field as empty and fill it in. They are idempotent: adding
what is already there changes nothing, so two mutators mounting the same secret give one
volume.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, cast

from .._errors import PipelineError
from .._protocols import PodSpec

__all__ = [
    "add_env_from",
    "add_volume",
    "containers_of",
    "dict_field",
    "list_field",
    "mount",
    "set_env",
    "volume_name",
]

# A volume name is a DNS-1123 label.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_MAX = 63


def containers_of(pod_spec: PodSpec) -> list[dict[str, Any]]:
    """The pod's containers (not its init containers); none when ``containers`` is unset."""
    items = cast("dict[str, Any]", pod_spec).get("containers")
    if not isinstance(items, (list, tuple)):
        return []
    return [c for c in items if isinstance(c, dict)]


def list_field(obj: dict[str, Any], key: str) -> list[Any]:
    """``obj[key]`` as a list kept in ``obj``: a new one where it is missing or None."""
    value = obj.get(key)
    if value is None or isinstance(value, tuple):
        value = list(value or ())
        obj[key] = value
    if not isinstance(value, list):
        raise PipelineError(f"pod spec field {key!r} is a {type(value).__name__}, not a list")
    return value


def dict_field(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` as a dict kept in ``obj``: a new one where it is missing or None."""
    value = obj.get(key)
    if value is None:
        value = obj[key] = {}
    if not isinstance(value, dict):
        raise PipelineError(f"pod spec field {key!r} is a {type(value).__name__}, not a mapping")
    return value


def volume_name(name: str) -> str:
    """``name`` if it is a valid volume name, else a valid one derived from it (a secret's
    name may hold dots, or be longer than a volume name may be)."""
    if len(name) <= _LABEL_MAX and _LABEL.fullmatch(name):
        return name
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "volume"
    return f"{cleaned[: _LABEL_MAX - 7].rstrip('-')}-{_short_hash(name)}"


def add_volume(pod_spec: PodSpec, volume: Mapping[str, Any]) -> str:
    """Add ``volume`` to the pod unless one with the same source is there; its name in the pod.

    A different volume holding the name already keeps it: this one gets a suffixed name.
    """
    volumes = list_field(cast("dict[str, Any]", pod_spec), "volumes")
    source = _source(volume)
    for existing in volumes:
        if isinstance(existing, dict) and existing.get("name") and _source(existing) == source:
            return str(existing["name"])
    name = str(volume["name"])
    if any(isinstance(v, dict) and v.get("name") == name for v in volumes):
        name = f"{name[: _LABEL_MAX - 7].rstrip('-')}-{_short_hash(source)}"
    volumes.append({"name": name, **source})
    return name


def mount(
    container: dict[str, Any],
    name: str,
    mount_path: str,
    *,
    read_only: bool = False,
    sub_path: str | None = None,
) -> None:
    """Mount the pod's volume ``name`` at ``mount_path``; a second volume there is an error."""
    wanted: dict[str, Any] = {"name": name, "mountPath": mount_path}
    if sub_path:
        wanted["subPath"] = sub_path
    if read_only:
        wanted["readOnly"] = True
    mounts = list_field(container, "volumeMounts")
    for existing in mounts:
        if isinstance(existing, dict) and existing.get("mountPath") == mount_path:
            if existing == wanted:
                return
            raise PipelineError(
                f"container {container.get('name', '?')!r} already mounts "
                f"{existing.get('name')!r} at {mount_path}: choose another mount path"
            )
    mounts.append(wanted)


def set_env(container: dict[str, Any], var: Mapping[str, Any]) -> None:
    """Set one ``env`` entry: it replaces one of the same name where that one stood (so a
    ``$(NAME)`` after it still sees it), and the later mutator wins."""
    env = list_field(container, "env")
    same = [i for i, e in enumerate(env) if isinstance(e, dict) and e.get("name") == var["name"]]
    if not same:
        env.append(dict(var))
        return
    env[same[0]] = dict(var)
    for i in reversed(same[1:]):
        del env[i]


def add_env_from(container: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Add one ``envFrom`` source (all keys of a secret or config map) unless it is there."""
    env_from = list_field(container, "envFrom")
    if dict(source) not in env_from:
        env_from.append(dict(source))


def _source(volume: Mapping[str, Any]) -> dict[str, Any]:
    """A volume without its name: where its files come from."""
    return {k: v for k, v in volume.items() if k != "name"}


def _short_hash(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:6]
