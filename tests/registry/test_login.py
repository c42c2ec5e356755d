"""login / logout round trips with a config file and with a credential helper."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ocibuild._errors import AuthenticationError
from ocibuild.oci import Reference
from ocibuild.registry import RegistryOptions, RegistrySink, login, logout
from tests.support import Registry

from ._util import make_layer, path_with, push_image, write_credential_helper


def test_login_stores_in_the_config_and_logout_erases(
    basic_registry: Registry, isolated_credentials: Path
) -> None:
    assert basic_registry.username and basic_registry.password
    config = isolated_credentials / "config.json"
    config.write_text(json.dumps({"auths": {"other.example": {"auth": "b3RoZXI6eA=="}}}))

    where = login(
        f"https://{basic_registry.host}/", basic_registry.username, basic_registry.password
    )

    assert where == str(config)
    auths = json.loads(config.read_text())["auths"]
    assert set(auths) == {"other.example", basic_registry.host}
    stored = base64.b64decode(auths[basic_registry.host]["auth"]).decode()
    assert stored == f"{basic_registry.username}:{basic_registry.password}"
    assert config.stat().st_mode & 0o077 == 0
    sink = RegistrySink(Reference.parse(f"{basic_registry.host}/login/file:1"))
    push_image(sink, [make_layer({"l": b"login"})], tag="1")

    assert logout(basic_registry.host) is True
    assert set(json.loads(config.read_text())["auths"]) == {"other.example"}
    assert logout(basic_registry.host) is False
    with pytest.raises(AuthenticationError, match="anonymous"):
        push_image(
            RegistrySink(Reference.parse(f"{basic_registry.host}/login/file:2")),
            [make_layer({"l": b"again"})],
            tag="1",
        )


def test_login_with_a_wrong_password_stores_nothing(
    basic_registry: Registry, isolated_credentials: Path
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        login(basic_registry.host, "tester", "definitely-wrong-password")
    assert "definitely-wrong-password" not in str(caught.value)
    assert not (isolated_credentials / "config.json").exists()


def test_login_and_logout_through_a_helper(
    basic_registry: Registry,
    isolated_credentials: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert basic_registry.username and basic_registry.password
    helper = write_credential_helper(tmp_path / "bin")
    monkeypatch.setenv("PATH", path_with(helper.parent))
    config = isolated_credentials / "config.json"
    config.write_text(json.dumps({"credsStore": "test"}))

    where = login(basic_registry.host, basic_registry.username, basic_registry.password)

    assert where == "credential helper docker-credential-test"
    store = json.loads((helper.parent / "store.json").read_text())
    assert store == {basic_registry.host: [basic_registry.username, basic_registry.password]}
    on_disk = config.read_text()
    assert basic_registry.password not in on_disk
    assert json.loads(on_disk)["auths"] == {basic_registry.host: {}}
    push_image(
        RegistrySink(Reference.parse(f"{basic_registry.host}/login/helper:1")),
        [make_layer({"h": b"helper"})],
        tag="1",
    )

    assert logout(basic_registry.host) is True
    assert json.loads((helper.parent / "store.json").read_text()) == {}
    assert logout(basic_registry.host) is False


def test_login_to_a_token_registry(token_registry: Registry, tmp_path: Path) -> None:
    assert token_registry.username and token_registry.password
    auth_file = tmp_path / "auth.json"
    options = RegistryOptions(auth_file=str(auth_file))

    assert login(
        token_registry.host, token_registry.username, token_registry.password, options
    ) == str(auth_file)

    assert token_registry.host in json.loads(auth_file.read_text())["auths"]
    with pytest.raises(AuthenticationError):
        login(token_registry.host, token_registry.username, "wrong", options)
    assert logout(token_registry.host, options) is True


def test_login_writes_through_a_symlinked_config_and_makes_private_dirs(
    basic_registry: Registry, isolated_credentials: Path, tmp_path: Path
) -> None:
    assert basic_registry.username and basic_registry.password
    real = tmp_path / "dotfiles" / "docker.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"auths": {"other.example": {"auth": "b3RoZXI6eA=="}}}))
    link = isolated_credentials / "config.json"
    link.symlink_to(real)
    login(basic_registry.host, basic_registry.username, basic_registry.password)
    assert link.is_symlink() and link.resolve() == real  # the link is kept, as Docker does
    assert set(json.loads(real.read_text())["auths"]) == {"other.example", basic_registry.host}

    fresh = tmp_path / "new" / "docker"
    login(
        basic_registry.host,
        basic_registry.username,
        basic_registry.password,
        RegistryOptions(auth_file=str(fresh / "config.json")),
    )
    assert (fresh / "config.json").is_file()
    assert fresh.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
