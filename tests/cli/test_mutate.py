"""`ocibuild mutate`: config and annotation changes with no new layer, checked with skopeo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import BaseInRegistry, Registry, skopeo_inspect

from ._util import ocibuild, repo


def test_mutate_changes_config_and_annotations_and_sends_no_layer(
    registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    dest = repo(registry, "mutated") + ":1"
    registry.mark()
    report = json.loads(
        ocibuild(
            "mutate", base_in_registry.oci, "--to", dest, "--json",
            "--env", "MODE=prod", "--label", "team=ml", "--annotation", "owner=ci",
            "--entrypoint", '["/bin/sh", "-c"]', "--workdir", "/srv", "--user", "1000:1000",
        ).stdout
    )  # fmt: skip
    uploads = [r for r in registry.requests(at_least=1) if r.method in ("PATCH", "PUT")]
    layers = [b for b in report["blobs"] if b["kind"] == "layer"]
    assert {b["outcome"] for b in layers} == {"mounted"}
    # The new config is the only blob sent; then the manifest.
    assert sum(1 for r in uploads if "/blobs/uploads/" in r.path) == 1

    config = skopeo_inspect(f"docker://{dest}", config=True)
    base_config = skopeo_inspect(f"docker://{base_in_registry.oci}", config=True)
    assert "MODE=prod" in config["config"]["Env"]
    assert config["config"]["Labels"]["team"] == "ml"
    assert config["config"]["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["config"]["WorkingDir"] == "/srv"
    assert config["config"]["User"] == "1000:1000"
    assert config["rootfs"] == base_config["rootfs"]  # no layer added
    assert config["history"] == base_config["history"]

    manifest = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    base_manifest = json.loads(skopeo_inspect(f"docker://{base_in_registry.oci}", raw=True))
    assert manifest["layers"] == base_manifest["layers"]
    assert manifest["annotations"] == {"owner": "ci"}


@pytest.mark.parametrize("kind", ["oci", "docker", "multi"])
def test_mutate_with_no_change_keeps_the_manifest_byte_for_byte(
    registry: Registry, base_in_registry: BaseInRegistry, kind: str
) -> None:
    src = getattr(base_in_registry, kind)
    dest = repo(registry, f"same-{kind}") + ":1"
    out = ocibuild("mutate", src, "--to", dest).stdout.strip()
    digest = getattr(base_in_registry, f"{kind}_digest")
    assert out == f"{dest}@{digest}"
    assert skopeo_inspect(f"docker://{dest}", raw=True) == skopeo_inspect(
        f"docker://{src}", raw=True
    )


def test_mutate_to_values_it_already_has_keeps_the_digest(
    base_in_registry: BaseInRegistry, registry: Registry, tmp_path: Path
) -> None:
    first = repo(registry, "twice") + ":1"
    once = ocibuild("mutate", base_in_registry.oci, "--to", first, "--env", "A=1")
    digest = once.stdout.strip().rsplit("@", 1)[1]
    again = ocibuild("mutate", first, "--env", "A=1").stdout.strip()  # in place
    assert again == f"{first}@{digest}"


def test_mutate_an_index_changes_every_platform(
    registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    dest = repo(registry, "multi") + ":1"
    ocibuild("mutate", base_in_registry.multi, "--to", dest, "--label", "v=2")
    index = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    platforms = sorted(m["platform"]["architecture"] for m in index["manifests"])
    assert platforms == ["amd64", "arm64"]
    for entry in index["manifests"]:
        config = skopeo_inspect(f"docker://{dest.rsplit(':', 1)[0]}@{entry['digest']}", config=True)
        assert config["config"]["Labels"]["v"] == "2"
        assert config["architecture"] == entry["platform"]["architecture"]

    one = repo(registry, "one") + ":1"
    ocibuild(
        "mutate", base_in_registry.multi, "--platform", "linux/arm64", "--to", one, "-e", "X=1"
    )
    raw = json.loads(skopeo_inspect(f"docker://{one}", raw=True))
    assert "layers" in raw  # a single image, not an index
    assert skopeo_inspect(f"docker://{one}", config=True)["architecture"] == "arm64"


def test_mutate_annotation_on_a_docker_image_makes_it_oci(
    registry: Registry, base_in_registry: BaseInRegistry
) -> None:
    dest = repo(registry, "annotated") + ":1"
    ocibuild("mutate", base_in_registry.docker, "--to", dest, "--annotation", "a=b")
    manifest = json.loads(skopeo_inspect(f"docker://{dest}", raw=True))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["annotations"] == {"a": "b"}


def test_mutate_usage_errors(base_in_registry: BaseInRegistry, tmp_path: Path) -> None:
    bad = ocibuild(
        "mutate", base_in_registry.oci, "--to", "oci:x", "--env", "NOEQUALS", check=False
    )
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    archive = ocibuild("mutate", f"docker-archive:{tmp_path}/a.tar", check=False)
    assert archive.returncode == 2 and "--to" in archive.stderr


def test_append_with_only_config_changes_points_to_mutate(tmp_path: Path) -> None:
    proc = ocibuild("append", "--env", "A=1", "--to", f"oci:{tmp_path}/x", check=False)
    assert proc.returncode == 2 and "ocibuild mutate" in proc.stderr
