"""Transport spellings, parsed: where an image is read from or written to."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from .._errors import InvalidReferenceError, OCIBuildError
from ..oci import Reference
from ._hooks import prefix_resolver, set_prefix_resolver

__all__ = ["DAEMON_PREFIX", "Location", "add_prefix", "check_spelling", "set_prefix_resolver"]

# Transports spelled PREFIX:PATH[:TAG]; the transport table adds the ones plugins register.
_PATH_TRANSPORTS = ["oci:", "docker-archive:"]
# The image store of a Docker-compatible engine: what follows is an image name, not a path.
DAEMON_PREFIX = "docker-daemon:"
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_lock = threading.Lock()
_log = logging.getLogger("ocibuild")
# WORD: that may be a transport nobody registered yet; not HOST:PORT, not SCHEME://.
_MAYBE_PREFIX = re.compile(r"([a-z][a-z0-9-]*):(?!//)(?!\d+(?:/|$))")
_resolving = threading.local()


def _resolved(text: str) -> bool:
    """Whether the resolver registered a transport for the prefix ``text`` starts with."""
    match = _MAYBE_PREFIX.match(text)
    resolver = prefix_resolver()
    if match is None or resolver is None or getattr(_resolving, "active", False):
        return False
    _resolving.active = True  # a plugin that parses a spelling while loading must not recurse
    try:
        if not resolver(match.group(1)):
            return False
    except OCIBuildError as err:
        # `python:3.11` looks like a prefix too: a broken plugin must not break plain
        # references, so it only fails spellings that cannot be anything but a transport.
        if not _is_reference(text):
            raise
        _log.warning("ignoring plugins while reading %r: %s", text, err)
        return False
    finally:
        _resolving.active = False
    with _lock:
        return f"{match.group(1)}:" in _PATH_TRANSPORTS


def _is_reference(text: str) -> bool:
    try:
        Reference.parse(text)
    except InvalidReferenceError:
        return False
    return True


def check_spelling(text: str) -> None:
    """Raise :class:`InvalidReferenceError` if ``text`` names no image, without loading
    plugins: a prefix no transport registered yet (``python:`` of ``python:3.11`` looks like
    one) is left to :meth:`Location.parse`, which asks the plugins."""
    match = _MAYBE_PREFIX.match(text.strip())
    if match is not None:
        prefix = f"{match.group(1)}:"
        with _lock:
            known = prefix in _PATH_TRANSPORTS or prefix == DAEMON_PREFIX
        if not known:
            return
    Location.parse(text)


def add_prefix(kind: str) -> None:
    """Accept ``KIND:PATH[:TAG]`` spellings (the transport table calls this)."""
    with _lock:
        if f"{kind}:" not in _PATH_TRANSPORTS:
            _PATH_TRANSPORTS.append(f"{kind}:")


@dataclass(frozen=True)
class Location:
    """One of ``scratch``, ``REGISTRY/REPO[:TAG][@DIGEST]`` (or ``docker://...``),
    ``oci:PATH[:TAG]``, ``docker-archive:PATH[:REF]``, ``docker-daemon:NAME[:TAG]``."""

    kind: str  # scratch, registry, oci, docker-archive, docker-daemon, or a registered prefix
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
        if text.startswith(DAEMON_PREFIX):
            return cls._daemon(text)
        if _resolved(text):
            return cls.parse(text)
        scheme, sep, _ = text.partition("://")
        if sep and scheme != "docker":
            raise InvalidReferenceError(
                f"unknown transport in {text!r}: use REGISTRY/REPO:TAG, docker://..., "
                "oci:PATH[:TAG], docker-archive:PATH[:REF], docker-daemon:NAME[:TAG] or scratch"
            )
        return cls("registry", reference=Reference.parse(text), text=text)

    @classmethod
    def _daemon(cls, text: str) -> Location:
        """``docker-daemon:NAME[:TAG]``, ``NAME@DIGEST`` or an image ID (``sha256:HEX``): the
        name is split as a reference is (a registry's port is not a tag), never normalised,
        so the engine sees the spelling the user gave."""
        name = text[len(DAEMON_PREFIX) :]
        if _IMAGE_ID.fullmatch(name):
            return cls("docker-daemon", path=name, text=text)
        try:
            Reference.parse(name, default_tag=None)
        except InvalidReferenceError as err:
            raise InvalidReferenceError(
                f"{err}; write docker-daemon:NAME[:TAG] (or an image ID, sha256:HEX)"
            ) from None
        if "@" in name:
            return cls("docker-daemon", path=name, text=text)
        colon = name.rfind(":")
        if colon > name.rfind("/"):
            return cls("docker-daemon", path=name[:colon], tag=name[colon + 1 :], text=text)
        return cls("docker-daemon", path=name, text=text)

    def __str__(self) -> str:
        if self.kind == "registry" and self.reference is not None:
            return str(self.reference)
        return self.text or self.kind
