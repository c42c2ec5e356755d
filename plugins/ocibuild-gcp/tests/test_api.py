"""GoogleApi against an emulated API: bearer tokens, the 401 refresh, retries within the
budget, no retried POST once it may have reached the server, and one-line errors."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator

import pytest

from ocibuild_gcp import GcpAuthError, GoogleApiError
from ocibuild_gcp._api import GoogleApi
from ocibuild_gcp._auth import application_default_credentials
from tests.emulators._server import Drop, Emulator, Reply, Request, error_reply
from tests.fixtures_auth import ADC

Step = Callable[[Request], Reply]


class Api(Emulator):
    """``/v1/things[/NAME]``: each request takes the next step of a script (the last one
    repeats); a request without a valid token is answered 401 before any step."""

    def __init__(self, adc: ADC) -> None:
        super().__init__("test API")
        self.adc = adc
        self.script: list[Step] = [lambda r: Reply(200, {"name": r.path.rsplit("/", 1)[-1]})]
        self.times: list[float] = []
        for method in ("GET", "POST", "PUT"):
            self.route(method, r"/v1/things(/[^/]+)?")(self._serve)

    def _serve(self, request: Request) -> Reply:
        self.times.append(time.monotonic())
        if not self.adc.token_server.valid(request.bearer):
            return error_reply(401, "UNAUTHENTICATED", "Request had invalid credentials.")
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return step(request)


def _drop(request: Request) -> Reply:
    raise Drop


@pytest.fixture
def api_server(adc: ADC) -> Iterator[Api]:
    server = Api(adc)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(api_server: Api) -> Iterator[GoogleApi]:
    with GoogleApi(
        api_server.url, application_default_credentials(), api="Test API", retry_seconds=3.0
    ) as client:
        yield client


def test_call_sends_the_token_and_returns_the_json(
    adc: ADC, api_server: Api, api: GoogleApi
) -> None:
    assert api.call("GET", "/v1/things/a") == {"name": "a"}
    assert api.call("GET", f"{api_server.url}/v1/things/b") == {"name": "b"}  # a full URL
    first, second = api_server.received("GET")
    assert adc.token_server.valid(first.bearer) and first.bearer == second.bearer


def test_no_credentials_send_no_authorization(adc: ADC, api_server: Api) -> None:
    api = GoogleApi(api_server.url, None, api="Test API")
    with api, pytest.raises(GcpAuthError, match="no Google credentials were sent"):
        api.call("GET", "/v1/things/a")
    (request,) = api_server.received()
    assert "authorization" not in request.headers


def test_401_fetches_a_new_token_and_tries_once_more(
    adc: ADC, api_server: Api, api: GoogleApi
) -> None:
    api.call("GET", "/v1/things/a")
    adc.token_server.revoke_all()  # the cached token is stale now
    assert api.call("GET", "/v1/things/b") == {"name": "b"}
    assert adc.token_server.issued == 2
    stale, fresh = api_server.received("GET", r"/v1/things/b")
    assert stale.bearer != fresh.bearer and adc.token_server.valid(fresh.bearer)


def test_401_with_a_new_token_too_names_the_credentials(
    adc: ADC, api_server: Api, api: GoogleApi
) -> None:
    api_server.script = [lambda r: error_reply(401, "UNAUTHENTICATED", "Token revoked.")]
    with pytest.raises(GcpAuthError) as caught:
        api.call("GET", "/v1/things/a")
    assert str(caught.value) == (
        "Test API: GET /v1/things/a: 401 UNAUTHENTICATED: Token revoked.; a new token from "
        f"service account key {adc.key_file} (ocibuild-test@test-project.iam.gserviceaccount.com)"
        " was refused too: check those credentials"
    )
    assert len(api_server.received()) == 2 and adc.token_server.issued == 2


def test_403_is_one_line_with_the_apis_status_and_message(api_server: Api, api: GoogleApi) -> None:
    message = (
        "Permission 'aiplatform.customJobs.create' denied on resource\n'//x' (or it may not exist)."
    )
    api_server.script = [lambda r: error_reply(403, "PERMISSION_DENIED", message)]
    with pytest.raises(GoogleApiError) as caught:
        api.call("POST", "/v1/things", json={"displayName": "x"})
    assert str(caught.value) == (
        "Test API: POST /v1/things: 403 PERMISSION_DENIED: Permission "
        "'aiplatform.customJobs.create' denied on resource '//x' (or it may not exist)."
    )
    assert (caught.value.status, caught.value.reason) == (403, "PERMISSION_DENIED")
    assert len(api_server.received()) == 1  # not retried


def test_errors_without_a_status_name(api_server: Api, api: GoogleApi) -> None:
    gcs = {"error": {"code": 403, "message": "no access", "errors": [{"reason": "forbidden"}]}}
    api_server.script = [lambda r: Reply(403, gcs), lambda r: Reply(404, body=b"Not Found\n")]
    with pytest.raises(GoogleApiError, match=r"403 forbidden: no access$"):
        api.call("GET", "/v1/things/a")
    with pytest.raises(GoogleApiError, match=r"404 NOT_FOUND: Not Found$") as caught:
        api.call("GET", "/v1/things/a")
    assert caught.value.reason == "NOT_FOUND"


def test_429_honours_retry_after_and_503_is_retried(api_server: Api, api: GoogleApi) -> None:
    api_server.script = [
        lambda r: Reply(429, headers={"Retry-After": "0.3"}),
        lambda r: error_reply(503, "UNAVAILABLE", "try again"),
        lambda r: Reply(200, {"ok": True}),
    ]
    assert api.call("POST", "/v1/things", json={}) == {"ok": True}
    assert len(api_server.times) == 3
    assert api_server.times[1] - api_server.times[0] >= 0.3


def test_500_forever_gives_up_within_the_budget(api_server: Api) -> None:
    api_server.script = [lambda r: error_reply(500, "INTERNAL", "Internal error encountered.")]
    credentials = application_default_credentials()
    started = time.monotonic()
    api = GoogleApi(api_server.url, credentials, api="Test API", retry_seconds=1.0)
    with api, pytest.raises(GoogleApiError) as caught:
        api.call("GET", "/v1/things/a")
    assert time.monotonic() - started < 1.5  # the 1 s budget, and the last try
    assert re.fullmatch(
        r"Test API: GET /v1/things/a: 500 INTERNAL: Internal error encountered\. "
        r"\(gave up after \d+ tries\)",
        str(caught.value),
    )
    assert len(api_server.received()) >= 2


def test_a_retry_after_beyond_the_budget_gives_up_at_once(api_server: Api, api: GoogleApi) -> None:
    api_server.script = [lambda r: Reply(429, headers={"Retry-After": "30"})]
    started = time.monotonic()
    with pytest.raises(GoogleApiError, match="429 RESOURCE_EXHAUSTED"):
        api.call("GET", "/v1/things/a")
    assert time.monotonic() - started < 0.5 and len(api_server.received()) == 1


def test_a_post_cut_after_sending_is_not_sent_again(api_server: Api, api: GoogleApi) -> None:
    api_server.script = [_drop, lambda r: Reply(200, {"name": "created twice"})]
    with pytest.raises(GoogleApiError) as caught:
        api.call("POST", "/v1/things", json={"displayName": "x"})
    assert str(caught.value) == (
        "Test API: POST /v1/things: the connection broke after the request was sent, so it is "
        "not retried; check whether it took effect before trying again"
    )
    assert caught.value.status == 0
    assert len(api_server.received("POST")) == 1


def test_a_get_cut_is_sent_again(api_server: Api, api: GoogleApi) -> None:
    api_server.script = [_drop, lambda r: Reply(200, {"name": "a"})]
    assert api.call("GET", "/v1/things/a") == {"name": "a"}
    assert len(api_server.received("GET")) == 2


def test_a_refused_connection_is_retried_even_for_post(adc: ADC) -> None:
    closed = Emulator("gone")
    closed.start()
    url = closed.url
    closed.stop()
    with GoogleApi(url, None, api="Test API", retry_seconds=0.6) as api:
        started = time.monotonic()
        with pytest.raises(GoogleApiError) as caught:
            api.call("POST", "/v1/things", json={})
    assert time.monotonic() - started >= 0.2  # it waited and tried again
    assert str(caught.value) == (
        "Test API: POST /v1/things: cannot reach the API (ConnectError) after 2 tries; "
        "check the network and the API endpoint"
    )


def test_a_streamed_body_is_sent_once(api_server: Api, api: GoogleApi) -> None:
    api_server.script = [lambda r: error_reply(503, "UNAVAILABLE", "busy")]
    with pytest.raises(GoogleApiError, match=r"503 UNAVAILABLE: busy$"):
        api.request("PUT", "/v1/things/a", content=iter([b"chunk"]))
    assert len(api_server.received()) == 1


def test_request_returns_the_raw_answer_for_accepted_statuses(
    api_server: Api, api: GoogleApi
) -> None:
    api_server.script = [lambda r: Reply(308, headers={"Range": "bytes=0-9"})]
    answer = api.request("PUT", "/v1/things/a", content=b"0123456789", ok=(200, 308))
    assert answer.status_code == 308 and answer.headers["range"] == "bytes=0-9"


def test_an_answer_that_is_not_a_json_object(api_server: Api, api: GoogleApi) -> None:
    api_server.script = [lambda r: Reply(200, body=b"<html>")]
    with pytest.raises(GoogleApiError, match="the answer is not a JSON object"):
        api.call("GET", "/v1/things/a")


def test_no_token_in_logs_errors_or_reprs(
    adc: ADC, api_server: Api, api: GoogleApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.call("GET", "/v1/things/a")
    api_server.script = [lambda r: error_reply(401, "UNAUTHENTICATED", "no")]
    with pytest.raises(GcpAuthError) as caught:
        api.call("GET", "/v1/things/b")
    tokens = [g.token for g in adc.token_server.grants]
    assert len(tokens) == 2
    for text in (caplog.text, str(caught.value), repr(api), repr(api.credentials)):
        assert "Bearer" not in text
        for token in tokens:
            assert token not in text
