"""Pulling: OCI and Docker manifests, indexes, blobs streamed and verified, errors."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ocibuild._errors import DigestMismatchError, NotFoundError
from ocibuild.oci import Descriptor, Digest, Index, Manifest, Platform, Reference
from ocibuild.oci import media_types as mt
from ocibuild.oci._blobs import VerifyingStream
from ocibuild.registry import RegistryClient, RegistrySource
from tests.support import BaseInRegistry, Registry, skopeo_inspect


def source(ref: str) -> RegistrySource:
    return RegistrySource(Reference.parse(ref))


@pytest.mark.parametrize(
    ("kind", "media_type"), [("oci", mt.OCI_MANIFEST), ("docker", mt.DOCKER_MANIFEST)]
)
def test_pull_manifest_config_and_layers(
    base_in_registry: BaseInRegistry, kind: str, media_type: str
) -> None:
    ref = getattr(base_in_registry, kind)
    src = source(ref)

    data, got_type = src.get_manifest()

    assert got_type == media_type
    assert str(Digest.of(data)) == getattr(base_in_registry, f"{kind}_digest")
    assert data == skopeo_inspect(f"docker://{ref}", raw=True)
    manifest = Manifest.from_json(data, got_type)
    config = src.get_blob(manifest.config)
    assert config == skopeo_inspect(f"docker://{ref}", config=True, raw=True)
    for layer in manifest.layers:
        stream = VerifyingStream(src.open_blob(layer), layer)
        size = sum(len(chunk) for chunk in stream)
        assert size == layer.size
        assert stream.result.digest == layer.digest
    src.close()


def test_index_and_child_manifests(base_in_registry: BaseInRegistry) -> None:
    src = source(base_in_registry.multi)

    data, media_type = src.get_manifest()

    assert media_type == mt.OCI_INDEX
    assert str(Digest.of(data)) == base_in_registry.multi_digest
    index = Index.from_json(data, media_type)
    for platform, digest in base_in_registry.platform_digests.items():
        entry = index.select(Platform.parse(platform))
        assert str(entry.digest) == digest
        child = src.get_child_manifest(entry)
        assert str(Digest.of(child)) == digest
        assert Manifest.from_json(child, entry.media_type).layers


def test_pull_by_digest_is_verified(base_in_registry: BaseInRegistry) -> None:
    name = base_in_registry.oci.rsplit(":", 1)[0]
    src = source(f"{name}@{base_in_registry.oci_digest}")
    data, _ = src.get_manifest()
    assert str(Digest.of(data)) == base_in_registry.oci_digest

    # The same bytes asked for under the wrong digest: the registry has no such manifest.
    wrong = "sha256:" + hashlib.sha256(b"other").hexdigest()
    with pytest.raises(NotFoundError, match="not found"):
        source(f"{name}@{wrong}").get_manifest()


def test_child_manifest_with_a_wrong_size_is_rejected(base_in_registry: BaseInRegistry) -> None:
    src = source(base_in_registry.multi)
    index = Index.from_json(src.get_manifest()[0])
    entry = index.manifests[0]
    lying = Descriptor(entry.media_type, entry.digest, entry.size + 1)
    with pytest.raises(DigestMismatchError):
        src.get_child_manifest(lying)


def test_missing_image_and_blob_are_not_found(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match=rf"image '{registry.host}/pull/none:nope' not found"):
        source(f"{registry.host}/pull/none:nope").get_manifest()
    digest = Digest.of(b"absent")
    src = source(f"{registry.host}/pull/none:nope")
    with pytest.raises(NotFoundError, match=f"blob {digest} not found"):
        list(src.open_blob(Descriptor(mt.OCI_LAYER, digest, 6)))


def test_blob_that_does_not_match_its_descriptor_is_an_error(
    base_in_registry: BaseInRegistry,
) -> None:
    src = source(base_in_registry.oci)
    manifest = Manifest.from_json(src.get_manifest()[0])
    config = manifest.config
    with pytest.raises(DigestMismatchError):
        src.get_blob(Descriptor(config.media_type, config.digest, config.size - 1))
    layer = manifest.layers[0]
    wrong = Descriptor(layer.media_type, Digest.of(b"x"), layer.size)
    with pytest.raises(DigestMismatchError):
        # The registry serves the real layer; the caller's check against "wrong" fails.
        list(VerifyingStream(src.open_blob(layer), wrong))


def test_open_blob_requests_nothing_until_read(
    base_in_registry: BaseInRegistry, registry: Registry
) -> None:
    src = source(base_in_registry.oci)
    manifest = Manifest.from_json(src.get_manifest()[0])
    registry.mark()
    stream = src.open_blob(manifest.layers[0])
    assert not [r for r in registry.requests(timeout=0.3) if "/blobs/" in r.path]
    first = next(stream)
    assert first
    assert [r.method for r in registry.requests(at_least=1) if "/blobs/" in r.path] == ["GET"]
    stream.close()  # type: ignore[attr-defined]


def test_client_tags_and_head_manifest(
    base_in_registry: BaseInRegistry, registry: Registry
) -> None:
    with RegistryClient(registry.host) as client:
        assert client.tags("base/oci") == ["1"]
        head = client.head_manifest("base/oci", "1")
        assert head is not None
        assert str(head.digest) == base_in_registry.oci_digest
        assert head.media_type == mt.OCI_MANIFEST
        assert client.head_manifest("base/oci", "missing") is None
        with pytest.raises(NotFoundError):
            client.tags("base/never-pushed")


class _FlakyBlobServer(ThreadingHTTPServer):
    """Serves one blob over real HTTP, cutting the first download off halfway; honours Range."""

    def __init__(self, blob: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.blob = blob
        self.ranges: list[str | None] = []
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _FlakyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FlakyBlobServer

    def do_GET(self) -> None:
        blob = self.server.blob
        if self.path == "/v2/":
            self._answer(200, b"{}")
            return
        wanted = self.headers.get("Range")
        self.server.ranges.append(wanted)
        if wanted is None:  # the first try: promise everything, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob[: len(blob) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        start = int(wanted.removeprefix("bytes=").split("-")[0])
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
        self.send_header("Content-Length", str(len(blob) - start))
        self.end_headers()
        self.wfile.write(blob[start:])

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_download_resumes_with_range_after_a_dropped_connection() -> None:
    blob = random.Random(31).randbytes(3 << 20)
    server = _FlakyBlobServer(blob)
    try:
        desc = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(blob), len(blob))
        src = source(f"{server.host}/flaky/blob:1")
        got = b"".join(VerifyingStream(src.open_blob(desc), desc))
    finally:
        server.shutdown()
        server.server_close()
    assert got == blob
    assert server.ranges[0] is None
    assert server.ranges[1] is not None and server.ranges[1].startswith("bytes=")
    assert int(server.ranges[1][6:].rstrip("-")) > 0
