"""Transport spellings, parsed: where an image is read from or written to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._errors import InvalidReferenceError
from .oci import Reference

__all__ = ["Location"]

Kind = Literal["scratch", "registry", "oci", "docker-archive"]
_PATH_TRANSPORTS = ("oci:", "docker-archive:")


@dataclass(frozen=True)
class Location:
    """One of ``scratch``, ``REGISTRY/REPO[:TAG][@DIGEST]`` (or ``docker://...``),
    ``oci:PATH[:TAG]``, ``docker-archive:PATH[:REF]``."""

    kind: Kind
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
        for prefix in _PATH_TRANSPORTS:
            if text.startswith(prefix):
                # Split at the first ':' after the transport, as skopeo does.
                path, _, tag = text[len(prefix) :].partition(":")
                if not path:
                    raise InvalidReferenceError(f"{text!r} names no path: write {prefix}PATH[:TAG]")
                return cls(prefix[:-1], path=path, tag=tag or None, text=text)  # type: ignore[arg-type]
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
