"""The one verifier: whole blobs, blob streams and layer tars are checked the same way, and a
mismatch always names the blob, where it came from, and what it really is."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from ocibuild._errors import DigestMismatchError
from ocibuild.oci import Digest, describe
from ocibuild.oci import media_types as mt
from ocibuild.oci._blobs import TarStream, VerifyingStream

REAL = b"the real content"
FAKE = b"the fake content"  # same length, other bytes
DESC = describe(REAL, mt.OCI_CONFIG)

CHECKS: dict[str, Callable[[bytes], object]] = {
    "Descriptor.verify": lambda data: DESC.verify(data, "oci:/lay"),
    "Digest.verify": lambda data: DESC.digest.verify(data, "oci:/lay"),
    "VerifyingStream": lambda data: b"".join(VerifyingStream([data], DESC, source="oci:/lay")),
    "TarStream": lambda data: b"".join(TarStream([data], diff_id=DESC.digest, source="oci:/lay")),
}


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_every_verifier_gives_the_same_message(check: Callable[[bytes], object]) -> None:
    check(REAL)
    with pytest.raises(DigestMismatchError) as err:
        check(FAKE)
    shape = (
        rf"(blob|layer tar) {DESC.digest} from oci:/lay has digest {Digest.of(FAKE)} and size "
        rf"{len(FAKE)}(, expected size {len(REAL)})?; the source is corrupt or was changed"
    )
    assert re.fullmatch(shape, str(err.value))


def test_a_blob_of_the_wrong_size_is_refused_even_by_size_alone() -> None:
    with pytest.raises(DigestMismatchError, match=f"and size 15, expected size {len(REAL)}"):
        DESC.verify(REAL[:-1], "here")
    stream = VerifyingStream([REAL[:-1]], DESC, source="here")
    with pytest.raises(DigestMismatchError, match="expected size"):
        b"".join(stream)
    assert stream.digests is None  # nothing to commit


def test_a_tar_stream_reports_its_diff_id_as_its_digest() -> None:
    stream = TarStream([b"a" * 512, b"b" * 512])
    assert b"".join(stream) == b"a" * 512 + b"b" * 512
    digest = Digest.of(b"a" * 512 + b"b" * 512)
    assert (stream.result.digest, stream.result.diff_id, stream.result.size) == (
        digest,
        digest,
        1024,
    )
