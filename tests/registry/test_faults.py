"""Faults between client and registry: dropped connections, 5xx, 429, a registry that is gone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from ocibuild._errors import (
    InvalidOptionError,
    NotFoundError,
    RegistryError,
    RetryBudgetExceededError,
    UploadSessionLostError,
)
from ocibuild.image import Image, write
from ocibuild.oci import Reference
from ocibuild.oci._layer import BlobStream
from ocibuild.registry import RegistryClient, RegistryOptions, RegistrySink, RegistrySource
from tests.support import FaultProxy, Registry, skopeo_inspect

from ._util import StreamedBlob, TestLayer, make_layer, push_image, random_layer

KiB = 1 << 10
CHUNK = 256 * KiB

MakeProxy = Callable[[str], FaultProxy]
OPTIONS = RegistryOptions(chunk_size=CHUNK, retry_budget=10.0)


class HookedStream(BlobStream):
    """A layer's stream that calls ``hook`` once ``at`` bytes have been handed out."""

    def __init__(self, layer: TestLayer, at: int, hook: Callable[[], object]) -> None:
        self.inner = StreamedBlob(layer.gz, layer.media_type, layer.diff_id, piece=64 * KiB)
        self.at, self.hook, self.given, self.fired = at, hook, 0, False

    def __next__(self) -> bytes:
        if not self.fired and self.given >= self.at:
            self.fired = True
            self.hook()
        try:
            chunk = next(self.inner)
        except StopIteration:
            self.digests = self.inner.digests
            raise
        self.given += len(chunk)
        return chunk


def sink_via(proxy: FaultProxy, repo_tag: str, **options: object) -> RegistrySink:
    settings: dict[str, object] = {"chunk_size": CHUNK, "retry_budget": 10.0, **options}
    opts = RegistryOptions(**settings)  # type: ignore[arg-type]
    return RegistrySink(Reference.parse(f"{proxy.host}/{repo_tag}"), opts)


def test_dropped_patch_resumes_without_resending_acknowledged_chunks(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    proxy = make_fault_proxy(registry.url)
    layer = random_layer(4 * CHUNK, seed=21)
    sink = sink_via(proxy, "faults/resume:1")

    def arm() -> None:  # after two chunks are in, break the third mid-body
        proxy.add_fault(
            method="PATCH", path_contains="/blobs/uploads/", action="drop", after_bytes=CHUNK // 2
        )

    registry.mark()
    stream = HookedStream(layer, at=2 * CHUNK + 64 * KiB, hook=arm)
    assert sink.put_blob(stream, None) == "uploaded"

    seen = [(r.method, r.status) for r in proxy.requests if "/blobs/uploads/" in r.path]
    dropped = seen.index(("PATCH", None))
    # The chunk names its offset, so the transport sends it again as it was, and only it.
    assert seen[dropped + 1] == ("PATCH", 202)
    upstream = [r for r in registry.requests() if r.method == "PATCH"]
    chunks = -(-len(layer.gz) // CHUNK)
    assert len(upstream) == chunks and all(r.status == 202 for r in upstream)
    assert sink.has_blob(layer.descriptor)


class BuiltLayer:
    """A layer being built: no digests up front, and every ``compressed()`` builds it anew."""

    def __init__(self, inner: TestLayer) -> None:
        self.inner = inner
        self.builds = 0
        self.media_type = inner.media_type
        self.description = "a layer being built"

    def known(self) -> None:
        return None

    def compressed(self) -> BlobStream:
        self.builds += 1
        return self.inner.compressed()

    def uncompressed(self) -> Iterator[bytes]:
        return self.inner.uncompressed()


def test_session_lost_starts_the_blob_over_from_a_fresh_stream(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    proxy = make_fault_proxy(registry.url)
    fault = proxy.add_fault(method="PATCH", status=404, code="BLOB_UPLOAD_UNKNOWN")
    layer = BuiltLayer(random_layer(3 * CHUNK, seed=22))
    dest = f"{proxy.host}/faults/restart:1"

    result = write(Image.scratch().append(layer), dest, registry_options=OPTIONS)

    assert fault.hits == 1
    assert layer.builds == 2  # the stream could not be read again: the layer was asked anew
    assert [b.outcome for b in result.blobs] == ["uploaded", "uploaded"]
    info = skopeo_inspect(f"docker://{registry.host}/faults/restart:1")
    assert info["Digest"] == str(result.digest)
    assert info["Layers"] == [str(layer.inner.descriptor.digest)]


def test_a_session_lost_twice_is_a_clear_error_and_tags_nothing(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    proxy = make_fault_proxy(registry.url)
    proxy.add_fault(method="PATCH", status=404, code="BLOB_UPLOAD_UNKNOWN", times=None)
    layer = BuiltLayer(random_layer(2 * CHUNK, seed=26))

    with pytest.raises(UploadSessionLostError, match="dropped the upload session after 0 bytes"):
        write(
            Image.scratch().append(layer), f"{proxy.host}/faults/twice:1", registry_options=OPTIONS
        )

    assert layer.builds == 2  # one restart, not more
    with RegistryClient(registry.host) as client, pytest.raises(NotFoundError):
        client.tags("faults/twice")


def test_a_patch_cut_mid_body_at_the_registry_restarts_the_blob(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    """Docker Distribution cancels a session whose PATCH broke mid-body: start over."""
    proxy = make_fault_proxy(registry.url)
    proxy.add_fault(method="PATCH", action="cut")
    layer = BuiltLayer(random_layer(3 * CHUNK, seed=27))
    registry.mark()

    result = write(
        Image.scratch().append(layer), f"{proxy.host}/faults/cut:1", registry_options=OPTIONS
    )

    # The registry got half of the chunk (its handler failed on the cut body) and cancelled
    # the session: the replayed chunk finds it gone, and the blob starts over.
    assert 500 in [r.status for r in registry.requests() if r.method == "PATCH"]
    seen = [(r.method, r.status) for r in proxy.requests if "/blobs/uploads/" in r.path]
    assert seen[1:4] == [("PATCH", None), ("PATCH", 404), ("POST", 202)]
    assert layer.builds == 2
    info = skopeo_inspect(f"docker://{registry.host}/faults/cut:1")
    assert info["Digest"] == str(result.digest)


def test_session_lost_after_acknowledged_chunks_is_a_clear_error(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    proxy = make_fault_proxy(registry.url)
    layer = random_layer(3 * CHUNK, seed=23)
    sink = sink_via(proxy, "faults/lost:1")

    def lose() -> None:
        proxy.add_fault(method="PATCH", status=404, code="BLOB_UPLOAD_UNKNOWN")

    with pytest.raises(RegistryError, match="dropped the upload session after") as caught:
        sink.put_blob(HookedStream(layer, at=CHUNK + 64 * KiB, hook=lose), layer.descriptor)
    assert str(layer.descriptor.digest) in str(caught.value)
    assert caught.value.codes == ("BLOB_UPLOAD_UNKNOWN",)


def test_5xx_answers_are_retried(registry: Registry, make_fault_proxy: MakeProxy) -> None:
    proxy = make_fault_proxy(registry.url)
    proxy.add_fault(method="POST", status=500, times=1)
    proxy.add_fault(method="PATCH", status=502, times=1)
    proxy.add_fault(method="PUT", path_contains="/manifests/", status=503, times=2)
    proxy.add_fault(method="HEAD", status=504, times=1)
    layers = [random_layer(CHUNK + 1, seed=24), make_layer({"small": b"s"})]

    pushed = push_image(sink_via(proxy, "faults/five:1"), layers, tag="1")

    statuses = [r.status for r in proxy.requests]
    for status in (500, 502, 503, 504):
        assert status in statuses
    info = skopeo_inspect(f"docker://{registry.host}/faults/five:1")
    assert info["Digest"] == str(pushed.manifest.digest)


def test_429_retry_after_is_honoured(registry: Registry, make_fault_proxy: MakeProxy) -> None:
    proxy = make_fault_proxy(registry.url)
    with RegistryClient(proxy.host, RegistryOptions(retry_budget=10.0)) as client:
        client.ping()
        proxy.add_fault(method="GET", path_contains="/manifests/", status=429, retry_after=1.5)
        started = time.monotonic()
        with pytest.raises(NotFoundError):
            client.get_manifest("faults/rate", "1")
        elapsed = time.monotonic() - started
    assert elapsed >= 1.5
    assert [r.status for r in proxy.requests if "/manifests/" in r.path] == [429, 404]


def test_retry_after_beyond_the_budget_fails_at_once(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    proxy = make_fault_proxy(registry.url)
    with RegistryClient(proxy.host, RegistryOptions(retry_budget=2.0)) as client:
        client.ping()
        proxy.add_fault(method="HEAD", status=429, retry_after=30, times=1)
        started = time.monotonic()
        with pytest.raises(RetryBudgetExceededError, match="asked to wait 30 s") as caught:
            client.exists("faults/rate", make_layer({}).descriptor.digest)
    assert time.monotonic() - started < 1.0
    assert caught.value.status == 429


def test_registry_gone_mid_push_fails_quickly_and_keeps_the_tag(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    proxy = make_fault_proxy(registry.url)
    before = push_image(sink_via(proxy, "faults/gone:1"), [make_layer({"v": b"1"})], tag="1")
    layer = random_layer(3 * CHUNK, seed=25)
    sink = sink_via(proxy, "faults/gone:1", retry_budget=1.5)
    started = time.monotonic()

    with pytest.raises(RetryBudgetExceededError) as caught:
        try:
            sink.put_blob(
                HookedStream(layer, at=CHUNK + 64 * KiB, hook=proxy.close_upstream),
                layer.descriptor,
            )
        except BaseException:
            sink.abort()
            raise

    assert time.monotonic() - started < 6.0
    message = str(caught.value)
    assert str(layer.descriptor.digest) in message
    assert f"{proxy.host}/faults/gone" in message
    assert "retry budget" in message
    info = skopeo_inspect(f"docker://{registry.host}/faults/gone:1")
    assert info["Digest"] == str(before.manifest.digest)


def test_a_registry_that_never_answered_and_refuses_fails_at_once(
    make_fault_proxy: MakeProxy, registry: Registry
) -> None:
    proxy = make_fault_proxy(registry.url)
    host = proxy.host
    proxy.stop()  # nothing listens there any more: connections are refused
    # A budget of two minutes is not spent on a registry that never answered.
    options = RegistryOptions(retry_budget=120.0)
    sink = RegistrySink(Reference.parse(f"{host}/faults/none:1"), options)
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        sink.has_blob(make_layer({}).descriptor)
    assert time.monotonic() - started < 3.0
    assert not isinstance(caught.value, RetryBudgetExceededError)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"cannot reach {host}: the connection is refused")


def test_a_host_name_that_does_not_resolve_fails_at_once() -> None:
    options = RegistryOptions(retry_budget=120.0)
    source = RegistrySource(Reference.parse("no-such-registry.invalid/app:1"), options)
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"^cannot reach no-such-registry\.invalid: the host"):
        source.get_manifest()
    assert time.monotonic() - started < 10.0  # one resolver answer, no retries


def test_the_retry_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_RETRY_BUDGET", "7.5")
    assert RegistryOptions().retry_budget == 7.5
    assert RegistryOptions(retry_budget=3).retry_budget == 3  # an explicit budget wins
    monkeypatch.setenv("OCIBUILD_RETRY_BUDGET", "soon")
    with pytest.raises(InvalidOptionError, match=r"OCIBUILD_RETRY_BUDGET='soon'"):
        RegistryOptions()
