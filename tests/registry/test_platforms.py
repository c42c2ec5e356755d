"""Writing several platforms as one index: their blobs upload at once, in one bounded pool."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from ocibuild.image import Image, WriteResult, copy, load, write
from ocibuild.registry import RegistryOptions
from tests.support import BaseInRegistry, FaultProxy, Registry, skopeo_copy, skopeo_inspect

from ._util import TestLayer, make_layer

MakeProxy = Callable[[str], FaultProxy]


def platform_images(base: BaseInRegistry) -> tuple[list[Image], list[TestLayer]]:
    """The two-platform base with a different layer on top of each platform."""
    loaded = load(base.multi, all_platforms=True)
    layers = [make_layer({"arch": str(image.platform).encode()}) for image in loaded.images]
    return [i.append(layer) for i, layer in zip(loaded.images, layers, strict=True)], layers


def assert_index_readable(registry: Registry, name: str, result: WriteResult, tmp: Path) -> None:
    raw = json.loads(skopeo_inspect(f"docker://{registry.host}/{name}", raw=True))
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64", "arm64"]
    digest = skopeo_copy(f"docker://{registry.host}/{name}", f"oci:{tmp}:x", all_images=True)
    assert digest == str(result.digest)


def test_platforms_upload_at_the_same_time(
    registry: Registry,
    base_in_registry: BaseInRegistry,
    make_fault_proxy: MakeProxy,
    tmp_path: Path,
) -> None:
    images, (first, second) = platform_images(base_in_registry)
    proxy = make_fault_proxy(registry.url)
    # The first platform's layer is held at its upload until the registry is asked about the
    # second platform's layer. Written one platform after the other, that question could only
    # come after the first platform's upload: the hold would end by its timeout instead.
    hold = proxy.hold(
        method="PUT", path_contains=first.descriptor.digest.encoded,
        until=second.descriptor.digest.encoded,
    )  # fmt: skip

    result = write(
        images, f"{proxy.host}/platforms/app:1", registry_options=RegistryOptions(concurrency=2)
    )

    assert hold.released_by == ["trigger"]
    assert result.platforms == ("linux/amd64", "linux/arm64")
    outcomes = {b.descriptor.digest: b.outcome for b in result.blobs}
    assert outcomes[first.descriptor.digest] == outcomes[second.descriptor.digest] == "uploaded"
    assert_index_readable(registry, "platforms/app:1", result, tmp_path / "out")


def test_one_slot_is_enough_for_many_platforms(
    registry: Registry, base_in_registry: BaseInRegistry, tmp_path: Path
) -> None:
    """Platform tasks wait for layer tasks; with one slot in the pool that must not deadlock."""
    images, layers = platform_images(base_in_registry)
    results: list[WriteResult] = []
    options = RegistryOptions(concurrency=1)

    def push() -> None:
        results.append(write(images, f"{registry.host}/platforms/one:1", registry_options=options))

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    thread.join(120)  # a safety net against a hang, not a timing threshold

    assert not thread.is_alive(), "writing two platforms with --concurrency 1 deadlocked"
    (result,) = results
    uploaded = {str(b.descriptor.digest) for b in result.blobs if b.outcome == "uploaded"}
    assert {str(layer.descriptor.digest) for layer in layers} <= uploaded
    assert_index_readable(registry, "platforms/one:1", result, tmp_path / "out")


def test_copying_an_index_uploads_its_platforms_at_the_same_time(
    registry: Registry,
    base_in_registry: BaseInRegistry,
    make_fault_proxy: MakeProxy,
    tmp_path: Path,
) -> None:
    images, (first, second) = platform_images(base_in_registry)
    written = write(images, f"oci:{tmp_path / 'src'}:multi")
    proxy = make_fault_proxy(registry.url)
    hold = proxy.hold(
        method="PUT", path_contains=first.descriptor.digest.encoded,
        until=second.descriptor.digest.encoded,
    )  # fmt: skip

    result = copy(
        f"oci:{tmp_path / 'src'}:multi",
        f"{proxy.host}/platforms/copied:1",
        registry_options=RegistryOptions(concurrency=2),
    )

    assert hold.released_by == ["trigger"]
    assert result.digest == written.digest  # copied byte for byte
    assert result.platforms == ("linux/amd64", "linux/arm64")
    assert_index_readable(registry, "platforms/copied:1", result, tmp_path / "out")
