"""The base image every tool appends to: three gzip layers (~50 MB), generated from a seed.

It is written once into the cache as an OCI image layout (what umoci unpacks), and alongside it
a Docker schema 2 manifest over the same blobs (what is pushed to the registry, because Fairing
only accepts schema 2 bases). Both manifests list identical layer blobs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BASE_TAG", "BaseImage", "Blob", "ensure_base"]

BASE_TAG = "base"
_VERSION = 1
_SEED = 77
MiB = 1 << 20
# (random MiB, text MiB) per layer: random bytes stand in for binaries, text for docs/scripts.
_LAYERS = ((26, 8), (13, 4), (5, 2))

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
V2S2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
V2S2_CONFIG = "application/vnd.docker.container.image.v1+json"
V2S2_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class Blob:
    """A content-addressed file in the layout."""

    digest: str
    size: int
    path: Path


@dataclass(frozen=True)
class BaseImage:
    """The generated base: an OCI layout plus the schema 2 manifest to push."""

    layout: Path
    config: Blob
    layers: tuple[Blob, ...]
    v2s2_manifest: bytes

    @property
    def size(self) -> int:
        """Compressed bytes of all layers."""
        return sum(layer.size for layer in self.layers)


def ensure_base(cache_dir: Path) -> BaseImage:
    """The base image in `cache_dir`, generated once."""
    root = cache_dir / f"base-v{_VERSION}"
    meta = root / "bench-base.json"
    if not meta.exists():
        print(f"generating the base image into {root}", flush=True)
        if root.exists():
            shutil.rmtree(root)
        _generate(root / "oci", meta)
    info = json.loads(meta.read_text())
    layout = root / "oci"

    def blob(d: dict[str, Any]) -> Blob:
        digest = str(d["digest"])
        return Blob(digest, int(d["size"]), layout / "blobs" / "sha256" / digest.split(":")[1])

    return BaseImage(
        layout=layout,
        config=blob(info["config"]),
        layers=tuple(blob(x) for x in info["layers"]),
        v2s2_manifest=(root / "manifest.v2s2.json").read_bytes(),
    )


def _generate(layout: Path, meta: Path) -> None:
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    rng = random.Random(_SEED)
    layers, diff_ids = [], []
    for index, (rand_mib, text_mib) in enumerate(_LAYERS):
        tar = _layer_tar(rng, index, rand_mib, text_mib)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(tar)
        layers.append(_put(blobs, buf.getvalue()))
    config = json.dumps(
        {
            "created": "1970-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created": "1970-01-01T00:00:00Z", "created_by": f"bench base layer {i}"}
                for i in range(len(_LAYERS))
            ],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    cfg = _put(blobs, config)

    def manifest(media: str, cfg_type: str, layer_type: str) -> bytes:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media,
                "config": {"mediaType": cfg_type, **cfg},
                "layers": [{"mediaType": layer_type, **layer} for layer in layers],
            },
            indent=2,
        ).encode()

    oci = _put(blobs, manifest(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        **oci,
                        "annotations": {"org.opencontainers.image.ref.name": BASE_TAG},
                    }
                ],
            }
        )
    )
    (layout.parent / "manifest.v2s2.json").write_bytes(
        manifest(V2S2_MANIFEST, V2S2_CONFIG, V2S2_LAYER_GZIP)
    )
    meta.write_text(json.dumps({"config": cfg, "layers": layers}, indent=1))


def _layer_tar(rng: random.Random, index: int, rand_mib: int, text_mib: int) -> bytes:
    buf = io.BytesIO()
    words = [f"word{i}" for i in range(2000)]
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        files = [
            (f"usr/lib/bench{index}/lib{i:02d}.so", rng.randbytes(rand_mib * MiB // 8))
            for i in range(8)
        ]
        text = " ".join(rng.choices(words, k=text_mib * MiB // 6)).encode()[: text_mib * MiB]
        files.append((f"usr/share/doc/bench{index}/README.txt", text))
        for name in sorted({str(Path(n).parent) for n, _ in files}):
            parts = name.split("/")
            for depth in range(1, len(parts) + 1):
                d = "/".join(parts[:depth])
                if d not in tar.getnames():
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _put(blobs: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}
