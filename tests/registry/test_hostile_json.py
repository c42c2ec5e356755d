"""A registry (real HTTP on loopback, canned answers) whose JSON is hostile: nested past
Python's recursion limit, or a config descriptor too large to read whole. Each ends in one
``OCIBuildError`` line, never a ``RecursionError``, ``OverflowError`` or a huge read."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ocibuild._errors import OCIBuildError
from ocibuild.image import Image
from ocibuild.oci import media_types as mt
from ocibuild.registry import RegistryOptions

DEEP = b"[" * 100_000 + b"]" * 100_000
DIGEST = "sha256:" + "a" * 64

Answer = tuple[int, dict[str, str], bytes]


class Canned:
    """A registry that answers each path from ``routes``; 404 for the rest; logs the paths."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {"/v2/": (200, {}, b"{}")}
        self.seen: list[str] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canned.seen.append(self.path)
                status, headers, body = canned.routes.get(self.path.split("?")[0], (404, {}, b""))
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def load(self, ref: str = "r:t") -> OCIBuildError:
        options = RegistryOptions(insecure=frozenset({self.host}), retry_budget=2)
        with pytest.raises(OCIBuildError) as caught:
            Image.load(f"{self.host}/{ref}", registry_options=options)
        message = str(caught.value)
        assert message and "\n" not in message
        return caught.value


@pytest.fixture
def canned() -> Iterator[Canned]:
    server = Canned()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def test_a_deeply_nested_error_body(canned: Canned) -> None:
    canned.routes["/v2/r/manifests/t"] = (400, {"Content-Type": "application/json"}, DEEP)
    canned.load()


def test_a_deeply_nested_manifest_served_as_plain_json(canned: Canned) -> None:
    canned.routes["/v2/r/manifests/t"] = (200, {"Content-Type": "application/json"}, DEEP)
    assert "too deeply" in str(canned.load())


def test_a_config_too_large_to_read_whole_is_not_requested(canned: Canned) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": DIGEST, "size": 9 << 20},
        "layers": [],
    }
    body = json.dumps(manifest).encode()
    canned.routes["/v2/r/manifests/t"] = (200, {"Content-Type": mt.OCI_MANIFEST}, body)
    assert "at most 8 MiB" in str(canned.load())
    assert not [path for path in canned.seen if "/blobs/" in path]


@pytest.mark.parametrize("token", [DEEP, b'{"token": "t", "expires_in": 1e999}'])
def test_a_hostile_token_answer(canned: Canned, token: bytes) -> None:
    realm = f'Bearer realm="http://{canned.host}/token",service="s"'
    canned.routes["/v2/"] = (401, {"WWW-Authenticate": realm}, b"")
    canned.routes["/v2/r/manifests/t"] = (401, {"WWW-Authenticate": realm}, b"")
    canned.routes["/token"] = (200, {"Content-Type": "application/json"}, token)
    assert "token" in str(canned.load())
