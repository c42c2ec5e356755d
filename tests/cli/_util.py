"""Helpers the CLI verb tests share."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from tests.support import Registry
from tests.test_append import ocibuild

__all__ = ["ocibuild", "push_small", "repo", "sha256"]


def repo(registry: Registry, name: str) -> str:
    """A fresh repository on ``registry``: tests never see each other's tags."""
    return f"{registry.host}/{name}-{uuid.uuid4().hex[:8]}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_small(tmp_path: Path, dest: str, text: str = "hello") -> str:
    """Push a one-file scratch image to ``dest``; its digest."""
    src = tmp_path / f"src-{uuid.uuid4().hex[:6]}"
    src.mkdir()
    (src / "hello.txt").write_text(text)
    out = ocibuild("append", "--to", dest, f"{src}:/").stdout.strip()
    return out.rsplit("@", 1)[1]
