"""Indexes of indexes are followed only so deep: a chain of them is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild import copy
from ocibuild._errors import ManifestError
from ocibuild.oci import Digest
from ocibuild.oci import _mediatypes as mt


def put(layout: Path, data: bytes) -> dict[str, object]:
    digest = Digest.of(data)
    (layout / "blobs" / "sha256" / digest.hex).write_bytes(data)
    return {"digest": str(digest), "size": len(data)}


def chain(layout: Path, depth: int) -> None:
    """An OCI layout tagged 'top' whose image sits under ``depth`` nested indexes."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, **put(layout, json.dumps(config).encode())},
        "layers": [],
    }
    platform = {"os": "linux", "architecture": "amd64"}
    top = {"mediaType": mt.OCI_MANIFEST, **put(layout, json.dumps(manifest).encode())}
    for _ in range(depth):
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [top]}
        top = {"mediaType": mt.OCI_INDEX, **put(layout, json.dumps(index).encode())}
    top["platform"] = platform
    top["annotations"] = {"org.opencontainers.image.ref.name": "top"}
    index_json = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [top]}
    (layout / "index.json").write_text(json.dumps(index_json))


def test_two_nested_indexes_copy(tmp_path: Path) -> None:
    chain(tmp_path / "src", 2)
    result = copy(f"oci:{tmp_path / 'src'}:top", f"oci:{tmp_path / 'dst'}:top")
    assert result.media_type == mt.OCI_INDEX


def test_a_deep_chain_of_indexes_is_refused(tmp_path: Path) -> None:
    chain(tmp_path / "src", 600)  # past the recursion limit: a RecursionError before
    with pytest.raises(ManifestError, match="nests image indexes more than 8 deep"):
        copy(f"oci:{tmp_path / 'src'}:top", f"oci:{tmp_path / 'dst'}:top")
