"""How to reach registries: insecure hosts, CA bundle, credentials, concurrency, retries."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..._errors import InvalidOptionError, RegistryError
from ..._version import __version__

if TYPE_CHECKING:
    import ssl

__all__ = ["RETRY_BUDGET_ENV", "RegistryOptions", "default_retry_budget", "tls_context"]

RETRY_BUDGET_ENV = "OCIBUILD_RETRY_BUDGET"
_DEFAULT_RETRY_BUDGET = 120.0


def default_retry_budget() -> float:
    """The retry budget when none is given: ``$OCIBUILD_RETRY_BUDGET`` seconds, else 120."""
    text = os.environ.get(RETRY_BUDGET_ENV, "").strip()
    if not text:
        return _DEFAULT_RETRY_BUDGET
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidOptionError(
            f"${RETRY_BUDGET_ENV}={text!r}: give a number of seconds, 0 or more, or unset it"
        )
    return value


@dataclass(frozen=True)
class RegistryOptions:
    """Settings shared by every registry a command talks to; the password never shows in repr.

    ``insecure`` names the hosts (``host[:port]``: one string, or several) reached over plain
    HTTP or unverified TLS; loopback registries need no entry. ``ca_file`` is a CA bundle to
    trust as well. ``username`` and ``password`` are explicit credentials; ``auth_file`` is the
    docker/containers auth JSON to read stored ones from. ``concurrency`` blobs move at once,
    uploads go in ``chunk_size`` pieces when they cannot go whole, and one request may wait or
    retry for ``retry_budget`` seconds (``$OCIBUILD_RETRY_BUDGET``, else 120).
    """

    insecure: frozenset[str] | str | Iterable[str] = frozenset()
    ca_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_file: str | None = None
    concurrency: int = 4
    chunk_size: int = 8 << 20
    retry_budget: float = field(default_factory=default_retry_budget)
    user_agent: str = f"ocibuild/{__version__}"

    def __post_init__(self) -> None:
        # One host as a string, or lists and sets (argparse's): kept hashable and frozen. A
        # string is one host, never a set of its characters.
        hosts = [self.insecure] if isinstance(self.insecure, str) else list(self.insecure)
        if not all(isinstance(h, str) and h for h in hosts):
            raise InvalidOptionError("insecure: give host[:port] names, as a string or a list")
        object.__setattr__(self, "insecure", frozenset(hosts))
        if self.concurrency < 1:
            raise InvalidOptionError("concurrency must be at least 1")
        if self.chunk_size < 1:
            raise InvalidOptionError("chunk_size must be at least 1 byte")
        if not math.isfinite(self.retry_budget) or self.retry_budget < 0:
            raise InvalidOptionError(
                f"retry_budget must be a finite number of seconds, 0 or more, not "
                f"{self.retry_budget!r}"
            )

    def is_insecure(self, host: str) -> bool:
        """Whether ``host`` (host[:port]) was named as insecure (plain HTTP or unverified TLS)."""
        return host in self.insecure or host.rsplit(":", 1)[0] in self.insecure


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying TLS context: SSL_CERT_FILE/SSL_CERT_DIR or certifi, plus ``ca_file`` if given."""
    env = (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)
    return _tls_context(ca_file, *env)


@functools.lru_cache(maxsize=8)
def _tls_context(ca_file: str | None, cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """Built once per set of inputs: loading a CA bundle costs tens of milliseconds."""
    import ssl  # the options of a command that never contacts an https origin skip it

    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    try:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
        if ca_file is not None:
            context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as err:
        bundle = ca_file if ca_file is not None else (cafile or capath)
        raise RegistryError(
            f"cannot load the CA bundle {bundle}: {err}; pass a PEM file of CA certificates"
        ) from err
    return context
