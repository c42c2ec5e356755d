"""The public names of ocibuild.registry, pinned."""

from __future__ import annotations

import pytest

import ocibuild.registry
from ocibuild import InvalidOptionError
from ocibuild.oci import Reference
from ocibuild.registry import RegistryOptions, RegistrySink, RegistrySource
from ocibuild.transports._base import ImageSink, ImageSource


def test_public_names() -> None:
    assert sorted(ocibuild.registry.__all__) == [
        "Credential",
        "CredentialSource",
        "MountResult",
        "RegistryClient",
        "RegistryOptions",
        "RegistrySink",
        "RegistrySource",
        "UploadResult",
        "find_credential",
        "login",
        "logout",
    ]


def test_transports_satisfy_the_protocols() -> None:
    ref = Reference.parse("127.0.0.1:1/app:1")
    source: ImageSource = RegistrySource(ref, RegistryOptions())
    sink: ImageSink = RegistrySink(ref, RegistryOptions(concurrency=7))
    assert source.name == sink.name == "127.0.0.1:1/app:1"
    assert sink.concurrency == 7
    assert sink.stores_uncompressed is False


def test_options_hide_the_password() -> None:
    options = RegistryOptions(username="u", password="very-secret", insecure={"h:1"})
    assert "very-secret" not in repr(options)
    assert options.insecure == frozenset({"h:1"})
    assert options.is_insecure("h:1") and not options.is_insecure("h:2")
    assert RegistryOptions(insecure=frozenset({"h"})).is_insecure("h:5000")


def test_insecure_takes_one_host_as_a_string_or_several() -> None:
    assert RegistryOptions(insecure="reg.local:5000").insecure == frozenset({"reg.local:5000"})
    assert RegistryOptions(insecure=["a:1", "b"]).insecure == frozenset({"a:1", "b"})
    with pytest.raises(InvalidOptionError, match="host\\[:port\\] names"):
        RegistryOptions(insecure=[5000])  # type: ignore[list-item]
