"""A small append onto a registry base makes as few round trips as the protocol allows.

Counted from the registry's access log, so every request the CLI sends is seen. A regression
(a second ``/v2/`` ping, a HEAD or mount more) changes the count and fails.
"""

from __future__ import annotations

import collections
import os
import uuid
from pathlib import Path

from tests.support import BaseInRegistry, LoggedRequest, Registry
from tests.test_append import ocibuild


def _append(registry: Registry, base: str, src: Path, dest: str) -> list[LoggedRequest]:
    registry.mark()
    ocibuild("append", "--base", base, "--to", dest, f"{src}:/payload.bin")
    return registry.requests(at_least=1)


def _methods(requests: list[LoggedRequest]) -> dict[str, int]:
    return dict(collections.Counter(r.method for r in requests))


def test_small_append_onto_a_registry_base_makes_14_requests_then_8(
    registry: Registry, base_in_registry: BaseInRegistry, tmp_path: Path
) -> None:
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(1024))
    dest = f"{registry.host}/small-{uuid.uuid4().hex[:8]}:1"

    first = _append(registry, base_in_registry.oci, src, dest)
    # One ping for the pull of the base and the push (one shared connection); the base's
    # manifest and config; per base layer a HEAD and a mount; the new (streamed) layer as
    # POST, PATCH, PUT; the config as HEAD, POST, PUT carrying it; the manifest.
    assert [r.path for r in first if r.path == "/v2/"] == ["/v2/"]
    assert _methods(first) == {"GET": 3, "HEAD": 3, "POST": 4, "PATCH": 1, "PUT": 3}, first
    assert all(r.method == "HEAD" or (r.status or 999) < 300 for r in first), first

    again = _append(registry, base_in_registry.oci, src, dest)
    # Nothing new: the base read again, a HEAD per blob, the manifest.
    assert _methods(again) == {"GET": 3, "HEAD": 4, "PUT": 1}, again
