"""``--deployer-option K=V`` strings, typed by the parameter annotations of the factory.

``timeout=30`` becomes ``30.0`` for ``timeout: float | None``, ``wait=no`` becomes ``False``,
``labels={"team": "ml"}`` a dict (JSON, for list and mapping annotations). Unannotated
parameters, and factories whose annotations cannot be evaluated, keep the strings.
"""

from __future__ import annotations

import inspect
import json
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union, cast

from ._options import UsageError

__all__ = ["NotConvertible", "Parameters", "convert", "type_name"]

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
_NULL = ("", "none", "null")
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class NotConvertible(ValueError):
    """The value does not spell a value of the type (a union tries its next member)."""


class Parameters:
    """What a factory takes: its parameter names, whether it takes any keyword, their types."""

    def __init__(self, factory: Callable[..., Any]) -> None:
        try:
            params = inspect.signature(factory).parameters.values()
        except (TypeError, ValueError):  # no signature to read (a builtin): take anything
            params = None
        self.any_keyword = params is None or any(p.kind is p.VAR_KEYWORD for p in params)
        self.names = [p.name for p in params or () if p.kind in _NAMED]
        self.defaults = {p.name: p.default for p in params or () if p.default is not p.empty}
        target = cast(Any, factory).__init__ if isinstance(factory, type) else factory
        hints = _hints(target)
        self.hints: dict[str, Any] = {n: h for n, h in hints.items() if n in self.names}

    def takes(self, name: str) -> bool:
        """Whether ``name`` can be passed."""
        return self.any_keyword or name in self.names

    def convert(self, pairs: Mapping[str, str], what: str) -> dict[str, Any]:
        """``pairs`` typed by the annotations; one :class:`UsageError` for a bad one."""
        out: dict[str, Any] = {}
        for name, value in pairs.items():
            if not self.takes(name):
                known = ", ".join(self.names) or "none"
                raise UsageError(f"--{what} {name}: no such option (options: {known})")
            if name not in self.hints:
                out[name] = value
                continue
            try:
                out[name] = convert(value, self.hints[name])
            except NotConvertible:
                raise UsageError(
                    f"--{what} {name}={value!r}: expected {type_name(self.hints[name])}"
                ) from None
        return out


def _hints(target: Any) -> dict[str, Any]:
    """The evaluated annotations of ``target``; one that cannot be evaluated (a name imported
    for type checkers only, as the builders' ``RegistryOptions``) is left out, and its value
    stays a string, without spoiling the others."""
    try:
        return typing.get_type_hints(target)
    except Exception:
        pass
    namespace = getattr(target, "__globals__", {})
    hints: dict[str, Any] = {}
    for name, annotation in getattr(target, "__annotations__", {}).items():
        one = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            hints.update(typing.get_type_hints(one, globalns=namespace))
        except Exception:
            continue
    return hints


def convert(value: str, annotation: Any) -> Any:
    """``value`` as ``annotation``, or :class:`NotConvertible`."""
    if annotation is Any or annotation is str or annotation is inspect.Parameter.empty:
        return value
    if annotation is type(None):
        if value.strip().lower() in _NULL:
            return None
        raise NotConvertible
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return _union(value, typing.get_args(annotation))
    if origin is Literal:
        return _literal(value, typing.get_args(annotation))
    if annotation is bool:
        return _bool(value)
    if annotation is int:
        try:
            return int(value)
        except ValueError:
            raise NotConvertible from None
    if annotation is float:
        try:
            return float(value)
        except ValueError:
            raise NotConvertible from None
    if _is_container(annotation):
        return _json(value, annotation)
    if isinstance(annotation, type) and issubclass(annotation, (Path, os.PathLike)):
        return Path(value)
    raise NotConvertible  # a stream, a client object: nothing a command line can spell


def _union(value: str, members: tuple[Any, ...]) -> Any:
    # Words first, free text last: for `str | bool` "false" is the bool, "main" the string.
    for member in sorted(members, key=_rank):
        try:
            return convert(value, member)
        except NotConvertible:
            continue
    raise NotConvertible


def _rank(annotation: Any) -> int:
    if annotation in (str, Any):
        return 7
    if annotation is bool:
        return 0
    if annotation in (int, float):
        return 1 if annotation is int else 2
    if typing.get_origin(annotation) is Literal:
        return 3
    if _is_container(annotation):
        return 4
    if annotation is type(None):
        return 6  # "none" is a None only when nothing else takes it
    return 5


def _bool(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise NotConvertible


def _literal(value: str, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if isinstance(choice, bool):
            try:
                if _bool(value) is choice:
                    return choice
            except NotConvertible:
                continue
        elif str(choice) == value:
            return choice
    raise NotConvertible


def _is_container(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return (
        isinstance(origin, type)
        and issubclass(origin, (Mapping, Sequence, set, frozenset))
        and not issubclass(origin, (str, bytes))
    )


def _json(value: str, annotation: Any) -> Any:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise NotConvertible from None
    if not _fits(parsed, annotation):
        raise NotConvertible
    origin = typing.get_origin(annotation) or annotation
    if origin in (tuple, set, frozenset):
        return origin(parsed)
    return parsed


def _fits(parsed: Any, annotation: Any) -> bool:
    """Whether JSON ``parsed`` has the shape of ``annotation`` (unknown types fit anything)."""
    origin = typing.get_origin(annotation) or annotation
    args = typing.get_args(annotation)
    if origin is Union or origin is types.UnionType:
        return any(_fits(parsed, a) for a in args)
    if annotation is type(None):
        return parsed is None
    if annotation is bool:
        return isinstance(parsed, bool)
    if annotation in (int, float):
        return isinstance(parsed, (int, float)) and not isinstance(parsed, bool)
    if annotation is str:
        return isinstance(parsed, str)
    if not isinstance(origin, type):
        return True
    if issubclass(origin, Mapping):
        key, item = args if len(args) == 2 else (Any, Any)
        return isinstance(parsed, dict) and all(
            _fits(k, key) and _fits(v, item) for k, v in parsed.items()
        )
    if _is_container(origin):
        item = args[0] if args else Any
        return isinstance(parsed, list) and all(_fits(v, item) for v in parsed)
    return True


def type_name(annotation: Any) -> str:
    """How an error names a type: ``float | None``, ``bool | 'always'``, ``JSON Mapping[...]``."""
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if annotation is bool:
        return "bool (true/false/yes/no/1/0)"
    if annotation is type(None):
        return "none"
    if _is_container(annotation):
        return "JSON " + _plain(annotation)
    return _plain(annotation)


def _plain(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")
