import pytest

from ocibuild import _errors as errors
from ocibuild.oci import Digest, Reference

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python", "docker.io", "library/python", "latest", None),
        ("python:3.11-slim", "docker.io", "library/python", "3.11-slim", None),
        ("docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("index.docker.io/org/app:1", "docker.io", "org/app", "1", None),
        ("org/app", "docker.io", "org/app", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b/c:v1.2", "localhost:5000", "a/b/c", "v1.2", None),
        ("127.0.0.1:5000/x@sha256:" + HEX, "127.0.0.1:5000", "x", None, "sha256:" + HEX),
        ("ghcr.io/o/r:t@sha256:" + HEX, "ghcr.io", "o/r", "t", "sha256:" + HEX),
        ("[::1]:5000/r:t", "[::1]:5000", "r", "t", None),
        ("docker://quay.io/a_b/c-d__e.f:x", "quay.io", "a_b/c-d__e.f", "x", None),
    ],
)
def test_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert (str(ref.digest) if ref.digest else None) == digest
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("Upper/App", "lowercase"),
        ("app:bad tag", "tag"),
        ("app:" + "t" * 129, "tag"),
        ("app@sha256:abc", "digest"),
        ("app@md5", "digest"),
        ("a//b", "component"),
        ("-a/b", "component"),
        ("r.io/" + "a" * 300, "longer"),
        (" app", "spaces"),
    ],
)
def test_parse_rejects_with_a_reason(text: str, needle: str) -> None:
    with pytest.raises(errors.InvalidReferenceError) as info:
        Reference.parse(text)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_properties() -> None:
    ref = Reference.parse("python:3")
    assert ref.api_host == "registry-1.docker.io"
    assert ref.identifier == "3"
    assert not ref.is_loopback
    pinned = ref.with_digest(Digest("sha256", HEX))
    assert pinned.identifier == "sha256:" + HEX
    assert str(pinned) == "docker.io/library/python:3@sha256:" + HEX
    assert Reference.parse("localhost:1/a").is_loopback
    assert Reference.parse("127.0.0.5:1/a").is_loopback
    assert Reference.parse("[::1]:5000/a").is_loopback
    assert not Reference.parse("10.0.0.1:5000/a").is_loopback
    assert ref.with_tag("4").tag == "4"
    with pytest.raises(errors.InvalidReferenceError):
        ref.with_tag("no good")
