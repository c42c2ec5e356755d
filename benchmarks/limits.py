"""The limits: what the same bytes cost with nothing but sha256, one compressor, or curl.

Run by the suite as child processes (so they are measured like every tool: wall, CPU, peak RSS)::

    python -m benchmarks.limits sha256 FILE
    python -m benchmarks.limits compress gzip|zstd FILE
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Protocol, cast

__all__ = [
    "CODECS",
    "GZIP_LEVEL",
    "LEVELS",
    "REPO_ROOT",
    "ZSTD_LEVEL",
    "compress_argv",
    "curl_upload_argv",
    "ensure_blob",
    "new_compressor",
    "sha256_argv",
    "tar_argv",
]

# The levels every run uses: ocibuild is invoked with --level set to these, so the
# compressor-only limit compresses exactly as ocibuild is asked to.
GZIP_LEVEL = 1  # isal igzip level 1: zlib level 1's ratio at ~8x its speed
ZSTD_LEVEL = 3  # zstandard's default level
CODECS = ("gzip", "zstd")
LEVELS = {"gzip": GZIP_LEVEL, "zstd": ZSTD_LEVEL}
REPO_ROOT = Path(__file__).resolve().parent.parent
_CHUNK = 1 << 20

_CURL_UPLOAD = r"""
set -euo pipefail
loc=$(curl -sSf -o /dev/null -X POST -w '%header{location}' "http://$1/v2/$2/blobs/uploads/")
case "$loc" in /*) loc="http://$1$loc";; esac
case "$loc" in *\?*) sep='&';; *) sep='?';; esac
curl -sSf -o /dev/null -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$3" "$loc${sep}digest=$4"
"""


class _Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


def new_compressor(codec: str, level: int | None = None) -> _Compressor:
    """A streaming compressor: isal gzip or single-threaded zstd."""
    if codec == "gzip":
        from isal import isal_zlib

        # wbits 16+15: a gzip member (header and trailer), as a layer blob needs.
        return cast(
            _Compressor,
            isal_zlib.compressobj(
                level if level is not None else GZIP_LEVEL, isal_zlib.DEFLATED, 16 + 15
            ),
        )
    if codec == "zstd":
        import zstandard

        return cast(
            _Compressor,
            zstandard.ZstdCompressor(
                level=level if level is not None else ZSTD_LEVEL
            ).compressobj(),
        )
    raise ValueError(f"unknown codec {codec!r}: use gzip or zstd")


def _compress(src: Path, codec: str, out: Any = None) -> int:
    comp = new_compressor(codec)
    total = 0
    with open(src, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            data = comp.compress(chunk)
            total += len(data)
            if out is not None:
                out.write(data)
        data = comp.flush()
        total += len(data)
        if out is not None:
            out.write(data)
    return total


def _sha256(src: Path) -> str:
    h = hashlib.sha256()
    with open(src, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def ensure_blob(tar: Path, codec: str) -> tuple[Path, str, int]:
    """The finished blob of `tar` for `codec` (cached beside it): path, digest, size."""
    ext = {"gzip": ".gz", "zstd": ".zst"}[codec]
    path = tar.with_name(f"{tar.name}.l{LEVELS[codec]}{ext}")
    meta = path.with_name(path.name + ".json")
    if not (path.exists() and meta.exists()):
        tmp = path.with_name(path.name + ".partial")
        with open(tmp, "wb") as out:
            _compress(tar, codec, out)
        meta.write_text(json.dumps({"digest": "sha256:" + _sha256(tmp)}))
        tmp.rename(path)
    return path, json.loads(meta.read_text())["digest"], path.stat().st_size


def sha256_argv(src: Path) -> list[str]:
    """Hash the file, nothing else."""
    return [sys.executable, "-m", "benchmarks.limits", "sha256", str(src)]


def compress_argv(src: Path, codec: str) -> list[str]:
    """Compress the file with one compressor, discarding the output."""
    return [sys.executable, "-m", "benchmarks.limits", "compress", codec, str(src)]


def curl_upload_argv(host: str, repo: str, blob: Path, digest: str) -> list[str]:
    """Upload a finished blob with two curl calls: POST a session, PUT ?digest= the bytes.

    The PUT streams the file (``-T``): ``--data-binary @file`` reads it into memory first and
    curl refuses files over 1 GiB that way ("out of memory"), which the 1 GiB payload exceeds.
    """
    return ["bash", "-c", _CURL_UPLOAD, "curl-upload", host, repo, str(blob), digest]


def tar_argv(root: Path) -> list[str]:
    """GNU tar walking the payload into a pipe (not /dev/null: tar skips reading for that)."""
    return [
        "bash",
        "-c",
        'set -o pipefail; tar --sort=name -C "$1" -cf - . | cat >/dev/null',
        "tar-walk",
        str(root),
    ]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child processes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.limits")
    sub = parser.add_subparsers(dest="op", required=True)
    sub.add_parser("sha256").add_argument("file", type=Path)
    comp = sub.add_parser("compress")
    comp.add_argument("codec", choices=CODECS)
    comp.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.op == "sha256":
        print(json.dumps({"sha256": _sha256(args.file)}))
    else:
        print(json.dumps({"compressed_bytes": _compress(args.file, args.codec)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
