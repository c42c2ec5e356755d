"""Dependency layers: a cold build that runs pip, then a rebuild after a code change.

``python -m benchmarks.deps [--files N] [--repeat N]``

A wheel of N generated modules (about 10 KiB each, default 2,000) is made by hand into a
local wheelhouse, so pip runs offline (``PIP_NO_INDEX``, ``PIP_FIND_LINKS``). ``ocibuild
build`` packs ``main.py`` with that requirement onto the suite's base image, into an OCI
layout: first with an empty cache (pip runs, both layers are built), then after editing
``main.py`` (the dependency layer must come from the cache: same digest, pip not run), then
with nothing changed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

from .baseimage import ensure_base
from .measure import measure
from .tools import ocibuild_cmd

__all__ = ["main"]


def make_wheel(wheelhouse: Path, files: int, seed: int = 7) -> Path:
    """A pure-Python wheel ``benchdeps-1.0`` with ``files`` modules of generated code."""
    rng = random.Random(seed)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    path = wheelhouse / "benchdeps-1.0-py3-none-any.whl"
    if path.exists():
        return path
    records: list[str] = []

    def add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
        zf.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        records.append(f"{name},sha256={digest},{len(data)}")

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        add(zf, "benchdeps/__init__.py", b"VERSION = '1.0'\n")
        for i in range(files):
            lines = [
                f"def f{i}_{j}(x):\n    return x * {rng.randint(1, 999)} + {j}\n"
                for j in range(200)
            ]
            add(zf, f"benchdeps/m{i:05d}.py", "".join(lines).encode())
        info = "benchdeps-1.0.dist-info"
        add(zf, f"{info}/METADATA", b"Metadata-Version: 2.1\nName: benchdeps\nVersion: 1.0\n")
        wheel = "Wheel-Version: 1.0\nGenerator: benchmarks\nRoot-Is-Purelib: true\n"
        add(zf, f"{info}/WHEEL", (wheel + "Tag: py3-none-any\n").encode())
        records.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deps", description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(
            os.environ.get("OCIBUILD_BENCH_CACHE", Path.home() / ".cache" / "ocibuild-bench")
        ),
    )
    args = parser.parse_args(argv)

    base = ensure_base(args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="ocibuild-bench-deps-"))
    wheelhouse = args.cache_dir / "wheelhouse"
    make_wheel(wheelhouse, args.files)
    app = work / "app"
    app.mkdir()
    (app / "requirements.txt").write_text("benchdeps==1.0\n")
    cmd = ocibuild_cmd()
    rows: dict[str, list[float]] = {
        "cold (pip + both layers)": [],
        "code changed": [],
        "nothing changed": [],
    }
    for round_ in range(args.repeat):
        cache = work / f"cache-{round_}"
        env = {
            **os.environ,
            "OCIBUILD_CACHE_DIR": str(cache),
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheelhouse),
        }
        digests = []
        for label, edit in (
            ("cold (pip + both layers)", True),
            ("code changed", True),
            ("nothing changed", False),
        ):
            if edit:
                (app / "main.py").write_text(f"print('revision {len(digests)}')\n")
            done = measure(
                [
                    *cmd,
                    "build",
                    str(app / "main.py"),
                    "--requirements",
                    str(app / "requirements.txt"),
                    "--python-version",
                    "3.11",
                    "--base",
                    f"oci:{base.layout}:base",
                    "--to",
                    f"oci:{work / 'out'}:r{round_}",
                    "--json",
                ],
                env=env,
            ).check(f"ocibuild build ({label})")
            report = json.loads(done.stdout)
            layers = [b for b in report["blobs"] if b["kind"] == "layer"]
            digests.append(layers[-2]["digest"])  # the dependency layer, under the code layer
            rows[label].append(done.wall)
        if len(set(digests)) != 1:
            print(f"dependency layer changed between builds: {digests}", file=sys.stderr)
            return 1
        pip_runs = list((cache / "deps").glob("*/pip.log"))
        if len(pip_runs) != 1:
            print(f"pip ran {len(pip_runs)} times, expected once", file=sys.stderr)
            return 1

    print(f"dependency layer: {args.files} modules in one wheel; medians of {args.repeat}")
    print("| build | wall s |")
    print("|---|---:|")
    for label, walls in rows.items():
        print(f"| {label} | {statistics.median(walls):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
