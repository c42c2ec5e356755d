"""Fields of JSON documents from outside: of the type the spec gives, or one line naming them.

A config whose ``Env`` is a string would otherwise become one variable per character, and a
manifest whose ``layers`` holds a string would fail deep inside with a ``TypeError``. Every
field ocibuild reads is checked here when the document is parsed; ``null`` counts as absent,
as Docker writes it for empty lists. Unknown fields are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ManifestError

__all__ = ["MAX_DOCUMENT", "MAX_SIZE", "check_descriptor", "check_fields", "load_json"]

MAX_SIZE = 2**53 - 1  # JSON's safe integers: a larger size is no real blob
# Documents read whole into memory (manifests, indexes, configs, index.json, manifest.json):
# twice the 4 MB the distribution spec asks registries to accept for a manifest.
MAX_DOCUMENT = 8 << 20
_MAX_SHOWN = 40

Check = tuple[Callable[[Any], bool], str]

STRING: Check = (lambda v: isinstance(v, str), "a string")
STRINGS: Check = (
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "a list of strings",
)
OBJECT: Check = (lambda v: isinstance(v, dict), "an object")
LIST: Check = (lambda v: isinstance(v, list), "a list")
OBJECTS: Check = (
    lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "a list of objects",
)
STRING_MAP: Check = (
    lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    "an object of strings",
)
BOOLEAN: Check = (lambda v: isinstance(v, bool), "true or false")
SIZE: Check = (
    lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SIZE,
    "a whole number from 0 to 2^53-1",
)

_DESCRIPTOR: dict[str, Check] = {
    "mediaType": STRING,
    "digest": STRING,
    "size": SIZE,
    "urls": STRINGS,
    "annotations": STRING_MAP,
    "data": STRING,
    "platform": OBJECT,
    "artifactType": STRING,
}
_PLATFORM: dict[str, Check] = {
    "os": STRING,
    "architecture": STRING,
    "variant": STRING,
    "os.version": STRING,
    "os.features": STRINGS,
}


def load_json(data: bytes, what: str) -> Any:
    """Parse JSON bytes; :class:`ManifestError` for bytes that are not JSON or nest too deep."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise ManifestError(f"{what} is not valid JSON: {err}") from err
    except RecursionError:
        raise ManifestError(f"{what} nests JSON too deeply to be a real document") from None


def check_fields(
    obj: Mapping[str, Any], fields: Mapping[str, Check], where: str, required: tuple[str, ...] = ()
) -> None:
    """Raise :class:`ManifestError` for the first field of ``obj`` that has the wrong type."""
    for key in required:
        if obj.get(key) is None:
            raise ManifestError(f"{where} lacks the '{key}' field")
    for key, (ok, expected) in fields.items():
        value = obj.get(key)
        if value is not None and not ok(value):
            raise ManifestError(f"{where} field '{key}' must be {expected}, not {_shown(value)}")


def check_descriptor(obj: Any, where: str) -> Mapping[str, Any]:
    """``obj`` if it is a well-typed descriptor object (its platform included)."""
    if not isinstance(obj, dict):
        raise ManifestError(f"{where} must be a descriptor object, not {_shown(obj)}")
    check_fields(obj, _DESCRIPTOR, where, ("mediaType", "digest", "size"))
    platform = obj.get("platform")
    if platform is not None:
        check_fields(platform, _PLATFORM, f"{where}.platform", ("os", "architecture"))
    return obj


def _shown(value: Any) -> str:
    kind = {
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
    text = json.dumps(value, ensure_ascii=True)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return f"{kind} ({text})"
