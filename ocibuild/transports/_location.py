"""Transport spellings, parsed: where an image is read from or written to."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .._errors import InvalidReferenceError
from ..oci import Reference

__all__ = ["Location", "add_prefix"]

# Transports spelled PREFIX:PATH[:TAG]; the transport table adds the ones plugins register.
_PATH_TRANSPORTS = ["oci:", "docker-archive:"]
_lock = threading.Lock()


def add_prefix(kind: str) -> None:
    """Accept ``KIND:PATH[:TAG]`` spellings (the transport table calls this)."""
    with _lock:
        if f"{kind}:" not in _PATH_TRANSPORTS:
            _PATH_TRANSPORTS.append(f"{kind}:")


@dataclass(frozen=True)
class Location:
    """One of ``scratch``, ``REGISTRY/REPO[:TAG][@DIGEST]`` (or ``docker://...``),
    ``oci:PATH[:TAG]``, ``docker-archive:PATH[:REF]``."""

    kind: str  # scratch, registry, oci, docker-archive, or a registered prefix
    path: str | None = None
    tag: str | None = None
    reference: Reference | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Location:
        """Parse a spelling; raises :class:`InvalidReferenceError` with the accepted forms."""
        text = text.strip()
        if text == "scratch":
            return cls("scratch", text=text)
        with _lock:
            prefixes = tuple(_PATH_TRANSPORTS)
        for prefix in prefixes:
            if text.startswith(prefix):
                # Split at the first ':' after the transport, as skopeo does.
                path, _, tag = text[len(prefix) :].partition(":")
                if not path:
                    raise InvalidReferenceError(f"{text!r} names no path: write {prefix}PATH[:TAG]")
                return cls(prefix[:-1], path=path, tag=tag or None, text=text)
        if text.startswith("docker-daemon:"):
            raise InvalidReferenceError(
                f"{text!r}: the docker-daemon transport comes with the docker builder and is not "
                "available in this version; use a registry, oci: or docker-archive:"
            )
        scheme, sep, _ = text.partition("://")
        if sep and scheme != "docker":
            raise InvalidReferenceError(
                f"unknown transport in {text!r}: use REGISTRY/REPO:TAG, docker://..., "
                "oci:PATH[:TAG], docker-archive:PATH[:REF] or scratch"
            )
        return cls("registry", reference=Reference.parse(text), text=text)

    def __str__(self) -> str:
        if self.kind == "registry" and self.reference is not None:
            return str(self.reference)
        return self.text or self.kind
