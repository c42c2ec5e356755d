"""The image configuration: what runs (entrypoint, env, ...) and which layers make the rootfs."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidOptionError, ManifestError
from ._descriptor import Platform
from ._digest import Digest
from ._fields import BOOLEAN, OBJECT, OBJECTS, STRING, STRING_MAP, STRINGS, check_fields, load_json

__all__ = ["ContainerConfig", "HistoryEntry", "ImageConfig", "check_text", "dumps", "json_text"]


def dumps(obj: Any) -> bytes:
    """Compact, deterministic JSON bytes (key order as built, no spaces)."""
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        # Undecodable bytes (a surrogate escape from a file name or argument) cannot be JSON.
        raise ManifestError(
            f"text {err.object[max(0, err.start - 20) : err.end + 20]!r} is not valid UTF-8 "
            "and cannot go into an image document"
        ) from None


def json_text(text: str) -> str:
    """``text`` with undecodable bytes (surrogate escapes of paths) written as ``\\xNN``.

    For labels that only describe (history, progress, errors), which must be valid UTF-8.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that escapes no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class HistoryEntry:
    """One line of ``docker history``: how a layer (or an empty step) was made."""

    created: str | None = None
    created_by: str | None = None
    comment: str | None = None
    author: str | None = None
    empty_layer: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form (paths in the text that are not UTF-8 escaped, as ``\\xNN``)."""
        out: dict[str, Any] = {}
        if self.created is not None:
            out["created"] = self.created
        if self.author:
            out["author"] = json_text(self.author)
        if self.created_by is not None:
            out["created_by"] = json_text(self.created_by)
        if self.comment:
            out["comment"] = json_text(self.comment)
        if self.empty_layer:
            out["empty_layer"] = True
        return out


@dataclass(frozen=True)
class ContainerConfig:
    """Changes to the ``config`` object of an image config; ``None`` leaves a field as it is."""

    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    env: Mapping[str, str] | None = None
    working_dir: str | None = None
    user: str | None = None
    labels: Mapping[str, str] | None = None
    exposed_ports: Sequence[str] | None = None
    volumes: Sequence[str] | None = None
    stop_signal: str | None = None


@dataclass(frozen=True)
class ImageConfig:
    """An image config document, kept as its JSON object so unknown fields survive edits."""

    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: bytes) -> ImageConfig:
        """Parse config bytes; raises :class:`ManifestError` when they are not a config."""
        obj = load_json(data, "image config")
        if not isinstance(obj, dict):
            raise ManifestError("image config is not a JSON object")
        _check_config(obj)
        return cls(obj)

    @classmethod
    def empty(cls, platform: Platform, created: str) -> ImageConfig:
        """The config of an image with no layers (the ``scratch`` base)."""
        raw: dict[str, Any] = {"created": created, "architecture": platform.architecture}
        if platform.variant:
            raw["variant"] = platform.variant
        raw["os"] = platform.os
        raw["config"] = {}
        raw["rootfs"] = {"type": "layers", "diff_ids": []}
        raw["history"] = []
        return cls(raw)

    def to_json(self) -> bytes:
        """Serialized bytes (deterministic)."""
        return dumps(self.raw)

    # -- reading -------------------------------------------------------------------------

    @property
    def platform(self) -> Platform:
        """The platform this config says the image is for (``linux/amd64`` when unset)."""
        return Platform(
            os=str(self.raw.get("os") or "linux"),
            architecture=str(self.raw.get("architecture") or "amd64"),
            variant=self.raw.get("variant") or None,
            os_version=self.raw.get("os.version") or None,
        )

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        """The uncompressed digests of the layers, base first."""
        rootfs = self.raw.get("rootfs") or {}
        try:
            return tuple(Digest.parse(d) for d in rootfs.get("diff_ids") or ())
        except ValueError as err:
            raise ManifestError(f"image config has an invalid diff_id: {err}") from err

    @property
    def history(self) -> tuple[Mapping[str, Any], ...]:
        """The history entries as JSON objects."""
        return tuple(self.raw.get("history") or ())

    @property
    def container(self) -> Mapping[str, Any]:
        """The ``config`` object (Entrypoint, Cmd, Env, ...)."""
        return self.raw.get("config") or {}

    @property
    def env(self) -> dict[str, str]:
        """``Env`` as a dict (later duplicates win, as in a container runtime)."""
        out: dict[str, str] = {}
        for item in self.container.get("Env") or ():
            key, _, value = str(item).partition("=")
            out[key] = value
        return out

    # -- changing ------------------------------------------------------------------------

    def _edit(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.raw))

    def with_layers(
        self, diff_ids: Sequence[Digest], history: Sequence[HistoryEntry]
    ) -> ImageConfig:
        """A config with ``diff_ids`` appended to the rootfs and ``history`` to the history."""
        raw = self._edit()
        rootfs = raw["rootfs"] = raw.get("rootfs") or {}  # absent or null
        rootfs["type"] = "layers"
        before = list(rootfs.get("diff_ids") or [])
        rootfs["diff_ids"] = [*before, *(str(d) for d in diff_ids)]
        described = sum(1 for h in raw.get("history") or () if not h.get("empty_layer"))
        # History must describe every layer or none: a base without history stays without.
        if history and described == len(before):
            raw["history"] = [*(raw.get("history") or ()), *(h.to_dict() for h in history)]
        return ImageConfig(raw)

    def with_created(self, created: str) -> ImageConfig:
        """A config with another ``created`` time."""
        check_text("created time", created)
        raw = self._edit()
        raw["created"] = created
        return ImageConfig(raw)

    def with_platform(self, platform: Platform) -> ImageConfig:
        """A config that claims another platform."""
        for name in ("os", "architecture", "variant"):
            value = getattr(platform, name)
            if value is not None:
                check_text(f"platform {name}", value)
        raw = self._edit()
        raw["os"], raw["architecture"] = platform.os, platform.architecture
        if platform.variant:
            raw["variant"] = platform.variant
        else:
            raw.pop("variant", None)
        return ImageConfig(raw)

    def with_container(self, changes: ContainerConfig) -> ImageConfig:
        """A config whose ``config`` object has ``changes`` applied (env and labels merge)."""
        _check_text(changes)
        raw = self._edit()
        cfg = raw.setdefault("config", {})
        if cfg is None:
            cfg = raw["config"] = {}
        if changes.entrypoint is not None:
            cfg["Entrypoint"] = list(changes.entrypoint) or None
            if changes.cmd is None:
                # A new entrypoint makes the base's Cmd meaningless (Docker does the same).
                cfg.pop("Cmd", None)
        if changes.cmd is not None:
            cfg["Cmd"] = list(changes.cmd) or None
        if changes.env is not None:
            env = self.env
            env.update(changes.env)
            cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
        if changes.working_dir is not None:
            cfg["WorkingDir"] = changes.working_dir
        if changes.user is not None:
            cfg["User"] = changes.user
        if changes.labels is not None:
            cfg["Labels"] = {**(cfg.get("Labels") or {}), **changes.labels}
        if changes.exposed_ports is not None:
            ports = dict(cfg.get("ExposedPorts") or {})
            for port in changes.exposed_ports:
                ports[port if "/" in port else f"{port}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        if changes.volumes is not None:
            cfg["Volumes"] = {**(cfg.get("Volumes") or {}), **{v: {} for v in changes.volumes}}
        if changes.stop_signal is not None:
            cfg["StopSignal"] = changes.stop_signal
        for key in [k for k, v in cfg.items() if v is None]:
            del cfg[key]
        return ImageConfig(raw)


_CONFIG_FIELDS = {
    "created": STRING,
    "author": STRING,
    "architecture": STRING,
    "os": STRING,
    "os.version": STRING,
    "os.features": STRINGS,
    "variant": STRING,
    "config": OBJECT,
    "rootfs": OBJECT,
    "history": OBJECTS,
}
_CONTAINER_FIELDS = {
    "User": STRING,
    "ExposedPorts": OBJECT,
    "Env": STRINGS,
    "Entrypoint": STRINGS,
    "Cmd": STRINGS,
    "Volumes": OBJECT,
    "WorkingDir": STRING,
    "Labels": STRING_MAP,
    "StopSignal": STRING,
}
_ROOTFS_FIELDS = {"type": STRING, "diff_ids": STRINGS}
_HISTORY_FIELDS = {
    "created": STRING,
    "created_by": STRING,
    "author": STRING,
    "comment": STRING,
    "empty_layer": BOOLEAN,
}


def _check_config(obj: Mapping[str, Any]) -> None:
    """Refuse a config whose fields that ocibuild reads or edits have the wrong types."""
    check_fields(obj, _CONFIG_FIELDS, "image config")
    check_fields(obj.get("config") or {}, _CONTAINER_FIELDS, "image config 'config'")
    rootfs = obj.get("rootfs") or {}
    check_fields(rootfs, _ROOTFS_FIELDS, "image config 'rootfs'")
    for index, diff_id in enumerate(rootfs.get("diff_ids") or ()):
        try:
            Digest.parse(diff_id)
        except ValueError as err:
            raise ManifestError(f"image config 'rootfs' field 'diff_ids[{index}]': {err}") from None
    for index, entry in enumerate(obj.get("history") or ()):
        check_fields(entry, _HISTORY_FIELDS, f"image config 'history[{index}]'")


def _check_text(changes: ContainerConfig) -> None:
    """Refuse config changes with text that JSON cannot hold, before any blob is written."""
    for name in ContainerConfig.__dataclass_fields__:
        value = getattr(changes, name)
        texts: list[str]
        if isinstance(value, Mapping):
            texts = [t for pair in value.items() for t in pair]
        elif isinstance(value, str):
            texts = [value]
        else:
            texts = list(value or ())
        for text in texts:
            check_text(f"{name} value", text)


def check_text(label: str, text: str) -> None:
    """Refuse text that JSON cannot hold (undecodable bytes), before any blob is written.

    ``label`` names the text in the :class:`InvalidOptionError`.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOptionError(
            f"{label} '{json_text(text)}' is not valid UTF-8; give UTF-8 text"
        ) from None
