"""GoogleApi against an emulated API: bearer tokens, 401 refresh, retries, one-line errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ocibuild_gcp._api import GoogleApi
from ocibuild_gcp._auth import application_default_credentials
from tests.emulators._server import Emulator, Reply, Request, error_reply
from tests.fixtures_auth import ADC


@pytest.fixture
def api_server(adc: ADC) -> Iterator[Emulator]:
    """An API that answers only requests whose bearer token the token server issued."""
    server = Emulator("test API")

    @server.route("GET", r"/v1/things/([^/]+)")
    def get(request: Request) -> Reply:
        if not adc.token_server.valid(request.bearer):
            return error_reply(401, "UNAUTHENTICATED", "Request had invalid credentials.")
        return Reply(200, {"name": request.groups[0]})

    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_call_sends_the_token_and_returns_the_json(adc: ADC, api_server: Emulator) -> None:
    with GoogleApi(api_server.url, application_default_credentials(), api="Test") as api:
        assert api.call("GET", "/v1/things/a") == {"name": "a"}
    (request,) = api_server.received("GET")
    assert adc.token_server.valid(request.bearer)
