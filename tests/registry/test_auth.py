"""Authentication against real registries: htpasswd Basic and token auth (the Bearer dance)."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from ocibuild._errors import AuthenticationError
from ocibuild.oci import Reference
from ocibuild.oci._layer import BlobStream
from ocibuild.registry import RegistryClient, RegistryOptions, RegistrySink, RegistrySource
from tests.support import Registry, skopeo_inspect

from ._util import (
    TestLayer,
    make_layer,
    path_with,
    push_image,
    random_layer,
    write_credential_helper,
)

KiB = 1 << 10


def write_config(docker_config: Path, config: dict[str, object]) -> Path:
    path = docker_config / "config.json"
    path.write_text(json.dumps(config))
    return path


def basic_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def push_to(
    registry: Registry,
    repo_tag: str,
    options: RegistryOptions | None = None,
    layers: list[TestLayer] | None = None,
) -> str:
    sink = RegistrySink(Reference.parse(f"{registry.host}/{repo_tag}"), options)
    pushed = push_image(sink, layers or [make_layer({"f": repo_tag.encode()})], tag="1")
    return str(pushed.manifest.digest)


# -- Basic ---------------------------------------------------------------------------------


def test_basic_auth_from_docker_config(
    basic_registry: Registry, isolated_credentials: Path
) -> None:
    assert basic_registry.username and basic_registry.password
    write_config(
        isolated_credentials,
        {
            "auths": {
                basic_registry.host: {
                    "auth": basic_auth(basic_registry.username, basic_registry.password)
                }
            }
        },
    )

    digest = push_to(basic_registry, "auth/config:1")

    info = skopeo_inspect(
        f"docker://{basic_registry.host}/auth/config:1", creds=basic_registry.creds
    )
    assert info["Digest"] == digest
    data, _ = RegistrySource(Reference.parse(f"{basic_registry.host}/auth/config:1")).get_manifest()
    assert data


def test_basic_auth_from_a_credential_helper_on_path(
    basic_registry: Registry,
    isolated_credentials: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    helper = write_credential_helper(tmp_path / "bin")
    (helper.parent / "store.json").write_text(
        json.dumps({basic_registry.host: [basic_registry.username, basic_registry.password]})
    )
    monkeypatch.setenv("PATH", path_with(helper.parent))
    write_config(isolated_credentials, {"credHelpers": {basic_registry.host: "test"}})

    digest = push_to(basic_registry, "auth/helper:1")

    assert (
        skopeo_inspect(f"docker://{basic_registry.host}/auth/helper:1", creds=basic_registry.creds)[
            "Digest"
        ]
        == digest
    )
    assert basic_registry.username and basic_registry.password
    calls = (helper.parent / "calls.log").read_text().splitlines()
    assert calls and all(c == f"get {basic_registry.host}" for c in calls)


def test_wrong_password_names_the_source_and_hides_the_secret(
    basic_registry: Registry, isolated_credentials: Path
) -> None:
    secret = "not-the-password-" + "x" * 12
    config = write_config(
        isolated_credentials,
        {"auths": {basic_registry.host: {"auth": basic_auth("tester", secret)}}},
    )

    with pytest.raises(AuthenticationError) as caught:
        push_to(basic_registry, "auth/wrong:1")

    err = caught.value
    assert err.status == 401
    assert str(config) in str(err)
    for text in (str(err), repr(err), repr(err.args)):
        assert secret not in text
        assert basic_auth("tester", secret) not in text


def test_explicit_credentials_win_and_never_print(
    basic_registry: Registry, isolated_credentials: Path
) -> None:
    write_config(
        isolated_credentials,
        {"auths": {basic_registry.host: {"auth": basic_auth("tester", "stale")}}},
    )
    assert basic_registry.password
    options = RegistryOptions(username=basic_registry.username, password=basic_registry.password)
    assert basic_registry.password not in repr(options)

    push_to(basic_registry, "auth/explicit:1", options)

    wrong = RegistryOptions(username="tester", password="wrong-explicit-secret")
    with pytest.raises(AuthenticationError, match="explicit") as caught:
        push_to(basic_registry, "auth/explicit:2", wrong)
    assert "wrong-explicit-secret" not in str(caught.value)


def test_no_credentials_says_anonymous(basic_registry: Registry) -> None:
    with pytest.raises(AuthenticationError, match="anonymous"):
        RegistrySource(Reference.parse(f"{basic_registry.host}/auth/any:1")).get_manifest()


def test_missing_helper_warns_and_falls_back_to_the_file(
    basic_registry: Registry, isolated_credentials: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert basic_registry.username and basic_registry.password
    write_config(
        isolated_credentials,
        {
            "credHelpers": {basic_registry.host: "not-installed-anywhere"},
            "auths": {
                basic_registry.host: {
                    "auth": basic_auth(basic_registry.username, basic_registry.password)
                }
            },
        },
    )

    with caplog.at_level(logging.WARNING, logger="ocibuild"):
        push_to(basic_registry, "auth/fallback:1")
    assert [r.getMessage() for r in caplog.records if "not-installed-anywhere" in r.getMessage()]


# -- token auth ----------------------------------------------------------------------------


def token_options(registry: Registry, **kwargs: object) -> RegistryOptions:
    return RegistryOptions(username=registry.username, password=registry.password, **kwargs)  # type: ignore[arg-type]


def test_token_flow_push_and_scope_widening_for_a_mount(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    options = token_options(token_registry)
    base = random_layer(64 * KiB, seed=11)
    with server.configure():
        push_to(token_registry, "team/base:1", options, [base])
        asked = [set(r.scopes) for r in token_registry.token_requests]
        assert {"repository:team/base:pull,push"} in asked
        assert all(r.grant == "basic" and r.status == 200 for r in token_registry.token_requests)

    mounted = random_layer(64 * KiB, seed=11, mount_from=(token_registry.host, "team/base"))
    token_registry.mark()
    with server.configure():
        sink = RegistrySink(Reference.parse(f"{token_registry.host}/team/app:1"), options)
        pushed = push_image(sink, [mounted], tag="1")
        asked = [set(r.scopes) for r in token_registry.token_requests]

    assert pushed.outcomes == ["mounted"]
    assert {"repository:team/app:pull,push", "repository:team/base:pull"} in asked
    # The widened token was asked for up front: the mount was never refused first.
    mounts = [r.status for r in token_registry.requests() if "mount=" in r.path]
    assert mounts == [201]
    info = skopeo_inspect(f"docker://{token_registry.host}/team/app:1", creds=token_registry.creds)
    assert info["Digest"] == str(pushed.manifest.digest)


def test_tokens_are_cached_per_scope(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    options = token_options(token_registry)
    with server.configure():
        push_to(
            token_registry,
            "team/cache:1",
            options,
            [make_layer({str(i): b"x" * i}) for i in range(5)],
        )
        scopes = [r.scopes for r in token_registry.token_requests]
    # One token for the repository serves every blob and the manifest.
    assert scopes == [("repository:team/cache:pull,push",)]


class SlowStream(BlobStream):
    """Yields a layer's bytes slowly, so a push outlives its token."""

    def __init__(self, inner: BlobStream, pause: float) -> None:
        self.inner, self.pause = inner, pause

    def __next__(self) -> bytes:
        time.sleep(self.pause)
        try:
            return next(self.inner)
        except StopIteration:
            self.digests = self.inner.digests
            raise


def test_token_that_expires_mid_push_is_renewed(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    # Eight chunks, one each 0.4 s: the push outlives any token by at least a second.
    layer = random_layer(8 * 64 * KiB, seed=12, known_up_front=False)
    options = token_options(token_registry, chunk_size=64 * KiB)
    # The registry accepts each token for 1 to 2 s although the answer advertises 300 s.
    token_registry.mark()
    with server.configure(expires_in=300, accept_for=1):
        sink = RegistrySink(Reference.parse(f"{token_registry.host}/team/slow:1"), options)
        sink.put_blob(SlowStream(iter_pieces(layer, 64 * KiB), 0.4), None)
        tokens = token_registry.token_requests

    assert len(tokens) >= 2
    assert all(r.status == 200 for r in tokens)
    patches = [r.status for r in token_registry.requests() if r.method == "PATCH"]
    assert 401 in patches  # the cached token was refused mid-push ...
    assert patches[-1] == 202  # ... renewed, and the upload went on
    assert sink.has_blob(layer.descriptor)


def iter_pieces(layer: TestLayer, piece: int) -> BlobStream:
    from ._util import StreamedBlob

    return StreamedBlob(layer.gz, layer.media_type, layer.diff_id, piece=piece)


def test_identity_token_uses_the_oauth2_refresh_grant(
    token_registry: Registry, isolated_credentials: Path
) -> None:
    server = token_registry.token_server
    assert server is not None and token_registry.username and token_registry.password
    answer = httpx.get(
        server.realm,
        params={"service": server.service, "offline_token": "true"},
        auth=(token_registry.username, token_registry.password),
    )
    refresh = answer.json()["refresh_token"]
    write_config(isolated_credentials, {"auths": {token_registry.host: {"identitytoken": refresh}}})

    with server.configure():
        push_to(token_registry, "team/oauth:1")
        grants = {(r.method, r.grant, r.client_id) for r in token_registry.token_requests}
    assert grants == {("POST", "refresh_token", "ocibuild")}
    assert refresh not in repr(RegistryClient(token_registry.host).auth.credential(None))


def test_identity_token_falls_back_to_get_without_oauth2(
    token_registry: Registry, isolated_credentials: Path
) -> None:
    server = token_registry.token_server
    assert server is not None and token_registry.username and token_registry.password
    digest = push_to(token_registry, "team/public:1", token_options(token_registry))
    write_config(isolated_credentials, {"auths": {token_registry.host: {"identitytoken": "r"}}})

    with server.configure(oauth_post=False):
        data, _ = RegistrySource(
            Reference.parse(f"{token_registry.host}/team/public:1")
        ).get_manifest()
        methods = [(r.method, r.status) for r in token_registry.token_requests]
    assert methods[:2] == [("POST", 404), ("GET", 200)]
    assert f"sha256:{__import__('hashlib').sha256(data).hexdigest()}" == digest


def test_registry_token_is_sent_as_is(token_registry: Registry, isolated_credentials: Path) -> None:
    server = token_registry.token_server
    assert server is not None and token_registry.username and token_registry.password
    push_to(token_registry, "team/direct:1", token_options(token_registry))
    answer = httpx.get(
        server.realm,
        params={"service": server.service, "scope": "repository:team/direct:pull"},
        auth=(token_registry.username, token_registry.password),
    )
    token = answer.json()["token"]
    write_config(isolated_credentials, {"auths": {token_registry.host: {"registrytoken": token}}})

    with server.configure():
        data, _ = RegistrySource(
            Reference.parse(f"{token_registry.host}/team/direct:1")
        ).get_manifest()
        assert token_registry.token_requests == []
    assert data


def test_account_without_push_rights_is_refused(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    options = RegistryOptions(username=server.reader_username, password=server.reader_password)
    with pytest.raises(AuthenticationError, match="explicit") as caught:
        push_to(token_registry, "team/readonly:1", options)
    assert server.reader_password not in str(caught.value)


def test_anonymous_pull_of_a_token_registry(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    push_to(token_registry, "team/open:1", token_options(token_registry))
    with server.configure():
        data, _ = RegistrySource(
            Reference.parse(f"{token_registry.host}/team/open:1")
        ).get_manifest()
        grants = {r.grant for r in token_registry.token_requests}
    assert data and grants == {"anonymous"}
    with (
        server.configure(allow_anonymous=False),
        pytest.raises(AuthenticationError, match="anonymous"),
    ):
        RegistrySource(Reference.parse(f"{token_registry.host}/team/open:1")).get_manifest()
