"""Credentials go only to the origin they belong to.

A hostile registry answers every upload with a ``Location`` on another loopback port and
redirects every blob there; that other origin records what it is sent. Whatever the request
(HEAD, GET, POST, PATCH, PUT), the registry's password and token must never reach it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support._origins import Origins, two_origins
from tests.test_append import ocibuild


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "main.py").write_text("print('hi')\n")
    (root / "weights.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB: a chunked upload
    return root


def _store(docker_config: Path, *entries: tuple[str, str, str]) -> None:
    auths = {
        host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for host, user, password in entries
    }
    (docker_config / "config.json").write_text(json.dumps({"auths": auths}))


def _no_secret_left(origins: Origins, went: frozenset[str] = frozenset({"PATCH", "PUT"})) -> None:
    sent = origins.elsewhere.authorizations()
    leaked = [a for a in sent if any(secret in a for secret in origins.secrets())]
    assert leaked == [], f"the other origin received the registry's credentials: {leaked}"
    # the requests did go there: the test would prove nothing otherwise
    methods = {method for method, _, _ in origins.elsewhere.seen}
    assert went <= methods


def _push(origins: Origins, src: Path, *extra: str, stdin: str | None = None) -> str:
    dest = f"{origins.registry.host}/team/app:1"
    args = ["append", "--to", dest, *extra, f"{src}:/app"]
    if stdin is None:
        return ocibuild(*args).stdout.strip()
    proc = subprocess.run(
        [sys.executable, "-m", "ocibuild", *args], input=stdin, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_stored_credentials_stay_with_the_registry(
    scheme: str, src: Path, isolated_credentials: Path, tmp_path: Path
) -> None:
    with two_origins(scheme) as origins:  # type: ignore[arg-type]
        _store(isolated_credentials, (origins.registry.host, origins.username, origins.password))
        pushed = _push(origins, src)
        assert "1" in origins.manifests
        assert origins.registry.authorizations(), "the registry itself was never authenticated"
        _no_secret_left(origins)

        # Pulling follows each blob's redirect to the other origin: without credentials.
        before = len(origins.elsewhere.seen)
        ocibuild("copy", pushed, f"oci:{tmp_path / 'pulled'}:1")
        gets = [s for s in origins.elsewhere.seen[before:] if s[0] == "GET"]
        assert gets, "no blob was fetched from the other origin"
        _no_secret_left(origins, frozenset({"PATCH", "PUT", "GET"}))


def test_explicit_credentials_stay_with_the_registry(src: Path) -> None:
    with two_origins("bearer") as origins:
        _push(
            origins, src, "--username", origins.username, "--password-stdin",
            stdin=origins.password + "\n",
        )  # fmt: skip
        assert "1" in origins.manifests
        _no_secret_left(origins)


def test_another_origin_that_challenges_gets_its_own_credentials(
    src: Path, isolated_credentials: Path
) -> None:
    storage = ("bob", "storage-password")
    with two_origins("bearer", elsewhere_credentials=storage) as origins:
        _store(
            isolated_credentials,
            (origins.registry.host, origins.username, origins.password),
            (origins.elsewhere.host, *storage),
        )
        _push(origins, src)
        _no_secret_left(origins)
        bob = "Basic " + base64.b64encode(b"bob:storage-password").decode()
        assert set(origins.elsewhere.authorizations()) == {bob}


def test_another_origin_that_challenges_without_credentials_fails_cleanly(
    src: Path, isolated_credentials: Path
) -> None:
    with two_origins("basic", elsewhere_credentials=("bob", "x")) as origins:
        _store(isolated_credentials, (origins.registry.host, origins.username, origins.password))
        proc = ocibuild(
            "append", "--to", f"{origins.registry.host}/team/app:1", f"{src}:/app", check=False
        )
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ocibuild: error: "), proc.stderr
        assert "Traceback" not in proc.stderr
        assert origins.password not in proc.stderr
        assert "1" not in origins.manifests  # the tag never moved
        _no_secret_left(origins, frozenset({"PATCH"}))
