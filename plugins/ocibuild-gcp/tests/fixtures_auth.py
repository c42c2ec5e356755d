"""Fixtures: Google credentials against the token endpoint emulator.

``token_server`` is a :class:`~tests.emulators._token.TokenServer` on loopback;
``service_account_key`` a key file for a test RSA key (made once per session) whose
``token_uri`` is that server; ``adc`` points ``GOOGLE_APPLICATION_CREDENTIALS`` at it with
``GOOGLE_CLOUD_PROJECT=test-project``. The Vertex and GCS emulators accept a bearer token when
``token_server.valid(token)``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulators._token import MetadataServer, TokenServer

__all__ = [
    "ADC",
    "TEST_ACCOUNT",
    "TEST_PROJECT",
    "adc",
    "metadata_server",
    "service_account_key",
    "rsa_test_key",
    "token_server",
    "write_authorized_user",
    "write_service_account_key",
]

TEST_PROJECT = "test-project"
TEST_ACCOUNT = f"ocibuild-test@{TEST_PROJECT}.iam.gserviceaccount.com"


@dataclass(frozen=True)
class ADC:
    """What the ``adc`` fixture configured."""

    key_file: Path
    token_server: TokenServer
    project: str


@pytest.fixture(scope="session")
def rsa_test_key() -> rsa.RSAPrivateKey:
    """One RSA key for the whole session (generating one takes a noticeable moment)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    """The token endpoint emulator, fresh for each test."""
    server = TokenServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def metadata_server(
    token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MetadataServer]:
    """A metadata server whose tokens ``token_server`` issues, at ``$GCE_METADATA_HOST``."""
    server = MetadataServer(token_server)
    server.start()
    monkeypatch.setenv("GCE_METADATA_HOST", server.host)
    try:
        yield server
    finally:
        server.stop()


def write_service_account_key(
    path: Path,
    server: TokenServer,
    key: rsa.RSAPrivateKey,
    *,
    email: str = TEST_ACCOUNT,
    project: str | None = TEST_PROJECT,
) -> Path:
    """A service-account key file for ``key`` at ``path``, registered with ``server``."""
    key_id = secrets.token_hex(20)
    server.add_service_account(email, key_id, key.public_key())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": server.token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    if project is None:
        del info["project_id"]
    path.write_text(json.dumps(info, indent=2))
    return path


def write_authorized_user(path: Path, server: TokenServer | None) -> Path:
    """An ``authorized_user`` file (as gcloud writes it) at ``path``, registered with
    ``server``; its ``token_uri`` is the server's (none when ``server`` is None)."""
    client_id = f"{secrets.token_hex(6)}.apps.googleusercontent.com"
    secret, refresh = "d-FL95Q" + secrets.token_hex(8), "1//0g" + secrets.token_hex(16)
    info = {
        "type": "authorized_user",
        "client_id": client_id,
        "client_secret": secret,
        "refresh_token": refresh,
        "universe_domain": "googleapis.com",
    }
    if server is not None:
        server.add_user(client_id, secret, refresh)
        info["token_uri"] = server.token_uri
    path.write_text(json.dumps(info))
    return path


@pytest.fixture
def service_account_key(
    tmp_path: Path, token_server: TokenServer, rsa_test_key: rsa.RSAPrivateKey
) -> Path:
    """A service-account key file whose ``token_uri`` is the token endpoint emulator."""
    return write_service_account_key(tmp_path / "key.json", token_server, rsa_test_key)


@pytest.fixture
def adc(
    service_account_key: Path, token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> ADC:
    """Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` names the test key,
    ``GOOGLE_CLOUD_PROJECT`` is ``test-project``."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_key))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    return ADC(service_account_key, token_server, TEST_PROJECT)
