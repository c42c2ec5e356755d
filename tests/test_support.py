"""The test infrastructure itself works: registries, auth, TLS, fault proxy, validators, images."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    BUSYBOX_APPLETS,
    HELLO_OUTPUT,
    BaseImage,
    BaseInRegistry,
    DockerArchive,
    FaultProxy,
    LoggedRequest,
    MissingToolError,
    OCISchema,
    Registry,
    SchemaViolation,
    ToolError,
    require,
    run,
    skopeo_copy,
    skopeo_inspect,
    umoci_unpack,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ALL_MANIFESTS = ", ".join(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


# -- plain registry ----------------------------------------------------------------------------


def test_registry_answers_v2_and_logs_requests_since_mark(registry: Registry) -> None:
    registry.mark()
    first = httpx.get(f"{registry.url}/v2/")
    catalog = httpx.get(f"{registry.url}/v2/_catalog", params={"n": 1})

    assert first.status_code == 200
    assert first.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert catalog.status_code == 200
    assert registry.requests(at_least=2) == [
        LoggedRequest("GET", "/v2/", 200),
        LoggedRequest("GET", "/v2/_catalog?n=1", 200),
    ]
    registry.mark()
    assert registry.requests() == []


def test_registry_stores_blobs_in_its_data_dir(registry: Registry) -> None:
    blob = b"stored in the data dir"
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    with httpx.Client(base_url=registry.url) as client:
        location = client.post("/v2/support/data/blobs/uploads/").headers["Location"]
        put = client.put(_with_digest(location, digest), content=blob)

    assert put.status_code == 201
    stored = list(registry.data_dir.rglob(f"blobs/sha256/*/{digest[7:]}/data"))
    assert [p.read_bytes() for p in stored] == [blob]


# -- Basic auth and TLS -----------------------------------------------------------------------


def test_basic_registry_refuses_without_credentials_and_accepts_with(
    basic_registry: Registry,
) -> None:
    assert basic_registry.username and basic_registry.password
    anonymous = httpx.get(f"{basic_registry.url}/v2/")
    wrong = httpx.get(f"{basic_registry.url}/v2/", auth=(basic_registry.username, "wrong"))
    right = httpx.get(
        f"{basic_registry.url}/v2/", auth=(basic_registry.username, basic_registry.password)
    )

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_skopeo_passes_creds_to_the_basic_registry(
    basic_registry: Registry, base_layout: BaseImage
) -> None:
    dest = f"docker://{basic_registry.host}/support/basic:1"
    with pytest.raises(ToolError, match=r"unauthorized|authentication required"):
        skopeo_copy(base_layout.ref, dest)
    digest = skopeo_copy(base_layout.ref, dest, creds=basic_registry.creds)

    assert skopeo_inspect(dest, creds=basic_registry.creds)["Digest"] == digest


def test_tls_registry_needs_its_ca(tls_registry: Registry) -> None:
    assert tls_registry.url.startswith("https://127.0.0.1:")
    assert tls_registry.ca_file is not None and tls_registry.cert_dir is not None
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_registry.url}/v2/")
    context = ssl.create_default_context(cafile=str(tls_registry.ca_file))

    assert httpx.get(f"{tls_registry.url}/v2/", verify=context).status_code == 200
    assert httpx.get(f"https://localhost:{tls_registry.port}/v2/", verify=context).is_success
    assert [p.name for p in tls_registry.cert_dir.iterdir()] == ["ca.crt"]


def test_skopeo_verifies_the_tls_registry_with_cert_dir(
    tls_registry: Registry, base_layout: BaseImage
) -> None:
    dest = f"docker://{tls_registry.host}/support/tls:1"
    digest = skopeo_copy(base_layout.ref, dest, tls_verify=True, cert_dir=tls_registry.cert_dir)

    raw = skopeo_inspect(dest, raw=True, tls_verify=True, cert_dir=tls_registry.cert_dir)
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == digest
    with pytest.raises(ToolError, match="certificate"):
        skopeo_inspect(dest, raw=True, tls_verify=True)


# -- token auth -------------------------------------------------------------------------------


def test_token_flow_by_hand(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    with server.configure():
        challenge = httpx.get(f"{token_registry.url}/v2/support/token/tags/list")
        params = _bearer_params(challenge.headers["WWW-Authenticate"])
        answer = httpx.get(
            params.pop("realm"),
            params=params,
            auth=(token_registry.username or "", token_registry.password or ""),
        )
        token = answer.json()["token"]
        retried = httpx.get(
            f"{token_registry.url}/v2/support/token/tags/list",
            headers={"Authorization": f"Bearer {token}"},
        )

        assert challenge.status_code == 401
        assert params == {"service": server.service, "scope": "repository:support/token:pull"}
        assert answer.json()["access_token"] == token
        assert retried.status_code == 404  # authorized; the repository just does not exist
        assert retried.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        header, claims = _jwt_parts(token)
        assert header["alg"] == "RS256" and len(header["x5c"]) == 1
        assert claims["aud"] == server.service and claims["iss"] == server.issuer
        assert claims["sub"] == token_registry.username
        assert claims["access"] == [
            {"type": "repository", "name": "support/token", "actions": ["pull"]}
        ]
        assert {"exp", "nbf", "iat", "jti"} <= claims.keys()
        (recorded,) = token_registry.token_requests
        assert (recorded.method, recorded.grant, recorded.who) == ("GET", "basic", "tester")
        assert recorded.scopes == ("repository:support/token:pull",)


def test_token_server_records_repeated_scopes_and_grants_per_account(
    token_registry: Registry,
) -> None:
    server = token_registry.token_server
    assert server is not None
    scopes = ["repository:team/a:pull", "repository:team/b:pull,push"]
    asked = {"service": server.service, "scope": scopes}
    with server.configure():
        full = httpx.get(server.realm, params=asked, auth=(server.username, server.password))
        reader = httpx.get(
            server.realm, params=asked, auth=(server.reader_username, server.reader_password)
        )
        anonymous = httpx.get(server.realm, params=asked)
        refused = httpx.get(server.realm, params=asked, auth=(server.username, "wrong"))

        assert [r.status_code for r in (full, reader, anonymous, refused)] == [200, 200, 200, 401]
        records = token_registry.token_requests
        assert [r.scopes for r in records] == [tuple(scopes)] * 4
        assert [r.granted for r in records] == [
            ("repository:team/a:pull", "repository:team/b:pull,push"),
            ("repository:team/a:pull", "repository:team/b:pull"),
            ("repository:team/a:pull", "repository:team/b:pull"),
            (),
        ]
        assert [(r.grant, r.who) for r in records] == [
            ("basic", "tester"),
            ("basic", "reader"),
            ("anonymous", None),
            ("basic", "tester"),
        ]


def test_token_server_anonymous_access_is_configurable(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    scope = {"service": server.service, "scope": "repository:x:pull"}
    with server.configure(anonymous_actions=frozenset()):
        nothing = httpx.get(server.realm, params=scope)
        assert _jwt_parts(nothing.json()["token"])[1]["access"] == []
    with server.configure(allow_anonymous=False):
        assert httpx.get(server.realm, params=scope).status_code == 401
    assert httpx.get(server.realm, params=scope).status_code == 200


def test_token_server_oauth_post_password_then_refresh(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    with server.configure():
        first = httpx.post(
            server.realm,
            data={
                "grant_type": "password",
                "username": server.username,
                "password": server.password,
                "service": server.service,
                "client_id": "ocibuild-tests",
                "access_type": "offline",
                "scope": "repository:team/b:pull,push repository:team/a:pull",
            },
        )
        refresh = first.json()["refresh_token"]
        second = httpx.post(
            server.realm,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "service": server.service,
                "scope": "repository:team/a:pull",
            },
        )
        bogus = httpx.post(
            server.realm,
            data={
                "grant_type": "refresh_token",
                "refresh_token": "not-issued",
                "service": server.service,
            },
        )
        get_offline = httpx.get(
            server.realm,
            params={"service": server.service, "offline_token": "true"},
            auth=(server.username, server.password),
        )

        assert first.status_code == 200 and second.status_code == 200
        assert first.json()["scope"] == "repository:team/b:pull,push repository:team/a:pull"
        assert second.json()["refresh_token"] == refresh
        assert bogus.status_code == 400 and bogus.json() == {"error": "invalid_grant"}
        assert get_offline.json()["refresh_token"] == refresh
        records = token_registry.token_requests
        assert [(r.method, r.grant, r.who, r.offline) for r in records] == [
            ("POST", "password", "tester", True),
            ("POST", "refresh_token", "tester", False),
            ("POST", "refresh_token", None, False),
            ("GET", "basic", "tester", True),
        ]
        assert records[0].client_id == "ocibuild-tests"
    with server.configure(oauth_post=False):
        assert httpx.post(server.realm, data={"grant_type": "password"}).status_code == 404


def test_token_server_can_make_the_registry_refuse_a_token_soon(token_registry: Registry) -> None:
    server = token_registry.token_server
    assert server is not None
    url = f"{token_registry.url}/v2/"
    # The registry accepts the token for 3 to 4 s (`exp` is in whole seconds).
    with server.configure(accept_for=3, expires_in=3600):
        answer = httpx.get(
            server.realm,
            params={"service": server.service},
            auth=(server.username, server.password),
        )
        bearer = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert answer.json()["expires_in"] == 3600
        assert httpx.get(url, headers=bearer).status_code == 200
        deadline = time.monotonic() + 5
        while httpx.get(url, headers=bearer).status_code == 200:
            assert time.monotonic() < deadline, "the registry still accepts the token"
            time.sleep(0.2)


# -- fault proxy ------------------------------------------------------------------------------


def test_fault_proxy_forwards_with_keep_alive_and_streams_chunked_uploads(
    registry: Registry, make_fault_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_fault_proxy(registry.url)
    blob = os.urandom(3_000_000)
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    with httpx.Client(base_url=proxy.url) as client:
        start = client.post("/v2/support/proxy/blobs/uploads/")
        patch = client.patch(start.headers["Location"], content=_chunks(blob, 100_000))
        put = client.put(_with_digest(patch.headers["Location"], digest))
        got = client.get(f"/v2/support/proxy/blobs/{digest}")
        head = client.head(f"/v2/support/proxy/blobs/{digest}")

    assert patch.status_code == 202 and patch.headers["Range"] == f"0-{len(blob) - 1}"
    assert put.status_code == 201
    assert got.content == blob
    assert head.headers["Content-Length"] == str(len(blob))
    assert proxy.connections == 1
    assert [(r.method, r.status) for r in proxy.requests] == [
        ("POST", 202),
        ("PATCH", 202),
        ("PUT", 201),
        ("GET", 200),
        ("HEAD", 200),
    ]
    # Location headers point back at the proxy, so a client stays behind it.
    assert start.headers["Location"].startswith(f"{proxy.url}/v2/support/proxy/blobs/uploads/")


def test_fault_proxy_answers_a_status_then_lets_requests_through(
    registry: Registry, make_fault_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_fault_proxy(registry.url)
    fault = proxy.add_fault(
        method="PATCH", path_contains="/blobs/uploads/", status=503, retry_after=2, times=1
    )
    with httpx.Client(base_url=proxy.url) as client:
        location = client.post("/v2/support/status/blobs/uploads/").headers["Location"]
        failed = client.patch(location, content=_chunks(b"x" * 300_000, 65536))
        passed = client.patch(location, content=b"y" * 1000)

    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "2"
    assert failed.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert passed.status_code == 202
    assert fault.hits == 1 and fault.times == 0
    assert [(r.method, r.status) for r in proxy.requests] == [
        ("POST", 202),
        ("PATCH", 503),
        ("PATCH", 202),
    ]
    assert proxy.connections == 1  # the error answer kept the connection usable


@pytest.mark.parametrize("after_bytes", [None, 200_000])
def test_fault_proxy_drops_mid_body_and_the_next_connection_works(
    registry: Registry, make_fault_proxy: Callable[[str], FaultProxy], after_bytes: int | None
) -> None:
    proxy = make_fault_proxy(registry.url)
    proxy.add_fault(method="PATCH", action="drop", after_bytes=after_bytes)
    with httpx.Client(base_url=proxy.url) as client:
        location = client.post("/v2/support/drop/blobs/uploads/").headers["Location"]
        with pytest.raises(httpx.TransportError):
            client.patch(location, content=_chunks(os.urandom(1_000_000), 50_000))
        status = client.get(location)

    assert status.status_code == 204 and status.headers["Range"] == "0-0"
    assert proxy.requests[1] == LoggedRequest("PATCH", _path(location), None)
    assert proxy.connections == 2


def test_fault_proxy_stop_and_close_upstream_make_the_registry_vanish(
    registry: Registry, make_fault_proxy: Callable[[str], FaultProxy]
) -> None:
    gone, stopped = make_fault_proxy(registry.url), make_fault_proxy(registry.url)
    assert httpx.get(f"{gone.url}/v2/").status_code == 200
    gone.close_upstream()
    stopped.stop()

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{gone.url}/v2/")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stopped.url}/v2/")
    assert gone.requests == [LoggedRequest("GET", "/v2/", 200), LoggedRequest("GET", "/v2/", None)]


def test_skopeo_copies_through_the_fault_proxy(
    registry: Registry, make_fault_proxy: Callable[[str], FaultProxy], base_layout: BaseImage
) -> None:
    proxy = make_fault_proxy(registry.url)
    digest = skopeo_copy(base_layout.ref, f"docker://{proxy.host}/support/skopeo:1")

    assert digest == base_layout.manifest_digest
    assert ("PUT", "/v2/support/skopeo/manifests/1", 201) in proxy.requests


# -- validators and base images ---------------------------------------------------------------


def test_busybox_rootfs_runs(busybox_rootfs: Path) -> None:
    shell = busybox_rootfs / "bin" / "sh"
    out = subprocess.run([shell, "-c", "echo hi"], capture_output=True, check=True).stdout

    assert out == b"hi\n"
    assert sorted(p.name for p in (busybox_rootfs / "bin").iterdir()) == sorted(
        [*BUSYBOX_APPLETS, "busybox"]
    )
    assert (busybox_rootfs / "etc" / "passwd").read_text().startswith("root:x:0:0:")


def test_base_layout_is_valid_and_unpacks(
    base_layout: BaseImage, oci_schema: OCISchema, tmp_path: Path
) -> None:
    summary = oci_schema.validate_layout_dir(base_layout.path)
    rootfs = umoci_unpack(base_layout.path, base_layout.tag, tmp_path / "bundle")
    hello = subprocess.run(
        [rootfs / "bin" / "busybox", "sh", rootfs / "usr" / "local" / "bin" / "hello"],
        capture_output=True,
        check=True,
    )

    assert summary.manifests == 1 and summary.blobs == 4
    assert base_layout.layers == 2
    assert [layer["mediaType"] for layer in base_layout.manifest["layers"]] == [GZIP_LAYER] * 2
    config = base_layout.config["config"]
    assert config["Env"][0] == "PATH=/usr/local/bin:/usr/bin:/bin"
    assert not any(e.startswith("PYTHON_VERSION=") for e in config["Env"])
    assert (config["Entrypoint"], config["Cmd"]) == (["/bin/sh", "-c"], ["hello"])
    assert config["WorkingDir"] == "/root" and config["Labels"]["ocibuild.test"] == "base"
    assert (rootfs / "bin" / "sh").readlink() == Path("busybox")
    assert "ocibuild test base" in (rootfs / "etc" / "os-release").read_text()
    assert hello.stdout.decode().strip() == HELLO_OUTPUT


def test_skopeo_inspects_the_base_images(
    base_layout: BaseImage, base_in_registry: BaseInRegistry, docker_archive_base: DockerArchive
) -> None:
    oci = skopeo_inspect(f"docker://{base_in_registry.oci}", raw=True)
    docker = json.loads(skopeo_inspect(f"docker://{base_in_registry.docker}", raw=True))
    multi = json.loads(skopeo_inspect(f"docker://{base_in_registry.multi}", raw=True))
    archive = skopeo_inspect(docker_archive_base.ref)
    layout = skopeo_inspect(base_layout.ref)

    assert f"sha256:{hashlib.sha256(oci).hexdigest()}" == base_in_registry.oci_digest
    assert base_in_registry.oci_digest == base_layout.manifest_digest
    assert docker["mediaType"] == DOCKER_MANIFEST
    assert multi["mediaType"] == OCI_INDEX
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in multi["manifests"]
    }
    assert platforms == base_in_registry.platform_digests
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    arm64 = skopeo_inspect(
        f"docker://{base_in_registry.host}/base/multi@{platforms['linux/arm64']}", config=True
    )
    assert arm64["architecture"] == "arm64"
    assert len(archive["Layers"]) == len(layout["Layers"]) == 2
    assert archive["Env"] == layout["Env"]


def test_registry_serves_oci_manifests_only_to_clients_that_accept_them(
    base_in_registry: BaseInRegistry,
) -> None:
    host, _, rest = base_in_registry.oci.partition("/")
    name, _, tag = rest.partition(":")
    url = f"http://{host}/v2/{name}/manifests/{tag}"

    accepted = httpx.get(url, headers={"Accept": ALL_MANIFESTS})
    assert accepted.headers["Docker-Content-Digest"] == base_in_registry.oci_digest
    assert httpx.get(url).status_code == 404  # distribution 2.8, see test-infra.md


def test_schema_rejects_bad_documents(oci_schema: OCISchema, base_layout: BaseImage) -> None:
    manifest = base_layout.manifest
    oci_schema.validate_manifest(manifest)
    oci_schema.validate_config(base_layout.config)

    bad_size = _edited(manifest, lambda m: m["layers"][0].update(size=-1))
    with pytest.raises(SchemaViolation, match="layers/0/size"):
        oci_schema.validate_manifest(bad_size)
    mixed = _edited(manifest, lambda m: m["layers"][0].update(mediaType=DOCKER_LAYER))
    with pytest.raises(SchemaViolation, match="OCI manifest refers to"):
        oci_schema.validate_manifest(mixed)
    with pytest.raises(SchemaViolation, match="mediaType"):
        oci_schema.validate_index({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": []})
    no_history = _edited(base_layout.config, lambda c: c["history"].pop(0))
    with pytest.raises(SchemaViolation, match="non-empty history"):
        oci_schema.validate_config(no_history)
    with pytest.raises(SchemaViolation, match="imageLayoutVersion"):
        oci_schema.validate_layout(b'{"imageLayoutVersion": "2.0.0"}')


def test_schema_rejects_a_layout_with_a_corrupt_blob(
    oci_schema: OCISchema, base_layout: BaseImage, tmp_path: Path
) -> None:
    layout = Path(shutil.copytree(base_layout.path, tmp_path / "layout"))
    layer = base_layout.manifest["layers"][1]["digest"].partition(":")[2]
    blob = layout / "blobs" / "sha256" / layer
    blob.write_bytes(blob.read_bytes() + b"\0")

    with pytest.raises(SchemaViolation, match=f"blob .*{layer} hashes to"):
        oci_schema.validate_layout_dir(layout)
    blob.unlink()
    with pytest.raises(SchemaViolation, match=f"no blob for sha256:{layer}"):
        oci_schema.validate_layout_dir(layout)


def test_missing_tools_and_failing_commands_are_loud() -> None:
    with pytest.raises(MissingToolError, match="apt-get install -y no-such-tool-xyz"):
        require("no-such-tool-xyz")
    with pytest.raises(ToolError, match="invalid image detected"):
        run(["umoci", "stat", "--image", "/nonexistent-layout:tag"])
    with pytest.raises(ToolError) as raised:
        run(["skopeo", "inspect", "--creds", "user:hunter2", "docker://127.0.0.1:1/x:1"])
    assert "hunter2" not in str(raised.value)


# -- helpers ----------------------------------------------------------------------------------

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _with_digest(location: str, digest: str) -> str:
    # Upload locations carry their own query (`_state`): append, never replace.
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _bearer_params(challenge: str) -> dict[str, str]:
    scheme, _, params = challenge.partition(" ")
    assert scheme == "Bearer"
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, claims, _ = token.split(".")
    return _b64url_json(header), _b64url_json(claims)


def _b64url_json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _edited(doc: dict[str, Any], edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(doc))
    edit(copy)
    return copy
