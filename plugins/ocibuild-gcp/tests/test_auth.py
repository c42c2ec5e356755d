"""Application Default Credentials against the token endpoint emulator."""

from __future__ import annotations

import pytest

from ocibuild_gcp._auth import application_default_credentials, default_project
from tests.fixtures_auth import ADC, TEST_ACCOUNT


def test_service_account_key_gets_a_token_the_emulator_accepts(adc: ADC) -> None:
    credentials = application_default_credentials()
    token = credentials.token()
    assert adc.token_server.valid(token)
    assert credentials.token() == token  # cached
    assert adc.token_server.issued == 1
    assert credentials.source == f"service account key {adc.key_file} ({TEST_ACCOUNT})"
    assert default_project(credentials) == "test-project"
    (grant,) = adc.token_server.grants
    assert grant.subject == TEST_ACCOUNT
    assert grant.scopes == ("https://www.googleapis.com/auth/cloud-platform",)


def test_refused_grant_is_one_line_with_the_servers_description(adc: ADC) -> None:
    adc.token_server.refuse = "Invalid JWT Signature."
    from ocibuild_gcp import GcpAuthError

    with pytest.raises(GcpAuthError) as caught:
        application_default_credentials().token()
    message = str(caught.value)
    assert "invalid_grant: Invalid JWT Signature." in message and "\n" not in message
