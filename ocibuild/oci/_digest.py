"""Content digests (``algorithm:encoded``) and the one check that content is what it claims."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .._errors import DigestMismatchError, InvalidDigestError

__all__ = ["Digest", "content_mismatch"]

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
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data`` (sha256 unless another algorithm is named)."""
        hasher = _new_hasher(algorithm)
        hasher.update(data)
        return cls(algorithm, hasher.hexdigest())

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
        return _new_hasher(self.algorithm)

    def verify(self, data: bytes, where: str) -> bytes:
        """``data``, checked to hash to this digest (``where`` names the source in the error)."""
        actual = Digest.of(data, self.algorithm)
        if actual != self:
            raise content_mismatch(self, where, actual, len(data))
        return data

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def content_mismatch(
    expected: Digest,
    where: str,
    actual: Digest,
    size: int,
    expected_size: int | None = None,
    *,
    what: str = "blob",
) -> DigestMismatchError:
    """The one error for content that is not what its digest (and size) promise."""
    wanted = f", expected size {expected_size}" if expected_size is not None else ""
    return DigestMismatchError(
        f"{what} {expected} from {where} has digest {actual} and size {size}{wanted}; "
        "the source is corrupt or was changed"
    )


def _new_hasher(algorithm: str) -> hashlib._Hash:
    if algorithm == "sha256":
        return hashlib.sha256()
    try:
        return hashlib.new(algorithm)
    except ValueError as err:
        raise InvalidDigestError(f"unsupported digest algorithm {algorithm!r}") from err
