"""``WWW-Authenticate`` challenges and token scopes (``repository:NAME:pull,push``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Challenge", "covers", "merge_scopes", "parse_challenges", "repository_scope"]

# A token, optionally followed by "=value" where value is a token or a quoted string. An
# unquoted value holds no '"', so an unterminated quoted string ends the parse instead of
# being read as a value with its last character cut off.
_ITEM = re.compile(
    r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*))?\s*,?'
)


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: ``basic`` or ``bearer`` with its parameters."""

    scheme: str
    realm: str = ""
    service: str | None = None
    scopes: tuple[str, ...] = ()


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value (RFC 7235 syntax, quoted commas kept)."""
    found: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while pos < len(header):
        match = _ITEM.match(header, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        name, value = match.group(1), match.group(2)
        if value is None:
            found.append((name.lower(), {}))
        elif found:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            found[-1][1][name.lower()] = value
    return [
        Challenge(
            scheme,
            params.get("realm", ""),
            params.get("service"),
            tuple(params["scope"].split()) if params.get("scope") else (),
        )
        for scheme, params in found
        if scheme in ("basic", "bearer")
    ]


def repository_scope(repository: str, *actions: str) -> str:
    """``repository:NAME:a,b``."""
    return f"repository:{repository}:{','.join(actions)}"


def _split(scope: str) -> tuple[str, str, frozenset[str]]:
    # NAME may hold "host:port/", so the type ends at the first ':' and actions at the last.
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return kind, name, frozenset(a for a in actions.split(",") if a)


def merge_scopes(*groups: Iterable[str]) -> tuple[str, ...]:
    """One scope per resource with the union of actions, in first-seen order."""
    merged: dict[tuple[str, str], set[str]] = {}
    for group in groups:
        for scope in group:
            kind, name, actions = _split(scope)
            if kind and name:
                merged.setdefault((kind, name), set()).update(actions)
    return tuple(
        f"{kind}:{name}:{','.join(sorted(actions, key=_action_order))}"
        for (kind, name), actions in merged.items()
    )


def _action_order(action: str) -> tuple[int, str]:
    order = ("pull", "push", "delete", "*")
    return (order.index(action) if action in order else len(order), action)


def covers(have: Iterable[str], want: Iterable[str]) -> bool:
    """Whether a token asked for ``have`` was asked for everything in ``want``."""
    granted: dict[tuple[str, str], frozenset[str]] = {}
    for scope in have:
        kind, name, actions = _split(scope)
        granted[(kind, name)] = granted.get((kind, name), frozenset()) | actions
    for scope in want:
        kind, name, actions = _split(scope)
        got = granted.get((kind, name))
        if got is None or not ("*" in got or actions <= got):
            return False
    return True
