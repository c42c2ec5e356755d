"""``-v`` traces every HTTP request (method, URL, status, time) and never a secret."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from ocibuild.transports.registry._trace import redacted_url
from tests.support import Registry


def _push(registry: Registry, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "main.py"
    src.write_text("print('hi')\n")
    dest = f"{registry.host}/verbose-{uuid.uuid4().hex[:8]}:1"
    args = ["append", *flags, "--to", dest, "--username", str(registry.username)]
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args, "--password-stdin", f"{src}:/main.py"],
        input=f"{registry.password}\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("kind", ["basic_registry", "token_registry"])
def test_verbose_traces_requests_and_no_password_or_token(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    registry: Registry = request.getfixturevalue(kind)
    proc = _push(registry, tmp_path, "-v")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    traced = [line for line in lines if re.match(r"ocibuild: debug: [A-Z]+ https?://", line)]
    assert any(f"GET http://{registry.host}/v2/ -> 401 in " in line for line in traced), lines
    assert any(re.search(r"PUT \S+/manifests/1 -> 201 in \d+ ms$", line) for line in traced)
    assert len(traced) >= 6
    assert registry.password and registry.username
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    for secret in (registry.password, basic, "eyJ", "Bearer ", "Basic "):
        assert secret not in proc.stderr, secret


def test_without_verbose_nothing_is_traced(basic_registry: Registry, tmp_path: Path) -> None:
    proc = _push(basic_registry, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "debug:" not in proc.stderr


def test_urls_lose_user_info_and_unknown_query_values() -> None:
    url = httpx.URL(
        "https://user:pw@s3.example/blob?X-Amz-Signature=abc&X-Amz-Credential=key&digest=sha256:1"
    )
    assert redacted_url(url) == (
        "https://s3.example/blob?X-Amz-Signature=…&X-Amz-Credential=…&digest=sha256:1"
    )
    state = httpx.URL("http://r/v2/a/blobs/uploads/u?_state=secret-ish&digest=sha256:2")
    assert redacted_url(state) == "http://r/v2/a/blobs/uploads/u?_state=…&digest=sha256:2"
