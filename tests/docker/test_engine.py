"""The Engine API client: which engine it dials (DOCKER_HOST, contexts, TLS), what it learns
from the engine, how it reads message streams, and how it fails.

Address resolution reads only the environment and files, so each path is checked alone with an
environment of its own; dialling is checked against the real dockerd and podman (Unix sockets)
and a dockerd that verifies its clients over TCP.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocibuild import EngineError, TransportError
from ocibuild.transports.docker import Engine, TLSConfig, resolve_host
from tests.support import BaseInRegistry, skopeo_inspect
from tests.support._engines import RunningEngine, start_dockerd
from tests.support._tls import EngineTLS, make_engine_tls

# --- which engine: resolution alone ----------------------------------------------------------


def make_context(
    config_dir: Path, name: str, host: str, *, tls: Path | None = None, skip_verify: bool = False
) -> None:
    """A docker context as `docker context create` stores it: by the sha256 of its name."""
    key = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / key
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip_verify}
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}})
    )
    if tls is not None:
        target = config_dir / "contexts" / "tls" / key / "docker"
        target.mkdir(parents=True)
        for file in ("ca.pem", "cert.pem", "key.pem"):
            (target / file).write_bytes((tls / file).read_bytes())


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An empty DOCKER_CONFIG, with a context `ci` (tcp) and `local` (unix) in it."""
    directory = tmp_path / "docker-config"
    make_context(directory, "ci", "tcp://10.1.2.3:2375")
    make_context(directory, "local", "unix:///run/local.sock")
    return directory


def test_the_order_is_host_given_then_docker_host_then_context_then_the_default(
    config_dir: Path,
) -> None:
    env = {"DOCKER_CONFIG": str(config_dir), "DOCKER_CONTEXT": "ci"}
    docker_host = {**env, "DOCKER_HOST": "unix:///run/env.sock"}
    assert resolve_host("unix:///run/given.sock", docker_host).host == "unix:///run/given.sock"
    assert resolve_host(None, docker_host).host == "unix:///run/env.sock"
    assert resolve_host(None, docker_host).origin == "DOCKER_HOST"
    assert resolve_host(None, env).host == "tcp://10.1.2.3:2375"
    assert resolve_host(None, env).origin == "docker context 'ci'"
    default = resolve_host(None, {"DOCKER_CONFIG": str(config_dir)})
    assert (default.host, default.socket) == ("unix:///var/run/docker.sock", "/var/run/docker.sock")


def test_the_current_context_comes_from_config_json_unless_docker_context_names_one(
    config_dir: Path,
) -> None:
    (config_dir / "config.json").write_text(json.dumps({"currentContext": "local"}))
    env = {"DOCKER_CONFIG": str(config_dir)}
    assert resolve_host(None, env).host == "unix:///run/local.sock"
    assert resolve_host(None, {**env, "DOCKER_CONTEXT": "ci"}).host == "tcp://10.1.2.3:2375"
    # "default" is the context of DOCKER_HOST and the default socket, with no meta.json.
    assert resolve_host(None, {**env, "DOCKER_CONTEXT": "default"}).origin == "the default socket"
    # Without DOCKER_CONFIG the config is ~/.docker.
    home = config_dir.parent / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text('{"currentContext": "gone"}')
    with pytest.raises(EngineError, match=r"docker context 'gone' \(from currentContext in .*"):
        resolve_host(None, {"HOME": str(home)})


def test_a_context_with_tls_material_speaks_tls_with_it(tmp_path: Path) -> None:
    tls = make_engine_tls(tmp_path / "tls")
    config = tmp_path / "docker-config"
    make_context(config, "secure", "tcp://127.0.0.1:2376", tls=tls.client)
    make_context(config, "lax", "tcp://127.0.0.1:2376", tls=tls.client, skip_verify=True)
    secure = resolve_host(None, {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "secure"})
    stored = config / "contexts" / "tls" / hashlib.sha256(b"secure").hexdigest() / "docker"
    assert secure.tls == TLSConfig(stored / "ca.pem", stored / "cert.pem", stored / "key.pem")
    assert secure.base_url == "https://127.0.0.1:2376"
    lax = resolve_host(None, {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "lax"})
    assert lax.tls is not None and not lax.tls.verify


def test_docker_tls_verify_uses_the_cert_path(tmp_path: Path) -> None:
    tls = make_engine_tls(tmp_path / "tls")
    env = {"DOCKER_HOST": "tcp://127.0.0.1", "DOCKER_TLS_VERIFY": "1"}
    found = resolve_host(None, {**env, "DOCKER_CERT_PATH": str(tls.client)})
    assert found.host == "tcp://127.0.0.1:2376"  # the TLS port when none is given
    assert found.tls == TLSConfig(
        tls.client / "ca.pem", tls.client / "cert.pem", tls.client / "key.pem"
    )
    # Without DOCKER_CERT_PATH, the files are in DOCKER_CONFIG (~/.docker).
    config_found = resolve_host(None, {**env, "DOCKER_CONFIG": str(tls.client)})
    assert config_found.tls == found.tls
    # Plain TCP without the TLS variables; a unix socket ignores them.
    assert resolve_host("tcp://127.0.0.1", {}).host == "tcp://127.0.0.1:2375"
    assert resolve_host("tcp://127.0.0.1", {}).tls is None
    assert resolve_host("unix:///run/x.sock", {**env, "DOCKER_CERT_PATH": "/nope"}).tls is None


def test_missing_tls_files_are_one_line_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS_VERIFY": "1"}
    with pytest.raises(EngineError) as caught:
        resolve_host(None, {**env, "DOCKER_CERT_PATH": str(tmp_path)})
    assert str(caught.value) == (
        f"the engine's TLS is to be verified, but {tmp_path}/ca.pem does not exist; set "
        "DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
    )
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "cert.pem").write_text("x")
    with pytest.raises(EngineError, match=r"key\.pem is missing: a client certificate needs"):
        resolve_host(None, {**env, "DOCKER_CERT_PATH": str(tmp_path)})


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("ssh://me@build", r"ssh:// is not supported; forward the engine's socket"),
        ("npipe:////./pipe/docker_engine", r"write unix:///PATH/docker.sock or tcp://HOST:PORT"),
        ("/var/run/docker.sock", r"write unix:///PATH/docker.sock or tcp://HOST:PORT"),
        ("tcp://127.0.0.1:2375/path", r"write tcp://HOST:PORT"),
        ("tcp://127.0.0.1:port", r"write tcp://HOST:PORT"),
    ],
)
def test_an_address_of_another_form_is_refused(host: str, message: str) -> None:
    with pytest.raises(EngineError, match=message) as caught:
        resolve_host(None, {"DOCKER_HOST": host})
    assert "\n" not in str(caught.value) and "(DOCKER_HOST)" in str(caught.value)


def test_broken_context_files_are_one_line(config_dir: Path) -> None:
    (config_dir / "config.json").write_text("{not json")
    with pytest.raises(EngineError, match=r"cannot read .*config\.json: .*; fix or remove"):
        resolve_host(None, {"DOCKER_CONFIG": str(config_dir)})
    with pytest.raises(EngineError, match=r"docker context 'nope' \(from DOCKER_CONTEXT\)"):
        resolve_host(None, {"DOCKER_CONFIG": str(config_dir), "DOCKER_CONTEXT": "nope"})
    make_context(config_dir, "empty", "")
    with pytest.raises(EngineError, match=r"names no docker endpoint"):
        resolve_host(None, {"DOCKER_CONFIG": str(config_dir), "DOCKER_CONTEXT": "empty"})


# --- unreachable -----------------------------------------------------------------------------


def test_a_missing_socket_is_one_line_naming_it_and_docker_host(tmp_path: Path) -> None:
    socket = tmp_path / "nothing-here.sock"
    with pytest.raises(EngineError) as caught:
        Engine.from_environment(environ={"DOCKER_HOST": f"unix://{socket}"})
    assert str(caught.value) == (
        f"cannot reach a docker engine at unix://{socket} (DOCKER_HOST): no such socket; start "
        "the engine, or point DOCKER_HOST at a running engine (unix:///PATH/docker.sock, or "
        "tcp://HOST:PORT with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
    )
    assert isinstance(caught.value, TransportError) and caught.value.status is None


def test_a_refused_port_names_the_address() -> None:
    with pytest.raises(EngineError, match=r"at tcp://127\.0\.0\.1:9 \(the host given\): Conn"):
        Engine.from_environment("tcp://127.0.0.1:9")


# --- the real engines ------------------------------------------------------------------------


@pytest.mark.xdist_group("docker")
def test_the_engine_is_pinged_and_its_api_negotiated(engine: RunningEngine) -> None:
    with Engine.from_environment(environ={"DOCKER_HOST": engine.host}) as client:
        assert client.host == engine.host
        assert client.api_version == "1.41"
        # dockerd 20.10 builds with BuildKit on request; podman has no BuildKit.
        assert (client.buildkit, client.podman) == (
            (True, False) if engine.kind == "dockerd" else (False, True)
        )
        version = client.request("GET", "/version").json()
        assert version["ApiVersion"] == "1.41"
        with pytest.raises(EngineError) as caught:
            client.request("GET", "/images/no-such-image:1/json")
    assert caught.value.status == 404
    message = str(caught.value)
    assert message.startswith(f"docker engine at {engine.host}: ")
    assert "no-such-image" in message and message.endswith(
        "(GET /images/no-such-image:1/json: HTTP 404)"
    )


@pytest.mark.xdist_group("docker")
def test_a_pull_streams_messages_one_object_at_a_time(
    engine: RunningEngine, base_in_registry: BaseInRegistry
) -> None:
    repository, _, tag = base_in_registry.docker.rpartition(":")
    manifest = json.loads(skopeo_inspect(f"docker://{base_in_registry.docker}", raw=True))
    with Engine.from_environment(environ={"DOCKER_HOST": engine.host}) as client:
        params = {"fromImage": repository, "tag": tag}
        with client.stream("POST", "/images/create", params=params) as response:
            messages = list(client.messages(response))
        assert all(isinstance(m, dict) for m in messages) and len(messages) >= 2
        assert not [m for m in messages if "error" in m or "errorDetail" in m]
        assert any("Pulling" in str(m.get("status", "")) for m in messages)
        found = client.request("GET", f"/images/{repository}:{tag}/json").json()
    assert found["Id"] == manifest["config"]["digest"]
    engine.remove(f"{repository}:{tag}")


def _chunked(*chunks: bytes) -> Iterator[bytes]:
    yield from chunks


@pytest.mark.xdist_group("docker")
def test_messages_split_across_reads_or_sharing_one_are_each_whole(dockerd: RunningEngine) -> None:
    with Engine.from_environment(dockerd.host) as client:
        # As a real engine's writes can arrive: split inside an object (and inside a UTF-8
        # character), two objects in one read, two on one line with no newline between.
        chunks = [b'{"stream":"Step 1/2 \xc3', b'\xa9"}\n{"status":"a"}\n{"aux":{"ID":', b'"x"}}']
        chunks += [b'{"status":"b"}\n\n', b'{"errorDetail":{"message":"no"},"error":"no"}']
        response = httpx.Response(200, content=_chunked(*chunks))
        assert list(client.messages(response)) == [
            {"stream": "Step 1/2 \u00e9"},
            {"status": "a"},
            {"aux": {"ID": "x"}},
            {"status": "b"},
            {"errorDetail": {"message": "no"}, "error": "no"},
        ]
        with pytest.raises(EngineError, match=r"sent a message that is not JSON: '\{\"cut'"):
            list(client.messages(httpx.Response(200, content=_chunked(b'{"ok":1}\n{"cut'))))


# --- TCP with TLS, verified both ways ----------------------------------------------------------


@pytest.fixture(scope="module")
def engine_tls(tmp_path_factory: pytest.TempPathFactory) -> EngineTLS:
    return make_engine_tls(tmp_path_factory.mktemp("engine-tls"))


@pytest.fixture(scope="module")
def tls_dockerd(engine_tls: EngineTLS) -> Iterator[RunningEngine]:
    """A second dockerd that also listens on TCP with --tlsverify."""
    with start_dockerd(tls_dir=engine_tls.server) as running:
        yield running


@pytest.mark.xdist_group("docker")
def test_tcp_with_tls_verifies_the_engine_and_presents_the_client_certificate(
    tls_dockerd: RunningEngine, engine_tls: EngineTLS, tmp_path: Path
) -> None:
    assert tls_dockerd.tcp is not None
    env = {"DOCKER_HOST": tls_dockerd.tcp, "DOCKER_TLS_VERIFY": "1"}
    with Engine.from_environment(environ={**env, "DOCKER_CERT_PATH": str(engine_tls.client)}) as c:
        assert c.host == tls_dockerd.tcp and c.api_version == "1.41"
        assert c.request("GET", "/info").json()["Driver"] == "vfs"
    # The same through a docker context holding the TLS material.
    config = tmp_path / "docker-config"
    make_context(config, "remote", tls_dockerd.tcp, tls=engine_tls.client)
    with Engine.from_environment(
        environ={"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "remote"}
    ) as c:
        assert c.request("GET", "/_ping").text == "OK"


@pytest.mark.xdist_group("docker")
def test_tls_refusals_are_one_line(
    tls_dockerd: RunningEngine, engine_tls: EngineTLS, tmp_path: Path
) -> None:
    assert tls_dockerd.tcp is not None
    env = {"DOCKER_HOST": tls_dockerd.tcp, "DOCKER_TLS_VERIFY": "1"}
    # A client of another CA: the engine does not know its certificate, nor the client the
    # engine's.
    with pytest.raises(EngineError) as caught:
        Engine.from_environment(environ={**env, "DOCKER_CERT_PATH": str(engine_tls.stranger)})
    message = str(caught.value)
    assert message.startswith(f"the TLS handshake with the docker engine at {tls_dockerd.tcp}")
    assert "CERTIFICATE_VERIFY_FAILED" in message and "DOCKER_CERT_PATH" in message
    assert "\n" not in message
    # The engine's CA, but no client certificate, or one the engine's CA did not sign: the
    # engine ends the handshake.
    for name, files in (("anonymous", ()), ("impostor", ("cert.pem", "key.pem"))):
        certs = tmp_path / name
        certs.mkdir()
        (certs / "ca.pem").write_bytes((engine_tls.client / "ca.pem").read_bytes())
        for file in files:
            (certs / file).write_bytes((engine_tls.stranger / file).read_bytes())
        with pytest.raises(EngineError, match=r"^the TLS handshake with .* failed: ") as caught:
            Engine.from_environment(environ={**env, "DOCKER_CERT_PATH": str(certs)})
        assert "BAD_CERTIFICATE" in str(caught.value) and "\n" not in str(caught.value)
    # Plain HTTP to the TLS port is no docker engine answer.
    with pytest.raises(EngineError, match=r"does not answer as a docker engine"):
        Engine.from_environment(tls_dockerd.tcp, environ={})
