"""`ocibuild index create|append`: a multi-platform index from images, checked with skopeo."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import BaseInRegistry, OCISchema, Registry, skopeo_copy, skopeo_inspect

from ._util import ocibuild, repo


def _platform_images(base: BaseInRegistry) -> dict[str, str]:
    name = base.multi.rsplit(":", 1)[0]
    return {p: f"{name}@{d}" for p, d in base.platform_digests.items()}


def test_index_create_from_two_images_mounts_their_blobs(
    registry: Registry, base_in_registry: BaseInRegistry, tmp_path: Path
) -> None:
    images = _platform_images(base_in_registry)
    dest = repo(registry, "index") + ":1"
    registry.mark()
    out = ocibuild(
        "index", "create", dest,
        "--image", images["linux/amd64"], "--image", images["linux/arm64"],
    ).stdout.strip()  # fmt: skip
    requests = registry.requests(at_least=1)
    assert not [r for r in requests if r.method == "PATCH"]  # nothing streamed: mounted
    assert [r.status for r in requests if "mount=" in r.path] and all(
        r.status == 201 for r in requests if "mount=" in r.path
    )

    index = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    entries = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
    }
    assert entries == base_in_registry.platform_digests  # each image's manifest kept
    assert out.endswith("@" + skopeo_inspect(f"docker://{dest}")["Digest"])
    # skopeo can copy all of it out: every blob the index reaches is in the new repository.
    skopeo_copy(f"docker://{dest}", f"oci:{tmp_path / 'copy'}:1", all_images=True)


def test_index_append_adds_and_replaces_by_platform(
    registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    images = _platform_images(base_in_registry)
    dest = repo(registry, "grow") + ":1"
    ocibuild("index", "create", dest, "--image", images["linux/amd64"])
    first = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    assert len(first["manifests"]) == 1

    ocibuild("index", "append", dest, "--image", images["linux/arm64"])
    grown = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    assert [m["platform"]["architecture"] for m in grown["manifests"]] == ["amd64", "arm64"]

    changed = repo(registry, "changed") + ":1"
    ocibuild("mutate", images["linux/amd64"], "--to", changed, "--label", "new=1")
    ocibuild("index", "append", dest, "--image", changed)
    replaced = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    arches = [m["platform"]["architecture"] for m in replaced["manifests"]]
    assert arches == ["arm64", "amd64"]
    amd64 = replaced["manifests"][1]["digest"]
    assert amd64 == skopeo_inspect(f"docker://{changed}")["Digest"]


def test_index_in_a_layout_is_valid(
    base_in_registry: BaseInRegistry, tmp_path: Path, oci_schema: OCISchema
) -> None:
    images = _platform_images(base_in_registry)
    layout = tmp_path / "layout"
    ocibuild(
        "index", "create", f"oci:{layout}:multi", "--tag", "latest",
        "--image", images["linux/amd64"], "--image", images["linux/arm64"],
    )  # fmt: skip
    oci_schema.validate_layout_dir(layout)
    for tag in ("multi", "latest"):
        raw = json.loads(skopeo_inspect(f"oci:{layout}:{tag}", raw=True))
        assert len(raw["manifests"]) == 2
    untagged = ocibuild(
        "index", "append", f"oci:{layout}", "--image", images["linux/amd64"], check=False
    )
    assert untagged.returncode == 2 and f"oci:{layout}:TAG" in untagged.stderr


def test_index_append_to_a_single_image_says_so(
    registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    proc = ocibuild(
        "index", "append", base_in_registry.oci, "--image", base_in_registry.oci, check=False
    )
    assert proc.returncode == 1 and "not an index" in proc.stderr
    assert proc.stderr.count("\n") == 1
