"""Push micro benchmark: ``python -m benchmarks.push [--quick] [--payloads b,c] [--repeat N]``.

The finished gzip blob of each payload is pushed to a fresh local registry by:

- ``curl``: POST an upload session, then PUT ?digest= with ``-T file`` (streamed: the limit the
  suite uses), and the same with ``--data-binary @file`` (read into memory first; curl refuses
  files over 1 GiB that way);
- ``python``: one streamed PUT through ``http.client`` (what a single Python thread can push);
- ``skopeo copy`` and ``ocibuild copy`` of a one-layer OCI layout holding that blob (whole
  processes: start-up, manifest and config included).

Every sample gets a fresh registry, so no tool can skip the upload by mounting an earlier copy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from .limits import REPO_ROOT, curl_upload_argv, ensure_blob
from .measure import BenchError, measure
from .payloads import ensure_payload, ensure_tar, specs
from .registry import Registry, V2Client, start_registry
from .run import default_cache_dir
from .tools import OcibuildTool

__all__ = ["main"]

MB = 1e6
_CURL_DATA_BINARY = r"""
set -euo pipefail
loc=$(curl -sSf -o /dev/null -X POST -w '%header{location}' "http://$1/v2/$2/blobs/uploads/")
case "$loc" in /*) loc="http://$1$loc";; esac
case "$loc" in *\?*) sep='&';; *) sep='?';; esac
curl -sSf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    --data-binary @"$3" "$loc${sep}digest=$4"
"""


def _layout(tar: Path, blob: Path, digest: str, size: int) -> Path:
    """A one-layer OCI image layout around the blob (hard-linked, not copied)."""
    root = blob.with_name(blob.name + ".layout")
    if (root / "index.json").exists():
        return root
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    target = blobs / digest.split(":")[1]
    if not target.exists():
        os.link(blob, target)
    h = hashlib.sha256()
    with open(tar, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)

    def put(data: bytes) -> dict[str, object]:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    config = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{h.hexdigest()}"]},
            }
        ).encode()
    )
    manifest = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": digest,
                        "size": size,
                    }
                ],
            }
        ).encode()
    )
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        **manifest,
                        "annotations": {"org.opencontainers.image.ref.name": "push"},
                    }
                ],
            }
        )
    )
    return root


Method = Callable[[Registry], list[str]]


def _methods(
    blob: Path, digest: str, layout: Path, ocibuild: list[str] | None
) -> dict[str, Method]:
    """Name -> a function of the registry giving the argv of one push."""

    def curl_t(reg: Registry) -> list[str]:
        return curl_upload_argv(reg.host, "push/curl-t", blob, digest)

    def curl_data(reg: Registry) -> list[str]:
        return [
            "bash",
            "-c",
            _CURL_DATA_BINARY,
            "curl-data-binary",
            reg.host,
            "push/curl-data",
            str(blob),
            digest,
        ]

    def python(reg: Registry) -> list[str]:
        return [
            sys.executable,
            "-m",
            "benchmarks.push",
            "--child-upload",
            reg.host,
            str(blob),
            digest,
        ]

    def skopeo(reg: Registry) -> list[str]:
        return [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}:push",
            f"docker://{reg.host}/push/skopeo:1",
        ]

    methods: dict[str, Method] = {
        "curl -T": curl_t,
        "curl --data-binary": curl_data,
        "python http.client": python,
        "skopeo copy": skopeo,
    }
    if ocibuild is not None:
        methods["ocibuild copy"] = lambda reg: [
            *ocibuild,
            "copy",
            f"oci:{layout}:push",
            f"{reg.host}/push/ocibuild:1",
        ]
    return methods


def _child_upload(host: str, blob: str, digest: str) -> int:
    V2Client(host).upload_blob("push/python", Path(blob), digest)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.push", description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--payloads", default="b,c")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument(
        "--child-upload", nargs=3, metavar=("HOST", "BLOB", "DIGEST"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.child_upload:
        return _child_upload(*args.child_upload)
    cache = (args.cache_dir or default_cache_dir()).resolve()
    ocibuild_tool = OcibuildTool()
    try:
        ocibuild_tool.check()
        ocibuild: list[str] | None = ocibuild_tool.cmd
        env = {**os.environ, **ocibuild_tool._pythonpath()}
    except BenchError as exc:
        print(f"ocibuild CLI not available, skipping it: {exc}")
        ocibuild, env = None, dict(os.environ)
    table = specs(args.quick)
    for name in [n.strip() for n in args.payloads.split(",") if n.strip()]:
        payload = ensure_payload(table[name], cache)
        tar = ensure_tar(payload, cache)
        blob, digest, size = ensure_blob(tar, "gzip")
        layout = _layout(tar, blob, digest, size)
        print(f"payload {name}: gzip blob {size / MB:.1f} MB", flush=True)
        for method, argv_of in _methods(blob, digest, layout, ocibuild).items():
            walls, reg_cpus = [], []
            for _ in range(args.repeat):
                with start_registry(cache) as reg:
                    before = reg.cpu.seconds()
                    m = measure(argv_of(reg), env=env, cwd=REPO_ROOT)
                    if m.returncode != 0:
                        print(f"  {method:<20} failed: {(m.stderr or m.stdout).strip()[-200:]}")
                        break
                    walls.append(m.wall)
                    reg_cpus.append(reg.cpu.seconds() - before)
            if not walls:
                continue
            wall = statistics.median(walls)
            print(
                f"  {method:<20} median {wall:7.3f} s  {size / MB / wall:7.0f} MB/s  "
                f"registry cpu {statistics.median(reg_cpus):5.2f} s  "
                f"(samples {', '.join(f'{w:.2f}' for w in walls)})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
