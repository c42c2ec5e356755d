"""Start-up micro benchmark: ``python -m benchmarks.startup [--repeat N] [--cache-dir DIR]``.

Puts ocibuild next to crane (go-containerregistry's CLI, built from its Go module at a pinned
version by ``scripts/crane-tool.sh``) where start-up is most of the cost:

- ``--help`` and the version (``ocibuild --version`` / ``crane version``), with
  ``python -c pass`` as the interpreter's own floor;
- a 1 KiB append onto a registry base: ``ocibuild append --base REG/bench/base:latest --to
  REG/bench/ocibuild-N:1 DIR/main.py:/app/main.py`` against ``tar -cf - -C DIR main.py |
  crane append -f - -b REG/bench/base:latest -t REG/bench/crane-N:1`` (the shell pipe is part of
  crane's number, as a crane user would type it).

Runs are paired: each round runs both tools back to back, in alternating order, and every
append writes a new ``main.py`` (fresh bytes) to a repository that does not exist yet, so both
tools mount the three base layers and upload one new layer and a config. The table shows
medians of wall time and of CPU time (user+sys, children included: on a busy machine the CPU
figure moves less than the wall; GNU time counts it in 10 ms steps, so crane's start-up often
shows 0 and its CPU ratio "-") and the ratios ocibuild/crane; ``--out`` keeps every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from .baseimage import ensure_base
from .limits import REPO_ROOT
from .measure import BenchError, measure
from .registry import Registry, start_registry
from .run import default_cache_dir
from .tools import ocibuild_cmd

__all__ = ["main"]

CRANE_SCRIPT = REPO_ROOT / "scripts" / "crane-tool.sh"


def crane_binary() -> str:
    """The pinned crane, built into the tools cache on first use (Go output on stderr)."""
    if exe := os.environ.get("OCIBUILD_BENCH_CRANE"):
        return exe
    try:
        out = subprocess.run([str(CRANE_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(f"could not build crane with {CRANE_SCRIPT}: {exc}") from exc
    return out.stdout.strip().splitlines()[-1]


def _cases(
    ocibuild: list[str], crane: str, reg: Registry, work: Path
) -> dict[str, tuple[Callable[[int], list[str]], Callable[[int], list[str]]]]:
    """case -> (ocibuild argv of round N, crane argv of round N)."""
    base = reg.base_ref()
    src = work / "main.py"

    def fresh(tool: str, n: int) -> None:
        # New bytes for every run: no tool may find its layer already in the registry.
        src.write_bytes(f"# {tool} {n}\n".encode().ljust(1023, b"#") + b"\n")

    def ocibuild_append(n: int) -> list[str]:
        fresh("ocibuild", n)
        to = f"{reg.host}/bench/ocibuild-{n}:1"
        return [*ocibuild, "append", "--base", base, "--to", to, f"{src}:/app/main.py"]

    def crane_append(n: int) -> list[str]:
        fresh("crane", n)
        to = f"{reg.host}/bench/crane-{n}:1"
        pipe = 'tar -cf - -C "$1" main.py | "$2" append --insecure -f - -b "$3" -t "$4"'
        return ["sh", "-c", pipe, "sh", str(work), crane, base, to]

    return {
        "help": (lambda n: [*ocibuild, "--help"], lambda n: [crane, "--help"]),
        "version": (lambda n: [*ocibuild, "--version"], lambda n: [crane, "version"]),
        "append-1KiB": (ocibuild_append, crane_append),
    }


def _run(argv: Sequence[str], env: dict[str, str], what: str) -> tuple[float, float]:
    """Wall and CPU seconds (user+sys of the command and its children: the pipe's tar too)."""
    m = measure(argv, env=env, cwd=REPO_ROOT, timeout=120).check(what)
    return m.wall, m.cpu


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    p.add_argument("--repeat", type=int, default=5, help="paired rounds per case (default 5)")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="write every sample to this JSON file")
    args = p.parse_args(argv)
    cache = (args.cache_dir or default_cache_dir()).resolve()
    crane = crane_binary()
    ocibuild = ocibuild_cmd()
    base = ensure_base(cache)
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp,
        start_registry(cache) as reg,
    ):
        reg.push_base(base)
        work = Path(tmp)
        env = {**os.environ, "OCIBUILD_CACHE_DIR": str(work / "cache")}
        # Timed as installed: with bytecode. Without it (PYTHONDONTWRITEBYTECODE, a fresh
        # checkout) every run compiles ocibuild's modules again, a third of a small append.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # The interpreter's own floor, next to a Go binary's.
        floor = [_run([sys.executable, "-c", "pass"], env, "python") for _ in range(args.repeat)]
        results["python -c pass"] = {"ocibuild": floor}
        for case, (ours, theirs) in _cases(ocibuild, crane, reg, work).items():
            walls: dict[str, list[tuple[float, float]]] = {"ocibuild": [], "crane": []}
            _run(ours(-1), env, f"ocibuild {case} (warm-up: bytecode, page cache)")
            _run(theirs(-1), env, f"crane {case} (warm-up)")
            for n in range(args.repeat):
                order = [("ocibuild", ours), ("crane", theirs)]
                for tool, argv_of in order if n % 2 == 0 else order[::-1]:
                    walls[tool].append(_run(argv_of(n), env, f"{tool} {case}"))
            results[case] = walls
    _report(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"crane": crane, "samples": results}, indent=2))
    return 0


def _report(results: dict[str, dict[str, list[tuple[float, float]]]]) -> None:
    print(f"{'median of':<16} {'ocibuild':>17} {'crane':>17} {'ratio':>13}")
    print(f"{'':<16} {'wall':>8} {'cpu':>8} {'wall':>8} {'cpu':>8} {'wall':>6} {'cpu':>6}")
    for case, samples in results.items():
        if "crane" not in samples:
            wall, cpu = _medians(samples["ocibuild"])
            print(f"{case:<16} {wall:>7.3f}s {cpu:>7.3f}s")
            continue
        (ow, oc), (cw, cc) = (_medians(samples[t]) for t in ("ocibuild", "crane"))
        print(
            f"{case:<16} {ow:>7.3f}s {oc:>7.3f}s {cw:>7.3f}s {cc:>7.3f}s "
            f"{ow / cw:>5.1f}x {f'{oc / cc:.1f}x' if cc >= 0.01 else '-':>6}"
        )


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        sys.exit(f"benchmarks.startup: {exc}")
