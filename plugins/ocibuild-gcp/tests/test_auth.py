"""Application Default Credentials against the token endpoint and metadata server emulators:
google-auth's lookup order, both grants, token caching and refresh, and one-line errors."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ocibuild_gcp import GcpAuthError
from ocibuild_gcp._auth import (
    CLOUD_PLATFORM,
    GOOGLE_TOKEN_URI,
    ServiceAccountCredentials,
    application_default_credentials,
    default_project,
    default_region,
    find_credentials,
    load_credentials_file,
)
from tests.emulators._token import JWT_BEARER, MetadataServer, TokenServer
from tests.fixtures_auth import (
    ADC,
    TEST_ACCOUNT,
    write_authorized_user,
    write_service_account_key,
)


def _segment(part: str) -> dict[str, Any]:
    value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(value, dict)
    return value


def test_service_account_key_gets_a_token_the_emulator_accepts(adc: ADC) -> None:
    credentials = application_default_credentials()
    token = credentials.token()
    assert adc.token_server.valid(token)
    assert credentials.token() == token  # cached: no second grant
    assert adc.token_server.issued == 1
    assert credentials.source == f"service account key {adc.key_file} ({TEST_ACCOUNT})"
    assert credentials.project_id == "test-project"
    (grant,) = adc.token_server.grants
    assert (grant.subject, grant.grant_type) == (TEST_ACCOUNT, JWT_BEARER)
    assert grant.scopes == (CLOUD_PLATFORM,)
    (request,) = adc.token_server.received("POST", "/token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


def test_the_assertion_is_what_google_auth_signs(adc: ADC) -> None:
    credentials = load_credentials_file(adc.key_file)
    assert isinstance(credentials, ServiceAccountCredentials)
    header, claims, signature = credentials.assertion().split(".")
    key_id = json.loads(adc.key_file.read_text())["private_key_id"]
    assert _segment(header) == {"alg": "RS256", "typ": "JWT", "kid": key_id}
    body = _segment(claims)
    # aud is Google's token endpoint even though token_uri is the emulator: google-auth's way.
    assert body["aud"] == GOOGLE_TOKEN_URI != credentials.token_uri
    assert (body["iss"], body["scope"]) == (TEST_ACCOUNT, CLOUD_PLATFORM)
    assert body["exp"] - body["iat"] == 3600 and abs(body["iat"] - time.time()) < 5
    assert "=" not in signature and len(base64.urlsafe_b64decode(signature + "==")) == 256


def test_scopes_are_sent_space_separated(adc: ADC) -> None:
    adc.token_server.required_scope = None
    scopes = ("https://www.googleapis.com/auth/devstorage.read_write", CLOUD_PLATFORM)
    application_default_credentials(scopes).token()
    assert adc.token_server.grants[0].scopes == scopes


def test_a_key_the_server_does_not_know_is_refused_by_signature(
    tmp_path: Path, token_server: TokenServer, rsa_test_key: rsa.RSAPrivateKey
) -> None:
    key = write_service_account_key(tmp_path / "key.json", token_server, rsa_test_key)
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    key_id = json.loads(key.read_text())["private_key_id"]
    token_server.add_service_account(TEST_ACCOUNT, key_id, other.public_key())
    with pytest.raises(GcpAuthError, match=r"invalid_grant: Invalid JWT Signature\.;"):
        load_credentials_file(key).token()
    assert token_server.issued == 0


def test_authorized_user_refreshes_at_its_token_uri(
    tmp_path: Path, token_server: TokenServer
) -> None:
    gcloud = Path(os.environ["CLOUDSDK_CONFIG"])
    write_authorized_user(gcloud / "application_default_credentials.json", token_server)
    credentials = find_credentials()
    assert credentials is not None
    assert credentials.source.startswith("user credentials ")
    assert token_server.valid(credentials.token())
    assert token_server.grants[0].grant_type == "refresh_token"
    form = token_server.received("POST", "/token")[0].body.decode()
    assert "grant_type=refresh_token" in form and "client_secret=" in form


def test_authorized_user_without_token_uri_uses_googles(tmp_path: Path) -> None:
    credentials = load_credentials_file(write_authorized_user(tmp_path / "adc.json", None))
    assert getattr(credentials, "token_uri") == GOOGLE_TOKEN_URI  # noqa: B009


def test_refused_refresh_token_names_the_error_and_what_to_do(
    tmp_path: Path, token_server: TokenServer
) -> None:
    path = write_authorized_user(tmp_path / "adc.json", token_server)
    info = json.loads(path.read_text())
    info["refresh_token"] = "1//revoked"
    path.write_text(json.dumps(info))
    with pytest.raises(GcpAuthError) as caught:
        load_credentials_file(path).token()
    assert str(caught.value) == (
        f"the token endpoint {token_server.token_uri} refused user credentials {path}: "
        "invalid_grant: Token has been expired or revoked.; "
        "run `gcloud auth application-default login` again"
    )


# The lookup order.


def test_explicit_file_wins_over_gcloud_file_and_metadata(
    adc: ADC, metadata_server: MetadataServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcloud = Path(os.environ["CLOUDSDK_CONFIG"])
    write_authorized_user(gcloud / "application_default_credentials.json", adc.token_server)
    credentials = find_credentials()
    assert credentials is not None and credentials.source.startswith("service account key")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    credentials = find_credentials()
    assert credentials is not None and credentials.source.startswith("user credentials")
    assert metadata_server.received() == []


def test_metadata_server_when_no_file(metadata_server: MetadataServer) -> None:
    credentials = find_credentials()
    assert credentials is not None
    assert credentials.source == (
        f"the metadata server at {metadata_server.host} ({metadata_server.account})"
    )
    assert credentials.project_id == "metadata-project"
    assert metadata_server.tokens.valid(credentials.token())
    (request,) = metadata_server.received("GET", r".*/token")
    assert request.param("scopes") == CLOUD_PLATFORM
    assert request.headers["metadata-flavor"] == "Google"


def test_an_answer_without_metadata_flavor_is_no_metadata_server(
    metadata_server: MetadataServer,
) -> None:
    metadata_server.flavor = False
    assert find_credentials() is None
    assert [r.path for r in metadata_server.received()] == ["/"]


def test_no_gce_check_skips_the_metadata_server(
    metadata_server: MetadataServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    assert find_credentials() is None
    assert metadata_server.received() == []


def test_nothing_configured_is_none_at_once_and_adc_says_what_to_do() -> None:
    started = time.monotonic()
    assert find_credentials() is None  # the metadata port refuses: no wait
    assert time.monotonic() - started < 0.5
    with pytest.raises(GcpAuthError, match="set GOOGLE_APPLICATION_CREDENTIALS"):
        application_default_credentials()


def test_the_same_unchanged_file_gives_the_same_credentials(adc: ADC) -> None:
    first = find_credentials()
    assert first is not None and find_credentials() is first
    text = adc.key_file.read_text()
    adc.key_file.write_text(text + "\n")
    assert find_credentials() is not first


# Token lifetime and threads.


def test_a_token_is_fetched_again_five_minutes_before_it_expires(adc: ADC) -> None:
    adc.token_server.lifetime = 301  # usable for one second
    credentials = application_default_credentials()
    first = credentials.token()
    assert credentials.token() == first and adc.token_server.issued == 1
    time.sleep(1.05)
    assert credentials.token() != first and adc.token_server.issued == 2


def test_a_token_shorter_than_the_margin_serves_half_its_life(adc: ADC) -> None:
    adc.token_server.lifetime = 2
    credentials = application_default_credentials()
    first = credentials.token()
    assert credentials.token() == first
    time.sleep(1.05)
    assert credentials.token() != first


def test_invalidate_fetches_a_new_token(adc: ADC) -> None:
    credentials = application_default_credentials()
    first = credentials.token()
    credentials.invalidate()
    assert credentials.token() != first and adc.token_server.issued == 2


def test_concurrent_callers_share_one_fetch(adc: ADC) -> None:
    adc.token_server.delay = 0.2
    credentials = application_default_credentials()
    tokens: list[str] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        tokens.append(credentials.token())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert adc.token_server.issued == 1


# Errors: one line, what is wrong and what to do.


def test_a_missing_explicit_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nope.json"))
    with pytest.raises(GcpAuthError) as caught:
        find_credentials()
    assert str(caught.value) == (
        f"the credentials file {tmp_path / 'nope.json'} (named by "
        "$GOOGLE_APPLICATION_CREDENTIALS) does not exist; point GOOGLE_APPLICATION_CREDENTIALS "
        "at a service account key, or unset it"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", r"is not valid JSON \(line 1\); download the key again"),
        ("[]", r'has no "type"; ocibuild-gcp reads service_account keys'),
        (
            '{"type": "external_account", "audience": "x"}',
            r"has type 'external_account'; ocibuild-gcp reads service_account keys and "
            r"authorized_user files",
        ),
        ('{"type": "service_account", "client_email": "a@b"}', "has no private_key"),
        (
            '{"type": "service_account", "client_email": "a@b", "private_key": "-----BEGIN"}',
            "private_key is not a PEM RSA private key; create a new key",
        ),
        ('{"type": "authorized_user", "client_id": "c"}', "has no client_secret"),
    ],
)
def test_unusable_files(
    text: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "creds.json"
    path.write_text(text)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    with pytest.raises(GcpAuthError, match=expected) as caught:
        find_credentials()
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_an_unreachable_token_endpoint(tmp_path: Path, rsa_test_key: rsa.RSAPrivateKey) -> None:
    server = TokenServer()
    server.start()
    key = write_service_account_key(tmp_path / "key.json", server, rsa_test_key)
    token_uri = server.token_uri
    server.stop()  # its port is closed now
    with pytest.raises(GcpAuthError) as caught:
        load_credentials_file(key).token()
    message = str(caught.value)
    assert message.startswith(f"cannot reach the token endpoint {token_uri} for ")
    assert message.endswith("(ConnectError); check the network and the file's token_uri")


# No secret anywhere.


def test_no_secret_in_messages_logs_or_reprs(
    adc: ADC, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user_file = write_authorized_user(tmp_path / "adc.json", adc.token_server)
    user_info = json.loads(user_file.read_text())
    key_info = json.loads(adc.key_file.read_text())
    seen: list[str] = []
    tokens: list[str] = []
    for path in (adc.key_file, user_file):
        credentials = load_credentials_file(path)
        tokens.append(credentials.token())
        seen += [repr(credentials), str(credentials), credentials.source]
        adc.token_server.refuse = "Bad Request"
        credentials.invalidate()
        with pytest.raises(GcpAuthError) as caught:
            credentials.token()
        seen.append(str(caught.value))
        adc.token_server.refuse = None
    seen.append(caplog.text)
    pem_line = key_info["private_key"].splitlines()[1]
    secrets = [pem_line, user_info["refresh_token"], user_info["client_secret"], *tokens]
    for text in seen:
        for secret in secrets:
            assert secret not in text


# Project and region defaults.


def _gcloud_config(name: str, text: str) -> None:
    config = Path(os.environ["CLOUDSDK_CONFIG"])
    (config / "configurations").mkdir(exist_ok=True)
    (config / "configurations" / f"config_{name}").write_text(text)


def test_default_project_order(adc: ADC, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = application_default_credentials()
    assert default_project(credentials) == "test-project"  # $GOOGLE_CLOUD_PROJECT (adc)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GCLOUD_PROJECT", "legacy-project")
    assert default_project(credentials) == "env-project"
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    assert default_project(credentials) == "legacy-project"
    monkeypatch.delenv("GCLOUD_PROJECT")
    credentials.project_id = "key-project"
    assert default_project(credentials) == "key-project"
    credentials.project_id = None
    _gcloud_config("work", "[core]\nproject = config-project\n")
    (Path(os.environ["CLOUDSDK_CONFIG"]) / "active_config").write_text("work\n")
    assert default_project(credentials) == "config-project"
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "sdk-env-project")
    assert default_project(credentials) == "sdk-env-project"


def test_default_project_finds_the_credentials_itself(
    adc: ADC, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    assert default_project() == "test-project"  # the key's project_id


def test_default_project_from_the_metadata_server(metadata_server: MetadataServer) -> None:
    assert default_project() == "metadata-project"


def test_default_project_none_when_nothing_says() -> None:
    assert default_project() is None


def test_default_region_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_region() is None
    _gcloud_config("default", "[compute]\nregion = europe-west4\n")
    assert default_region() == "europe-west4"
    _gcloud_config("default", "[compute]\nregion = europe-west4\n[ai]\nregion = us-east1\n")
    assert default_region() == "us-east1"
    for name, value in [
        ("CLOUDSDK_COMPUTE_REGION", "asia-east1"),
        ("CLOUDSDK_AI_REGION", "asia-south1"),
        ("CLOUD_ML_REGION", "us-west1"),
        ("GOOGLE_CLOUD_REGION", "us-central1"),
    ]:
        monkeypatch.setenv(name, value)
        assert default_region() == value


def test_a_metadata_server_that_never_answers_is_waited_for_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("GCE_METADATA_TIMEOUT", "0.2")
        monkeypatch.setenv("GCE_METADATA_DETECT_RETRIES", "2")
        started = time.monotonic()
        assert find_credentials() is None
        assert 0.4 <= time.monotonic() - started < 1.5  # two tries of 0.2 s
        started = time.monotonic()
        assert find_credentials() is None
        assert time.monotonic() - started < 0.2  # remembered


def test_gcloud_config_comes_before_the_metadata_server(metadata_server: MetadataServer) -> None:
    _gcloud_config("default", "[core]\nproject = config-project\n")
    assert default_project() == "config-project"
    assert metadata_server.received() == []
