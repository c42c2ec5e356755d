"""Image references in the Docker grammar: ``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from .._errors import InvalidDigestError, InvalidReferenceError
from ._digest import Digest

__all__ = ["DOCKER_HUB", "Reference"]

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?$"
)
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A parsed registry reference; ``str()`` gives the fully qualified form."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = "latest") -> Reference:
        """Parse a reference, applying Docker Hub defaults (``docker.io``, ``library/``).

        ``default_tag`` is used when neither a tag nor a digest is given.
        """
        original = text
        if text.startswith("docker://"):
            text = text[len("docker://") :]
        if not text or text != text.strip():
            raise _bad(original, "it is empty or has surrounding spaces")

        digest: Digest | None = None
        if "@" in text:
            text, _, digest_text = text.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except InvalidDigestError as err:
                raise _bad(original, f"the digest is invalid ({err})") from err

        tag: str | None = None
        slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not _TAG.match(tag):
                raise _bad(
                    original,
                    f"tag {tag!r} is invalid (letters, digits, '_', '.', '-'; at most 128)",
                )

        registry, repository = _split_domain(text)
        if not _HOST.match(registry):
            raise _bad(original, f"registry host {registry!r} is invalid")
        for part in repository.split("/"):
            if not _COMPONENT.match(part):
                hint = " (repository names must be lowercase)" if part.lower() != part else ""
                raise _bad(original, f"repository component {part!r} is invalid{hint}")
        if len(registry) + 1 + len(repository) > _MAX_NAME:
            raise _bad(original, f"the name is longer than {_MAX_NAME} characters")
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, repository, tag, digest)

    @property
    def api_host(self) -> str:
        """The host to talk HTTP to (Docker Hub's API lives on ``registry-1.docker.io``)."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest if present, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or "latest"

    @property
    def is_loopback(self) -> bool:
        """Whether the registry is on this machine (plain HTTP is allowed without asking)."""
        host = self.registry
        if host.startswith("["):
            host = host[1 : host.index("]")]
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def with_tag(self, tag: str) -> Reference:
        """The same repository at another tag (dropping any digest)."""
        if not _TAG.match(tag):
            raise InvalidReferenceError(f"invalid tag {tag!r}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: Digest) -> Reference:
        """The same repository pinned to ``digest`` (the tag is kept for display)."""
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository


def _bad(text: str, why: str) -> InvalidReferenceError:
    return InvalidReferenceError(f"invalid image reference {text!r}: {why}")
