"""TLS: verified by default, trusted through a CA bundle (option or SSL_CERT_FILE), or insecure."""

from __future__ import annotations

import pytest

from ocibuild._errors import RegistryError
from ocibuild.oci import Reference
from ocibuild.registry import RegistryClient, RegistryOptions, RegistrySink, RegistrySource
from tests.support import Registry, skopeo_inspect

from ._util import make_layer, push_image


def test_push_and_pull_with_the_ca_option(tls_registry: Registry) -> None:
    assert tls_registry.ca_file is not None
    options = RegistryOptions(ca_file=str(tls_registry.ca_file))
    ref = Reference.parse(f"{tls_registry.host}/tls/app:1")

    pushed = push_image(RegistrySink(ref, options), [make_layer({"t": b"tls"})], tag="1")

    data, _ = RegistrySource(ref, options).get_manifest()
    assert data == pushed.manifest_bytes
    info = skopeo_inspect(f"docker://{ref}", tls_verify=True, cert_dir=tls_registry.cert_dir)
    assert info["Digest"] == str(pushed.manifest.digest)
    with RegistryClient(tls_registry.host, options) as client:
        assert client.base_url() == f"https://{tls_registry.host}"


def test_untrusted_certificate_is_refused_with_a_hint(tls_registry: Registry) -> None:
    ref = Reference.parse(f"{tls_registry.host}/tls/app:1")
    with pytest.raises(RegistryError, match="not trusted") as caught:
        RegistrySource(ref).get_manifest()
    assert "--ca-file" in str(caught.value)
    assert "--insecure-registry" in str(caught.value)


def test_ssl_cert_file_is_honoured(tls_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    sink = RegistrySink(Reference.parse(f"{tls_registry.host}/tls/env:1"))
    pushed = push_image(sink, [make_layer({"e": b"env"})], tag="1")
    assert pushed.outcomes == ["uploaded"]


def test_insecure_registry_skips_verification(tls_registry: Registry) -> None:
    options = RegistryOptions(insecure=frozenset({tls_registry.host}))
    pushed = push_image(
        RegistrySink(Reference.parse(f"{tls_registry.host}/tls/insecure:1"), options),
        [make_layer({"i": b"insecure"})],
        tag="1",
    )
    with RegistryClient(tls_registry.host, options) as client:
        assert client.base_url() == f"https://{tls_registry.host}"
        assert client.head_manifest("tls/insecure", "1") == pushed.manifest.with_platform(None)


def test_insecure_plain_http_registry(registry: Registry) -> None:
    # An insecure host that does not speak TLS falls back to plain HTTP.
    host = registry.host.replace("127.0.0.1", "localhost")
    options = RegistryOptions(insecure=frozenset({host}))
    with RegistryClient(host, options) as client:
        assert client.base_url() == f"http://{host}"
