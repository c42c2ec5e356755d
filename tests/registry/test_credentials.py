"""Where credentials come from: explicit, helpers, Docker config, containers auth.json, in order."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from ocibuild._errors import CredentialError
from ocibuild.registry import RegistryOptions, find_credential
from ocibuild.transports.registry._credentials import ANONYMOUS
from tests.support import Registry
from tests.test_append import ocibuild

from ._util import path_with, write_credential_helper

NONE = RegistryOptions()


def auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    program = write_credential_helper(tmp_path / "helper-bin")
    monkeypatch.setenv("PATH", path_with(program.parent))
    return program.parent / "store.json"


def test_nothing_configured_is_anonymous() -> None:
    assert find_credential("reg.example", "app", NONE) == ANONYMOUS


def test_config_auth_entry(isolated_credentials: Path) -> None:
    config = write(
        isolated_credentials / "config.json",
        {"auths": {"reg.example:5000": auth("u", "p:with:colons")}},
    )
    found = find_credential("reg.example:5000", "app", NONE)
    assert (found.username, found.password, found.source) == ("u", "p:with:colons", str(config))


def test_keys_match_after_stripping_scheme_and_path(isolated_credentials: Path) -> None:
    write(
        isolated_credentials / "config.json",
        {
            "auths": {
                "https://reg.example:5000/v2/": auth("u", "p"),
                "https://index.docker.io/v1/": auth("hub", "h"),
            }
        },
    )
    assert find_credential("reg.example:5000", None, NONE).username == "u"
    assert find_credential("docker.io", "library/python", NONE).username == "hub"
    assert find_credential("reg.example", None, NONE) == ANONYMOUS  # the port is part of the host


def test_precedence_helper_then_store_then_file(isolated_credentials: Path, helper: Path) -> None:
    write(helper, {"reg.example": ["from-helper", "h"], "other.example": ["from-store", "s"]})
    write(
        isolated_credentials / "config.json",
        {
            "credHelpers": {"reg.example": "test"},
            "credsStore": "test",
            "auths": {"reg.example": auth("from-file", "f"), "third.example": auth("file3", "f")},
        },
    )
    assert find_credential("reg.example", None, NONE).username == "from-helper"
    assert find_credential("other.example", None, NONE).username == "from-store"
    found = find_credential("third.example", None, NONE)
    assert found.username == "file3"  # the store had nothing for it
    assert (
        find_credential("reg.example", None, NONE).source
        == "credential helper docker-credential-test"
    )
    explicit = RegistryOptions(username="me", password="secret")
    assert find_credential("reg.example", None, explicit).source == "explicit"


def test_helper_identity_token(isolated_credentials: Path, helper: Path) -> None:
    write(helper, {"reg.example": ["<token>", "refresh-me"]})
    write(isolated_credentials / "config.json", {"credHelpers": {"reg.example": "test"}})
    found = find_credential("reg.example", None, NONE)
    assert found.identity_token == "refresh-me" and found.username is None
    assert "refresh-me" not in repr(found)


def test_identity_and_registry_tokens_in_the_file(isolated_credentials: Path) -> None:
    write(
        isolated_credentials / "config.json",
        {
            "auths": {
                "a.example": {"identitytoken": "idt"},
                "b.example": {"registrytoken": "rgt"},
            }
        },
    )
    assert find_credential("a.example", None, NONE).identity_token == "idt"
    assert find_credential("b.example", None, NONE).registry_token == "rgt"


def test_missing_helper_warns_with_its_name_and_moves_on(
    isolated_credentials: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        isolated_credentials / "config.json",
        {
            "credsStore": "nowhere-to-be-found",
            "auths": {"reg.example": auth("u", "p")},
        },
    )
    with caplog.at_level(logging.WARNING, logger="ocibuild"):
        assert find_credential("reg.example", None, NONE).username == "u"
    (record,) = caplog.records  # once, as a log record, not also as a Python warning
    assert "docker-credential-nowhere-to-be-found" in record.getMessage()


def test_containers_auth_files_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = write(
        tmp_path / "run" / "containers" / "auth.json",
        {"auths": {"reg.example": auth("runtime", "r")}},
    )
    config_home = write(
        tmp_path / "home" / ".config" / "containers" / "auth.json",
        {"auths": {"reg.example": auth("config", "c"), "only.example": auth("config", "c")}},
    )
    assert find_credential("reg.example", None, NONE).source == str(runtime)
    assert find_credential("only.example", None, NONE).source == str(config_home)
    explicit = write(tmp_path / "explicit.json", {"auths": {"reg.example": auth("env", "e")}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert find_credential("reg.example", None, NONE).username == "env"


def test_namespaced_keys_match_the_most_specific(tmp_path: Path) -> None:
    write(
        tmp_path / "home" / ".config" / "containers" / "auth.json",
        {
            "auths": {
                "reg.example/team/app": auth("app", "a"),
                "reg.example/team": auth("team", "t"),
                "reg.example": auth("host", "h"),
                "reg.example/other": auth("other", "o"),
            }
        },
    )
    assert find_credential("reg.example", "team/app", NONE).username == "app"
    assert find_credential("reg.example", "team/tool", NONE).username == "team"
    assert find_credential("reg.example", "solo", NONE).username == "host"


def test_docker_config_comes_before_containers_files(
    isolated_credentials: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "REGISTRY_AUTH_FILE",
        str(write(tmp_path / "a.json", {"auths": {"reg.example": auth("containers", "c")}})),
    )
    write(isolated_credentials / "config.json", {"auths": {"reg.example": auth("docker", "d")}})
    assert find_credential("reg.example", None, NONE).username == "docker"


def test_auth_file_option_replaces_the_chain(isolated_credentials: Path, tmp_path: Path) -> None:
    write(isolated_credentials / "config.json", {"auths": {"reg.example": auth("docker", "d")}})
    own = write(tmp_path / "own.json", {"auths": {}})
    assert find_credential("reg.example", None, RegistryOptions(auth_file=str(own))) == ANONYMOUS
    with pytest.raises(CredentialError, match="does not exist"):
        find_credential("reg.example", None, RegistryOptions(auth_file=str(tmp_path / "no.json")))


def test_docker_auth_config_env(
    monkeypatch: pytest.MonkeyPatch, isolated_credentials: Path
) -> None:
    write(isolated_credentials / "config.json", {"auths": {"reg.example": auth("file", "f")}})
    monkeypatch.setenv(
        "DOCKER_AUTH_CONFIG", json.dumps({"auths": {"reg.example": auth("env", "e")}})
    )
    found = find_credential("reg.example", None, NONE)
    assert (found.username, found.source) == ("env", "$DOCKER_AUTH_CONFIG")


def test_broken_entries_are_errors_without_secrets(isolated_credentials: Path) -> None:
    broken = {"auth": base64.b64encode(b"no-colon-secret").decode()}
    write(isolated_credentials / "config.json", {"auths": {"reg.example": broken}})
    with pytest.raises(CredentialError) as caught:
        find_credential("reg.example", None, NONE)
    assert "no-colon-secret" not in str(caught.value)
    (isolated_credentials / "config.json").write_text("{not json")
    with pytest.raises(CredentialError, match="not valid JSON"):
        find_credential("reg.example", None, NONE)


def test_the_cli_says_a_missing_helper_once_on_one_line(
    basic_registry: Registry, isolated_credentials: Path
) -> None:
    assert basic_registry.username and basic_registry.password
    write(
        isolated_credentials / "config.json",
        {
            "credsStore": "nowhere-to-be-found",
            "auths": {basic_registry.host: auth(basic_registry.username, basic_registry.password)},
        },
    )
    proc = ocibuild("copy", "scratch", f"{basic_registry.host}/cred/helper:1")
    assert proc.stderr.splitlines() == [
        "ocibuild: warning: credential helper docker-credential-nowhere-to-be-found "
        f"(configured in {isolated_credentials / 'config.json'}) is not on PATH; "
        "trying the next credential source"
    ]
