"""Layer-only micro benchmark: ``python -m benchmarks.layer [--quick] [--payloads b,c]``.

For the bytes of payloads (b) and (c) it prints single-thread MB/s of raw sha256, isal gzip
level 1, zlib levels 1 and 6 and zstd levels 1 and 3 (all on the payload's tar, held in memory),
then ocibuild's own pipeline through its library API (walk -> tar -> sha256 -> compress ->
sha256, read from the files, consumed to the end), if ocibuild is importable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from .limits import GZIP_LEVEL, ZSTD_LEVEL, new_compressor
from .payloads import ensure_payload, ensure_tar, specs
from .run import default_cache_dir

__all__ = ["main"]

_CHUNK = 1 << 20
MB = 1e6


def _load(tar: Path, limit: int) -> list[bytes]:
    chunks, total = [], 0
    with open(tar, "rb", buffering=0) as f:
        while total < limit and (chunk := f.read(min(_CHUNK, limit - total))):
            chunks.append(chunk)
            total += len(chunk)
    return chunks


def _sha256(chunks: list[bytes]) -> int:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return len(h.digest())


def _codec(make: Callable[[], Any]) -> Callable[[list[bytes]], int]:
    def run(chunks: list[bytes]) -> int:
        comp = make()
        return sum(len(comp.compress(c)) for c in chunks) + len(comp.flush())

    return run


RAW: tuple[tuple[str, Callable[[list[bytes]], int]], ...] = (
    ("sha256", _sha256),
    (f"isal gzip {GZIP_LEVEL}", _codec(lambda: new_compressor("gzip", GZIP_LEVEL))),
    ("zlib 1", _codec(lambda: zlib.compressobj(1, zlib.DEFLATED, 31))),
    ("zlib 6", _codec(lambda: zlib.compressobj(6, zlib.DEFLATED, 31))),
    ("zstd 1", _codec(lambda: new_compressor("zstd", 1))),
    ("zstd 3", _codec(lambda: new_compressor("zstd", 3))),
)


def _timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - cpu0, out


def _ocibuild_rows(root: Path, tar_bytes: int) -> Iterable[dict[str, Any]]:
    try:
        from ocibuild.layer import FileTreeLayer, LayerOptions
    except ImportError as exc:
        print(f"  ocibuild layer API not available ({exc})")
        return
    source = f"{root}:/app"

    def drain(stream: Iterable[bytes]) -> int:
        return sum(len(chunk) for chunk in stream)

    cases: list[tuple[str, Callable[[], int]]] = [
        (
            "ocibuild walk+tar",
            lambda: drain(FileTreeLayer([source], LayerOptions(compression="none")).uncompressed()),
        ),
    ]

    def pipeline(codec: Any, level: int | None) -> Callable[[], int]:
        return lambda: drain(
            FileTreeLayer([source], LayerOptions(compression=codec, level=level)).compressed()
        )

    for codec, level in (("none", None), ("gzip", GZIP_LEVEL), ("zstd", ZSTD_LEVEL)):
        name = f"ocibuild pipeline {codec}" + (f" {level}" if level is not None else "")
        cases.append((name, pipeline(codec, level)))
    for name, fn in cases:
        try:
            wall, cpu, out = _timed(fn)
        except Exception as exc:  # the API is young: report, keep going
            print(f"  {name}: failed: {type(exc).__name__}: {exc}")
            continue
        yield {"op": name, "in_bytes": tar_bytes, "out_bytes": out, "wall": wall, "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.layer", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the small --quick payloads")
    p.add_argument("--payloads", default="b,c", help="comma-separated, default b,c")
    p.add_argument(
        "--limit-mib",
        type=int,
        default=256,
        help="raw codecs run on the first N MiB of the tar (default 256; 0: all)",
    )
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    cache = (args.cache_dir or default_cache_dir()).resolve()
    table = specs(args.quick)
    rows: list[dict[str, Any]] = []
    for name in [n.strip() for n in args.payloads.split(",") if n.strip()]:
        if name not in table:
            p.error(f"unknown payload {name!r}: choose from {','.join(table)}")
        payload = ensure_payload(table[name], cache)
        tar = ensure_tar(payload, cache)
        tar_bytes = tar.stat().st_size
        chunks = _load(tar, (args.limit_mib << 20) if args.limit_mib else tar_bytes)
        used = sum(map(len, chunks))
        print(
            f"payload {name}: {payload.spec.title}; tar {tar_bytes / MB:.1f} MB, "
            f"raw codecs on {used / MB:.1f} MB in memory",
            flush=True,
        )
        found = []
        for op, fn in RAW:
            wall, cpu, out = _timed(partial(fn, chunks))
            found.append({"op": op, "in_bytes": used, "out_bytes": out, "wall": wall, "cpu": cpu})
            _print(found[-1])
        for row in _ocibuild_rows(payload.root, tar_bytes):
            found.append(row)
            _print(row)
        rows += [{"payload": name, **r} for r in found]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "layer-latest.json").write_text(json.dumps(rows, indent=1))
    return 0


def _print(row: dict[str, Any]) -> None:
    print(
        f"  {row['op']:<26} {row['in_bytes'] / MB:9.1f} MB  {row['wall']:7.3f} s  "
        f"{row['in_bytes'] / MB / row['wall']:8.0f} MB/s  cpu {row['cpu']:6.2f} s"
        + (f"  out/in {row['out_bytes'] / row['in_bytes']:.3f}" if row["out_bytes"] > 64 else ""),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
