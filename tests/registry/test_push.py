"""Pushing: monolithic and chunked uploads, HEAD skips, cross-repo mounts, dedupe, indexes."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from ocibuild._errors import DigestMismatchError
from ocibuild.oci import Descriptor, Index, Platform, Reference
from ocibuild.oci import media_types as mt
from ocibuild.oci._blobs import BytesStream
from ocibuild.registry import RegistryOptions, RegistrySink
from tests.support import LoggedRequest, Registry, skopeo_copy, skopeo_inspect

from ._util import StreamedBlob, make_layer, push_image, random_layer

MiB = 1 << 20
OPTIONS = RegistryOptions(chunk_size=MiB)


def sink_for(registry: Registry, repo_tag: str, options: RegistryOptions = OPTIONS) -> RegistrySink:
    return RegistrySink(Reference.parse(f"{registry.host}/{repo_tag}"), options)


def uploads(requests: list[LoggedRequest]) -> dict[str, list[LoggedRequest]]:
    """Upload requests grouped by the digest their closing PUT names."""
    by_session: dict[str, list[LoggedRequest]] = defaultdict(list)
    digest_of: dict[str, str] = {}
    for request in requests:
        match = re.search(r"/blobs/uploads/([0-9a-f-]{36})", request.path)
        if match:
            by_session[match.group(1)].append(request)
            found = re.search(r"digest=(sha256(?::|%3A)[0-9a-f]{64})", request.path)
            if found and request.method == "PUT":
                digest_of[match.group(1)] = found.group(1).replace("%3A", ":")
    return {digest_of[s]: reqs for s, reqs in by_session.items() if s in digest_of}


def test_push_uploads_small_blobs_whole_and_large_or_streamed_ones_in_chunks(
    registry: Registry, tmp_path: Path
) -> None:
    small = make_layer({"etc/hello": b"hello\n"})
    large = random_layer(2 * MiB + 5000, seed=1)
    streamed = random_layer(3 * MiB + 123, seed=2, known_up_front=False)
    registry.mark()

    pushed = push_image(sink_for(registry, "push/basic:1"), [small, large, streamed], tag="1")

    assert pushed.outcomes == ["uploaded", "uploaded", "uploaded"]
    by_digest = uploads(registry.requests())
    small_reqs = by_digest[str(small.descriptor.digest)]
    assert [r.method for r in small_reqs] == ["PUT"]  # POST carries no session id yet
    for layer, chunks in ((large, 3), (streamed, 4)):
        reqs = by_digest[str(layer.descriptor.digest)]
        assert [r.method for r in reqs] == ["PATCH"] * chunks + ["PUT"]
        assert all(r.status in (201, 202) for r in reqs)

    info = skopeo_inspect(f"docker://{registry.host}/push/basic:1")
    assert info["Digest"] == str(pushed.manifest.digest)
    assert info["Layers"] == [str(x.descriptor.digest) for x in (small, large, streamed)]
    raw = skopeo_inspect(f"docker://{registry.host}/push/basic:1", raw=True)
    assert raw == pushed.manifest_bytes
    copied = skopeo_copy(f"docker://{registry.host}/push/basic:1", f"oci:{tmp_path / 'out'}:x")
    assert copied == str(pushed.manifest.digest)


def test_second_push_heads_every_blob_and_uploads_nothing(registry: Registry) -> None:
    layers = [make_layer({"a": b"a" * 100}), random_layer(MiB + 1, seed=3)]
    first = push_image(sink_for(registry, "push/again:1"), layers, tag="1")
    registry.mark()

    second = push_image(sink_for(registry, "push/again:2"), layers, tag="2")

    assert second.outcomes == ["exists", "exists"]
    assert second.manifest.digest == first.manifest.digest
    requests = registry.requests()
    heads = [r for r in requests if r.method == "HEAD"]
    assert {r.status for r in heads} == {200}
    assert len(heads) == 3  # two layers and the config
    uploading = [r for r in requests if r.method in ("POST", "PATCH")]
    uploading += [r for r in requests if r.method == "PUT" and "/blobs/" in r.path]
    assert not uploading
    assert skopeo_inspect(f"docker://{registry.host}/push/again:2")["Digest"] == str(
        second.manifest.digest
    )


def test_cross_repository_mount_sends_no_layer_bytes(registry: Registry) -> None:
    base = [random_layer(MiB + 77, seed=4), make_layer({"b": b"base"})]
    push_image(sink_for(registry, "mount/source:1"), base, tag="1")
    mounted = [
        random_layer(MiB + 77, seed=4, mount_from=(registry.host, "mount/source")),
        make_layer({"b": b"base"}, mount_from=(registry.host, "mount/source")),
        make_layer({"new": b"new"}),
    ]
    registry.mark()

    pushed = push_image(sink_for(registry, "mount/dest:1"), mounted, tag="1")

    assert pushed.outcomes == ["mounted", "mounted", "uploaded"]
    requests = registry.requests()
    for layer in base:
        digest = str(layer.descriptor.digest)
        mounts = [r for r in requests if f"mount={digest}" in r.path.replace("%3A", ":")]
        assert [(m.method, m.status) for m in mounts] == [("POST", 201)]
        assert "from=mount%2Fsource" in mounts[0].path or "from=mount/source" in mounts[0].path
    assert set(uploads(requests)) == {str(mounted[2].descriptor.digest), str(pushed.config.digest)}
    info = skopeo_inspect(f"docker://{registry.host}/mount/dest:1")
    assert info["Layers"] == [str(x.descriptor.digest) for x in mounted]


def test_mount_of_a_blob_the_source_lacks_uploads_into_the_offered_session(
    registry: Registry,
) -> None:
    layer = make_layer(
        {"lonely": b"not in the source"}, mount_from=(registry.host, "mount/nowhere")
    )
    registry.mark()

    pushed = push_image(sink_for(registry, "mount/fallback:1"), [layer], tag="1")

    assert pushed.outcomes == ["uploaded"]
    requests = registry.requests()
    mount = [r for r in requests if "mount=" in r.path]
    assert [(m.method, m.status) for m in mount] == [("POST", 202)]
    # The PUT goes to the session the 202 opened: no second POST for this blob.
    posts = [r for r in requests if r.method == "POST"]
    assert len(posts) == 2  # the mount and the config's upload
    assert [r.method for r in uploads(requests)[str(layer.descriptor.digest)]] == ["PUT"]


def test_concurrent_pushes_of_one_blob_upload_it_once(registry: Registry) -> None:
    layer = random_layer(2 * MiB, seed=5)
    sinks = [sink_for(registry, f"dedupe/app:{i}") for i in range(4)]
    barrier = threading.Barrier(len(sinks))
    outcomes: list[str] = []
    registry.mark()

    def put(sink: RegistrySink) -> None:
        barrier.wait()
        stream = layer.compressed()
        outcomes.append(sink.put_blob(stream, layer.descriptor))
        assert stream.result.diff_id == layer.diff_id

    threads = [threading.Thread(target=put, args=(s,)) for s in sinks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["exists", "exists", "exists", "uploaded"]
    assert len([r for r in registry.requests() if r.method == "POST"]) == 1
    assert all(s.has_blob(layer.descriptor) for s in sinks)


def test_index_push_tags_only_the_index(registry: Registry, tmp_path: Path) -> None:
    sink = sink_for(registry, "multi/app:1")
    children = []
    for arch in ("amd64", "arm64"):
        child = push_image(sink, [make_layer({"arch": arch.encode()})], tag=None, note=arch)
        children.append(child.manifest.with_platform(Platform("linux", arch)))
    index = Index(tuple(children))
    data = index.to_json()
    top = sink.put_manifest(data, mt.OCI_INDEX, tag="1")
    sink.commit()

    assert skopeo_inspect(f"docker://{registry.host}/multi/app:1", raw=True) == data
    tags = skopeo_run_tags(registry, "multi/app")
    assert tags == ["1"]
    digest = skopeo_copy(
        f"docker://{registry.host}/multi/app:1", f"oci:{tmp_path / 'o'}:1", all_images=True
    )
    assert digest == str(top.digest)


def skopeo_run_tags(registry: Registry, repo: str) -> list[str]:
    from ocibuild.registry import RegistryClient

    with RegistryClient(registry.host) as client:
        return client.tags(repo)


def test_docker_schema2_image_round_trips(registry: Registry) -> None:
    pushed = push_image(
        sink_for(registry, "push/docker:1"), [make_layer({"d": b"docker"})], tag="1", docker=True
    )
    raw = json.loads(skopeo_inspect(f"docker://{registry.host}/push/docker:1", raw=True))
    assert raw["mediaType"] == mt.DOCKER_MANIFEST
    assert raw["config"]["mediaType"] == mt.DOCKER_CONFIG
    assert skopeo_inspect(f"docker://{registry.host}/push/docker:1")["Digest"] == str(
        pushed.manifest.digest
    )


@pytest.mark.parametrize("size", [1000, 3 * MiB])
def test_content_that_does_not_match_its_descriptor_is_never_committed(
    registry: Registry, size: int
) -> None:
    good, bad = random_layer(size, seed=6), random_layer(size, seed=7)
    sink = sink_for(registry, "push/corrupt:1")
    registry.mark()

    with pytest.raises(DigestMismatchError):
        sink.put_blob(bad.compressed(), good.descriptor)

    assert not [r for r in registry.requests() if r.method == "PUT"]
    assert not sink.has_blob(good.descriptor)
    assert not sink.has_blob(bad.descriptor)


def test_streamed_blob_of_zero_bytes(registry: Registry) -> None:
    sink = sink_for(registry, "push/empty:1")
    empty = StreamedBlob(b"", mt.OCI_LAYER, BytesStream(b"", mt.OCI_LAYER).descriptor.digest)
    assert sink.put_blob(empty, None) == "uploaded"
    assert sink.has_blob(Descriptor(mt.OCI_LAYER, empty.result.digest, 0))
