"""Registry credentials for Google's registries, asked through ocibuild's own lookup
(``ocibuild.registry.find_credential``), which reaches the plugin by its entry point."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from ocibuild.plugins import reset_plugins
from ocibuild.registry import RegistryOptions, find_credential

from ocibuild_gcp import GcpAuthError
from ocibuild_gcp._registry import google_registry_credential, is_google_registry
from tests.fixtures_auth import ADC, TEST_ACCOUNT


@pytest.fixture(autouse=True)
def no_registry_config_of_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Docker's and containers' credential files are empty tmp paths, and the plugins are
    loaded afresh (entry points on)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("DOCKER_AUTH_CONFIG", "XDG_RUNTIME_DIR", "OCIBUILD_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)
    reset_plugins()
    yield
    reset_plugins()


@pytest.mark.parametrize(
    "registry", ["us-docker.pkg.dev", "europe-west4-docker.pkg.dev", "gcr.io", "EU.GCR.IO"]
)
def test_google_registries_get_the_access_token_through_the_core(adc: ADC, registry: str) -> None:
    found = find_credential(registry, "p/r/img", RegistryOptions())
    assert (
        found.source == f"Google credentials (service account key {adc.key_file} ({TEST_ACCOUNT}))"
    )
    assert found.username == "oauth2accesstoken"
    assert adc.token_server.valid(found.password)
    assert found.password is not None and found.password not in repr(found)


@pytest.mark.parametrize(
    "registry",
    [
        "127.0.0.1:5000",
        "us-docker.pkg.dev.attacker.com",
        "evil-docker.pkg.dev.attacker.com",
        "us-docker.pkg.dev:5000",
        "docker.pkg.dev",
        "pkg.dev",
        "us-python.pkg.dev",
        "gcr.io.attacker.com",
        "attackergcr.io",
        "a.b.gcr.io",
        "us-docker.pkg.dev.",
        "ghcr.io",
    ],
)
def test_other_hosts_get_nothing_and_no_token_is_fetched(adc: ADC, registry: str) -> None:
    assert not is_google_registry(registry)
    assert google_registry_credential(registry, "p/r/img") is None
    assert find_credential(registry, "p/r/img", RegistryOptions()).is_anonymous
    assert adc.token_server.issued == 0


def test_what_the_user_configured_wins(adc: ADC, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = base64.b64encode(b"_json_key:from-the-user").decode()
    monkeypatch.setenv(
        "DOCKER_AUTH_CONFIG", json.dumps({"auths": {"us-docker.pkg.dev": {"auth": auth}}})
    )
    found = find_credential("us-docker.pkg.dev", "p/r/img", RegistryOptions())
    assert (found.source, found.username, found.password) == (
        "$DOCKER_AUTH_CONFIG",
        "_json_key",
        "from-the-user",
    )
    assert adc.token_server.issued == 0


def test_a_gcloud_helper_that_is_not_installed_falls_through_to_the_plugin(
    adc: ADC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # What `gcloud auth configure-docker` writes, on a machine without gcloud.
    (tmp_path / "docker").mkdir()
    config = {"credHelpers": {"us-docker.pkg.dev": "ocibuild-test-absent-gcloud"}}
    (tmp_path / "docker" / "config.json").write_text(json.dumps(config))
    caplog.set_level(logging.WARNING)
    found = find_credential("us-docker.pkg.dev", "p/r/img", RegistryOptions())
    assert found.username == "oauth2accesstoken" and adc.token_server.valid(found.password)
    assert "docker-credential-ocibuild-test-absent-gcloud" in caplog.text


def test_no_google_credentials_is_anonymous() -> None:
    assert google_registry_credential("us-docker.pkg.dev", "p/r/img") is None
    assert find_credential("us-docker.pkg.dev", "p/r/img", RegistryOptions()).is_anonymous


def test_configured_credentials_that_fail_stop_the_lookup(adc: ADC) -> None:
    adc.token_server.refuse = "Invalid JWT Signature."
    with pytest.raises(GcpAuthError, match=r"invalid_grant: Invalid JWT Signature\."):
        find_credential("us-docker.pkg.dev", "p/r/img", RegistryOptions())


def test_the_token_is_shared_between_lookups(adc: ADC) -> None:
    first = find_credential("us-docker.pkg.dev", "p/r/a", RegistryOptions())
    second = find_credential("gcr.io", "p/b", RegistryOptions())
    assert first.password == second.password and adc.token_server.issued == 1
