"""The side-by-side benchmark: ``python -m benchmarks.run [--quick] [--payloads a,b,c,d] ...``.

See benchmarks/README.md for what is measured and what cold, warm and no-op mean.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .baseimage import ensure_base
from .fairing import FairingTool, install_venv
from .limits import LEVELS
from .measure import BenchError
from .payloads import ensure_payload, specs
from .record import Sample
from .registry import start_registry
from .report import machine_info, write_results
from .tools import LimitsTool, OcibuildTool, RoundContext, Tool, UmociTool, tool_version

__all__ = ["default_cache_dir", "main"]

TOOLS = ("ocibuild", "fairing", "umoci", "limits")
_HERE = Path(__file__).resolve().parent


def default_cache_dir() -> Path:
    """``$OCIBUILD_BENCH_CACHE``, else ``$XDG_CACHE_HOME/ocibuild-bench`` (outside the repo)."""
    if env := os.environ.get("OCIBUILD_BENCH_CACHE"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ocibuild-bench"


def _csv(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(choices)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small payloads: a smoke run (< 2 min)")
    p.add_argument("--payloads", type=_csv(("a", "b", "c", "d")), default=["a", "b", "c", "d"])
    p.add_argument("--tools", type=_csv(TOOLS), default=list(TOOLS))
    p.add_argument(
        "--repeat", type=int, default=None, help="rounds per payload (default 3, or 1 with --quick)"
    )
    p.add_argument("--out", type=Path, default=_HERE / "results")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="payloads, base image and scratch (default: %(default)s -> "
        "$OCIBUILD_BENCH_CACHE or ~/.cache/ocibuild-bench)",
    )
    p.add_argument(
        "--fairing-venv",
        type=Path,
        default=None,
        help="venv with Kubeflow Fairing 1.0.2 (default: CACHE_DIR/fairing-venv)",
    )
    p.add_argument(
        "--install-fairing",
        action="store_true",
        help="create the Fairing venv from benchmarks/fairing-pins.txt if missing",
    )
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    args.cache_dir = (args.cache_dir or default_cache_dir()).resolve()
    args.fairing_venv = (args.fairing_venv or args.cache_dir / "fairing-venv").resolve()
    return args


def _tools(args: argparse.Namespace) -> list[Tool]:
    made: dict[str, Callable[[], Tool]] = {
        "limits": LimitsTool,
        "ocibuild": OcibuildTool,
        "fairing": lambda: FairingTool(args.fairing_venv),
        "umoci": UmociTool,
    }
    # Limits first: they also warm the page cache, so every tool reads the payload from memory.
    return [made[name]() for name in sorted(args.tools, key=("limits", *TOOLS).index)]


def _announce(s: Sample) -> None:
    print(
        f"  [{s.payload} r{s.round}] {s.series:<18} {s.mode:<5} wall {s.wall:8.3f}s  "
        f"cpu {s.cpu:8.2f}s  rss {s.max_rss_mb:6.0f} MB"
        + (f"  registry cpu {s.registry_cpu:6.2f}s" if s.registry_cpu is not None else ""),
        flush=True,
    )


def run(args: argparse.Namespace) -> str:
    """Run the whole suite; return the markdown report."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    stamp = started.replace(":", "")
    if "fairing" in args.tools and args.install_fairing and not args.fairing_venv.exists():
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        install_venv(args.fairing_venv)
    tools = _tools(args)
    if shutil.which("docker-registry") is None:
        raise BenchError("docker-registry is not installed: apt-get install -y docker-registry")
    for tool in tools:
        tool.check()
    versions = {"docker-registry": tool_version(["docker-registry", "--version"])}
    for tool in tools:
        versions.update(tool.versions())
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    base = ensure_base(args.cache_dir)
    payload_specs = specs(args.quick)
    payloads = {name: ensure_payload(payload_specs[name], args.cache_dir) for name in args.payloads}
    meta: dict[str, Any] = {
        "started": started,
        "quick": args.quick,
        "repeat": args.repeat,
        "tools": args.tools,
        "levels": dict(LEVELS),
        "cache_dir": str(args.cache_dir),
        "machine": machine_info(versions),
        "base_image": {"layers": len(base.layers), "compressed_bytes": base.size},
        "payloads": {
            n: {
                "title": p.spec.title,
                "seed": p.spec.seed,
                "files": p.files,
                "bytes": p.total_bytes,
            }
            for n, p in payloads.items()
        },
    }
    samples: list[Sample] = []
    revs = itertools.count(1)
    # Scratch lives beside the payloads: umoci's staging hard-links into them (same filesystem).
    scratch_root = Path(tempfile.mkdtemp(prefix="scratch-", dir=args.cache_dir))
    try:
        for tool in tools:
            tool.setup(scratch_root, base)
        for name, payload in payloads.items():
            print(
                f"payload {name}: {payload.spec.title} ({payload.files} files, "
                f"{payload.total_bytes / 1e6:.1f} MB)",
                flush=True,
            )
            for tool in tools:
                tool.prepare(payload, args.cache_dir)
            for rnd in range(1, args.repeat + 1):
                scratch = Path(tempfile.mkdtemp(prefix=f"{name}-r{rnd}-", dir=scratch_root))
                with start_registry(scratch_root) as registry:
                    registry.push_base(base)
                    ctx = RoundContext(
                        payload, registry, base, rnd, scratch, lambda: next(revs), _announce
                    )
                    for tool in tools:
                        samples += tool.run_round(ctx)
                shutil.rmtree(scratch, ignore_errors=True)
            write_results(args.out, stamp, samples, meta, final=False)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    meta["machine"]["loadavg_at_end"] = os.getloadavg()
    return write_results(args.out, stamp, samples, meta)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        print(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"results in {args.out}/latest.json, latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
