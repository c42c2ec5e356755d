"""Content digests: ``algorithm:encoded``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .._errors import InvalidDigestError

__all__ = ["Digest"]

_ALGORITHM = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*$")
_ENCODED = re.compile(r"^[a-zA-Z0-9=_-]+$")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest such as ``sha256:e3b0...``; ``str()`` gives the wire form."""

    algorithm: str
    encoded: str

    def __post_init__(self) -> None:
        if not _ALGORITHM.match(self.algorithm) or not _ENCODED.match(self.encoded):
            raise InvalidDigestError(f"invalid digest {self.algorithm + ':' + self.encoded!r}")
        expected = _HEX_LENGTHS.get(self.algorithm)
        if expected is not None and (
            len(self.encoded) != expected or not all(c in "0123456789abcdef" for c in self.encoded)
        ):
            raise InvalidDigestError(
                f"invalid {self.algorithm} digest {self.encoded!r}: "
                f"expected {expected} lowercase hex characters"
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``algorithm:encoded``; raises :class:`InvalidDigestError`."""
        algorithm, sep, encoded = text.partition(":")
        if not sep:
            raise InvalidDigestError(f"invalid digest {text!r}: expected 'sha256:<64 hex digits>'")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes) -> Digest:
        """The sha256 digest of ``data``."""
        return cls("sha256", hashlib.sha256(data).hexdigest())

    @classmethod
    def from_hash(cls, hasher: hashlib._Hash) -> Digest:
        """The digest a finished ``hashlib`` object stands for."""
        return cls(hasher.name, hasher.hexdigest())

    @property
    def hex(self) -> str:
        """The encoded part (hex for sha256)."""
        return self.encoded

    def new_hasher(self) -> hashlib._Hash:
        """A fresh hashlib object of this digest's algorithm, to verify content against it."""
        try:
            return hashlib.new(self.algorithm)
        except ValueError as err:
            raise InvalidDigestError(f"unsupported digest algorithm {self.algorithm!r}") from err

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"
