"""Machine-readable results for CI: several --tag, --digest-file, --image-refs, --quiet."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import BaseInRegistry, Registry, skopeo_inspect

from ._util import ocibuild, repo


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "data.bin").write_bytes(os.urandom(300_000))
    return root


def test_several_tags_send_the_layer_once_and_put_one_manifest_each(
    registry: Registry, src: Path, tmp_path: Path
) -> None:
    name = repo(registry, "tags")
    digest_file, refs_file = tmp_path / "digest", tmp_path / "refs"
    registry.mark()
    out = ocibuild(
        "append", "--to", f"{name}:1", "--tag", "latest", "--tag", "v1.0",
        "--digest-file", str(digest_file), "--image-refs", str(refs_file), f"{src}:/",
    ).stdout  # fmt: skip
    requests = registry.requests(at_least=1)
    repository = name.partition("/")[2]
    manifest_puts = sorted(
        r.path for r in requests if r.method == "PUT" and "/manifests/" in r.path
    )
    assert manifest_puts == [f"/v2/{repository}/manifests/{t}" for t in ("1", "latest", "v1.0")]
    blob_puts = [r for r in requests if r.method == "PUT" and "/blobs/" in r.path]
    assert len(blob_puts) == 2  # the layer and the config, once each

    digest = digest_file.read_text()
    assert digest.startswith("sha256:") and "\n" not in digest
    assert out == f"{name}:1@{digest}\n"
    assert refs_file.read_text().splitlines() == [
        f"{name}:{tag}@{digest}" for tag in ("1", "latest", "v1.0")
    ]
    for tag in ("1", "latest", "v1.0"):
        assert skopeo_inspect(f"docker://{name}:{tag}")["Digest"] == digest


def test_copy_takes_the_same_options(
    registry: Registry, base_in_registry: BaseInRegistry, tmp_path: Path
) -> None:
    name = repo(registry, "copied")
    report = json.loads(
        ocibuild(
            "copy", base_in_registry.multi, f"{name}:1", "--tag", "2", "--json",
            "--digest-file", str(tmp_path / "d"),
        ).stdout
    )  # fmt: skip
    assert report["digest"] == base_in_registry.multi_digest
    assert (tmp_path / "d").read_text() == base_in_registry.multi_digest
    assert report["references"] == [f"{name}:{t}@{base_in_registry.multi_digest}" for t in "12"]
    assert skopeo_inspect(f"docker://{name}:2", raw=True) == skopeo_inspect(
        f"docker://{base_in_registry.multi}", raw=True
    )


def test_quiet_prints_only_the_reference(registry: Registry, src: Path) -> None:
    name = repo(registry, "quiet")
    proc = ocibuild("append", "--quiet", "--to", f"{name}:1", f"{src}:/")
    assert proc.stderr == ""
    (line,) = proc.stdout.splitlines()
    assert line.startswith(f"{name}:1@sha256:")


def test_layout_gets_every_tag(src: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    out = ocibuild("append", "--to", f"oci:{layout}", "--tag", "a", "--tag", "b", f"{src}:/")
    digest = out.stdout.strip().rsplit("@", 1)[1]
    index = json.loads((layout / "index.json").read_text())
    tags = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in index["manifests"]
    }
    assert tags == {"a": digest, "b": digest}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quiet", "--json"], "--quiet and --json"),
        (["--tag", "bad tag!"], "not a valid tag"),
    ],
)
def test_result_usage_errors(registry: Registry, src: Path, args: list[str], message: str) -> None:
    proc = ocibuild("append", *args, "--to", f"{repo(registry, 'x')}:1", f"{src}:/", check=False)
    assert proc.returncode == 2 and message in proc.stderr


def test_tag_needs_a_destination_that_can_hold_tags(src: Path, tmp_path: Path) -> None:
    dest = f"docker-archive:{tmp_path / 'a.tar'}:app:1"
    proc = ocibuild("append", "--tag", "2", "--to", dest, f"{src}:/", check=False)
    assert proc.returncode == 2 and "registry or oci:" in proc.stderr
    assert not (tmp_path / "a.tar").exists()
