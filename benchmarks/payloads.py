"""The four benchmark payloads, generated from fixed seeds and cached on disk.

(a) one 1 KiB ``main.py``; (b) ~200 MiB in ~1,000 files, half random bytes and half source-like
text; (c) 1 GiB in four random "model weight" files plus ``main.py``; (d) a site-packages-shaped
tree of ~20,000 small files. Every payload has a ``main.py`` at its root whose last line is a
fixed-width revision stamp: :func:`edit_main` bumps it (same size, new bytes, new mtime) to play
"the user edited their code" before a timed run, so every run builds a layer the registry has
never seen.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .measure import BenchError

__all__ = [
    "MAIN_PY",
    "Payload",
    "PayloadSpec",
    "edit_main",
    "ensure_payload",
    "ensure_tar",
    "specs",
]

GENERATOR_VERSION = 1  # bump when the generator changes, so cached payloads are rebuilt
MAIN_PY = "main.py"
_MAIN_SIZE = 1024
_STAMP = "# bench revision {:012d}\n"
_CHUNK = 16 << 20
MiB = 1 << 20


@dataclass(frozen=True)
class PayloadSpec:
    """What to generate: a kind, a seed, a file count and a total size."""

    name: str  # "a", "b", "c" or "d"
    title: str
    seed: int
    files: int
    total_bytes: int

    @property
    def key(self) -> str:
        """The cache directory name: one per distinct spec."""
        return f"{self.name}-{self.files}f-{self.total_bytes}b-s{self.seed}-v{GENERATOR_VERSION}"


_FULL = (
    PayloadSpec("a", "1 KiB main.py", 1001, 1, _MAIN_SIZE),
    PayloadSpec("b", "200 MiB, 1,000 files, half random/half text", 1002, 1000, 200 * MiB),
    PayloadSpec("c", "1 GiB: 4 weight files + main.py", 1003, 5, 1024 * MiB + _MAIN_SIZE),
    PayloadSpec("d", "site-packages: 20,000 small files", 1004, 20000, 128 * MiB),
)
_QUICK = (
    PayloadSpec("a", "1 KiB main.py", 1001, 1, _MAIN_SIZE),
    PayloadSpec("b", "8 MiB, 100 files, half random/half text", 1002, 100, 8 * MiB),
    PayloadSpec("c", "32 MiB: 4 weight files + main.py", 1003, 5, 32 * MiB + _MAIN_SIZE),
    PayloadSpec("d", "site-packages: 1,000 small files", 1004, 1000, 6 * MiB),
)


def specs(quick: bool) -> dict[str, PayloadSpec]:
    """The payload specs by name, full size or the small ``--quick`` ones."""
    return {s.name: s for s in (_QUICK if quick else _FULL)}


@dataclass(frozen=True)
class Payload:
    """A generated payload on disk."""

    spec: PayloadSpec
    root: Path
    files: int
    total_bytes: int


# ---------------------------------------------------------------------------------------------
# Plans: which files, what kind of bytes, how big. A plan is a pure function of the spec.


@dataclass(frozen=True)
class _File:
    path: str
    kind: str  # "random" | "text" | "main"
    size: int
    mode: int = 0o644


def _plan(spec: PayloadSpec) -> list[_File]:
    rng = random.Random(spec.seed)
    main = _File(MAIN_PY, "main", _MAIN_SIZE)
    if spec.name == "a":
        return [main]
    rest = spec.total_bytes - _MAIN_SIZE
    if spec.name == "b":
        n_bin = (spec.files - 1) // 2
        n_txt = spec.files - 1 - n_bin
        bins = _split(rest // 2, n_bin, rng)
        txts = _split(rest - rest // 2, n_txt, rng)
        return [
            main,
            *(
                _File(f"data/shard{i // 50:02d}/blob_{i:04d}.bin", "random", s)
                for i, s in enumerate(bins)
            ),
            *(
                _File(f"src/pkg{i % 8}/mod{i // 8 % 12:02d}/file_{i:04d}.py", "text", s)
                for i, s in enumerate(txts)
            ),
        ]
    if spec.name == "c":
        sizes = _split(rest, spec.files - 1, rng, sigma=0.0)
        return [
            main,
            *(
                _File(f"weights/model-{i + 1:05d}-of-{len(sizes):05d}.safetensors", "random", s)
                for i, s in enumerate(sizes)
            ),
        ]
    if spec.name == "d":
        return [main, *_site_packages(spec.files - 1, rest, rng)]
    raise BenchError(f"unknown payload {spec.name!r}: choose from a, b, c, d")


def _site_packages(n: int, total: int, rng: random.Random) -> Iterator[_File]:
    """Mostly small .py sources, their .pyc, dist-info metadata and a few large .so files."""
    n_so = max(1, n // 200)
    n_meta = n // 10
    n_pyc = n // 4
    n_py = n - n_so - n_meta - n_pyc
    packages = max(4, n // 80)
    meta_names = ("METADATA", "RECORD", "WHEEL", "LICENSE", "top_level.txt", "INSTALLER")
    for i, size in enumerate(_split(total * 45 // 100, n_py, rng, sigma=1.2)):
        yield _File(
            f"site-packages/pkg{i % packages:03d}/sub{i // packages % 6}/m{i:05d}.py", "text", size
        )
    for i, size in enumerate(_split(total * 20 // 100, n_pyc, rng, sigma=1.2)):
        yield _File(
            f"site-packages/pkg{i % packages:03d}/sub{i // packages % 6}/__pycache__/"
            f"m{i:05d}.cpython-311.pyc",
            "random",
            size,
        )
    meta_total = total * 5 // 100
    for i, size in enumerate(_split(meta_total, n_meta, rng, sigma=1.0)):
        d = i // len(meta_names)
        yield _File(
            f"site-packages/pkg{d % packages:03d}-{d // packages}.0.dist-info/"
            f"{meta_names[i % len(meta_names)]}",
            "text",
            size,
        )
    so_total = total - total * 45 // 100 - total * 20 // 100 - meta_total
    for i, size in enumerate(_split(so_total, n_so, rng, sigma=0.8)):
        so = f"_native{i}.cpython-311-x86_64-linux-gnu.so"
        yield _File(f"site-packages/pkg{i % packages:03d}/{so}", "random", size, 0o755)


def _split(total: int, n: int, rng: random.Random, sigma: float = 1.0) -> list[int]:
    """`n` positive sizes summing to `total`, log-normally spread."""
    if n <= 0:
        return []
    weights = [rng.lognormvariate(0.0, sigma) for _ in range(n)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] = max(1, total - sum(sizes[:-1]))
    return sizes


# ---------------------------------------------------------------------------------------------
# Content


_WORDS = (
    "self",
    "data",
    "value",
    "result",
    "config",
    "model",
    "layer",
    "tensor",
    "batch",
    "index",
    "path",
    "name",
    "items",
    "count",
    "buffer",
    "offset",
    "request",
    "response",
    "client",
    "server",
    "handler",
    "token",
    "cache",
    "state",
    "params",
    "args",
    "kwargs",
    "logger",
    "error",
    "options",
    "record",
    "digest",
    "stream",
    "chunk",
    "weights",
    "optimizer",
    "loss",
    "epoch",
)
_FUNCS = ("len", "range", "isinstance", "getattr", "sorted", "enumerate", "zip", "dict", "max")


def _line_pool(rng: random.Random, n: int = 4096) -> list[str]:
    """Python-looking lines: enough variety that gzip finds source-like redundancy, no more."""

    def word() -> str:
        return rng.choice(_WORDS)

    shapes = (
        lambda: f"    {word()}_{word()} = {rng.choice(_FUNCS)}({word()}, {rng.randint(0, 999)})\n",
        lambda: f"def {word()}_{word()}(self, {word()}, {word()}=None):\n",
        lambda: f'        """Return the {word()} of the {word()} for {word()}."""\n',
        lambda: f"        if {word()} is not None and {word()}.{word()} > {rng.randint(0, 64)}:\n",
        lambda: f'            raise ValueError(f"bad {word()}: {{{word()}!r}}")\n',
        lambda: f"from .{word()} import {word()}_{word()}, {word()}\n",
        lambda: f"# {word()} {word()} {word()} {word()} {word()}\n",
        lambda: f"        return {{'{word()}': {word()}, '{word()}': {rng.random():.6f}}}\n",
        lambda: "\n",
    )
    return [rng.choice(shapes)() for _ in range(n)]


def _text(rng: random.Random, pool: list[str], size: int) -> bytes:
    lines = rng.choices(pool, k=size // 40 + 8)
    data = "".join(lines).encode()
    while len(data) < size:
        data += data
    return data[:size]


def _main_py(rev: int) -> bytes:
    stamp = _STAMP.format(rev).encode()
    head = b'"""Benchmark entry point."""\n\nprint("hello from the benchmark payload")\n'
    return head + b"#" * (_MAIN_SIZE - len(head) - len(stamp) - 1) + b"\n" + stamp


def _write(root: Path, plan: list[_File], seed: int) -> None:
    rng = random.Random(seed ^ 0x5EED)
    pool = _line_pool(rng)
    for f in plan:
        path = root / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            if f.kind == "main":
                out.write(_main_py(0))
            elif f.kind == "text":
                out.write(_text(rng, pool, f.size))
            else:
                left = f.size
                while left:
                    n = min(left, _CHUNK)
                    out.write(rng.randbytes(n))
                    left -= n
        os.chmod(path, f.mode)


# ---------------------------------------------------------------------------------------------
# Cache


def ensure_payload(spec: PayloadSpec, cache_dir: Path, log: bool = True) -> Payload:
    """The payload for `spec`, generated into `cache_dir` unless a matching one is there."""
    base = cache_dir / "payloads"
    root = base / spec.key
    manifest = base / f"{spec.key}.json"
    want = {"spec": asdict(spec), "generator": GENERATOR_VERSION}
    if manifest.exists() and root.is_dir():
        files, total = _stat_walk(root)
        have = json.loads(manifest.read_text())
        if (
            have.get("spec") == want["spec"]
            and have.get("generator") == GENERATOR_VERSION
            and (files, total) == (spec.files, spec.total_bytes)
        ):
            return Payload(spec, root, files, total)
    if log:
        print(f"generating payload {spec.name} ({spec.title}) into {root}", flush=True)
    # Also whatever was derived from the old tree: the tar, its blobs and layouts.
    for stale in (root, manifest, *base.glob(f"{spec.key}.tar*")):
        _remove(stale)
    tmp = base / f"{spec.key}.partial"
    _remove(tmp)
    tmp.mkdir(parents=True)
    _write(tmp, _plan(spec), spec.seed)
    files, total = _stat_walk(tmp)
    if (files, total) != (spec.files, spec.total_bytes):
        raise BenchError(
            f"payload {spec.name} generated {files} files / {total} bytes, "
            f"expected {spec.files} / {spec.total_bytes}: a generator bug"
        )
    tmp.rename(root)
    manifest.write_text(json.dumps({**want, "files": files, "total_bytes": total}, indent=1))
    return Payload(spec, root, files, total)


def edit_main(payload: Payload, rev: int) -> None:
    """Play a code edit: rewrite main.py with a new revision stamp (same size, new bytes)."""
    (payload.root / MAIN_PY).write_bytes(_main_py(rev))


def ensure_tar(payload: Payload, cache_dir: Path) -> Path:
    """An uncompressed tar of the payload under ``app/`` (what the limits are measured on)."""
    path = _tar_path(cache_dir, payload.spec)
    if path.exists():
        return path
    tmp = path.with_suffix(".partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(_relpaths(payload.root)):
            info = tar.gettarinfo(payload.root / rel, arcname=f"app/{rel}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isfile():
                with open(payload.root / rel, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    tmp.rename(path)
    return path


def _tar_path(cache_dir: Path, spec: PayloadSpec) -> Path:
    return cache_dir / "payloads" / f"{spec.key}.tar"


def _relpaths(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in (*dirnames, *filenames):
            yield name if rel == "." else f"{rel}/{name}"


def _stat_walk(root: Path) -> tuple[int, int]:
    files = total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            files += 1
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return files, total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
