"""Docker engine benchmark: ``python -m benchmarks.docker_build [--quick] [--repeat N]``.

ocibuild beside the docker CLI on one private dockerd (vfs storage, no network of its own, its
socket and data root in a temp dir) and one local registry, with the same payload and the same
busybox base, made locally as the tests make it. Three pairs of jobs:

1. the payload put into the engine as ``/app`` on the base: ``ocibuild append --to
   docker-daemon:`` and ``ocibuild build --builder docker --dockerfile`` against ``docker build``
   of the same Dockerfile (``FROM bench/base:1`` + ``COPY . /app``), legacy and BuildKit;
2. the result pushed to the registry: ``ocibuild append --to REGISTRY/...`` (no engine) against
   ``docker push`` of the image ``docker build`` made;
3. an image moved in and out: ``ocibuild copy oci:... docker-daemon:...`` against ``docker load``
   of the same image as a docker-archive, and ``ocibuild copy docker-daemon:... oci:...``
   against ``docker save``.

One cold round (empty ocibuild cache, empty BuildKit cache, new registry repositories), then
``--repeat`` warm rounds; ``main.py`` is edited before every timed command, so each one makes a
layer nobody has seen. The table shows the warm medians and ocibuild / docker.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .measure import BenchError, Measured, measure
from .payloads import Payload, edit_main, ensure_payload, specs
from .registry import Registry, start_registry
from .report import machine_info
from .run import default_cache_dir
from .tools import ocibuild_cmd, tool_version

__all__ = ["main"]

_HERE = Path(__file__).resolve().parent
_TIMEOUT = 900.0  # seconds: one command slower than this is hung
BASE_NAME = "bench/base:1"
DOCKERFILE = f"FROM {BASE_NAME}\nCOPY . /app\n"
_BUILD_PAIR = ("build-docker", "docker-build-bk")
# (row title, ocibuild series, docker series): the pairs the table divides.
ROWS = (
    ("into the engine: append vs docker build (legacy)", "append-daemon", "docker-build-legacy"),
    ("into the engine: append vs docker build (BuildKit)", "append-daemon", "docker-build-bk"),
    ("into the engine: build --builder docker vs docker build (BuildKit)", *_BUILD_PAIR),
    ("to the registry: append (no engine) vs docker push", "append-push", "docker-push"),
    ("into the engine: copy oci: vs docker load", "copy-to-daemon", "docker-load"),
    ("out of the engine: copy to oci: vs docker save", "copy-from-daemon", "docker-save"),
)
SERIES = tuple(dict.fromkeys(s for _, o, d in ROWS for s in (o, d)))


@dataclass(frozen=True)
class Sample:
    """One timed command: its wall and CPU time, and the engine's CPU meanwhile."""

    series: str
    mode: str  # "cold" or "warm"
    round: int
    wall: float
    cpu: float  # user+sys of the command's process tree
    engine_cpu: float  # dockerd's own CPU (and its waited-for children's) while it ran
    max_rss_mb: float


class EngineCpu:
    """CPU seconds dockerd has used so far, with the children it reaped (its unpackers)."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        """utime + stime + cutime + cstime of the process, in seconds."""
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15]) / self._tick


@dataclass
class Bench:
    """Everything one run shares: the engine, the registry, the payload, the base, scratch."""

    engine: Any  # tests.support's RunningEngine
    registry: Registry
    payload: Payload
    base_ref: str  # oci:LAYOUT:TAG
    scratch: Path
    ocibuild: list[str]
    docker: str
    samples: list[Sample]
    rev: int = 0

    def env(self, **extra: str) -> dict[str, str]:
        """The engine's environment (DOCKER_HOST, an empty DOCKER_CONFIG), no proxy, and
        Python's bytecode cache on."""
        env = {**self.engine.env, "NO_PROXY": "127.0.0.1,localhost", **extra}
        env["no_proxy"] = env["NO_PROXY"]
        # ocibuild runs as installed, with its bytecode cached: with PYTHONDONTWRITEBYTECODE
        # set (some CI images set it) every run would compile each module again, ~0.4 s.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def edit(self) -> None:
        """Play a code edit, so the next command makes a layer nobody has seen."""
        self.rev += 1
        edit_main(self.payload, self.rev)

    def run(self, argv: Sequence[str | os.PathLike[str]], what: str, **env: str) -> Measured:
        """Run one untimed step; fail naming it."""
        return measure(argv, env=self.env(**env), timeout=_TIMEOUT).check(what)

    def timed(
        self,
        series: str,
        mode: str,
        rnd: int,
        argv: Sequence[str | os.PathLike[str]],
        **env: str,
    ) -> Measured:
        """Run and record one timed command, with dockerd's CPU meanwhile."""
        cpu = EngineCpu(self.engine.process.pid)
        before = cpu.seconds()
        m = measure(argv, env=self.env(**env), timeout=_TIMEOUT).check(f"{series} ({mode})")
        sample = Sample(
            series, mode, rnd, m.wall, m.cpu, cpu.seconds() - before, round(m.max_rss_mb, 1)
        )
        self.samples.append(sample)
        print(f"  [{mode} r{rnd}] {series}: {m.wall:.3f} s", flush=True)
        return m

    def has_image(self, name: str) -> None:
        """Fail unless the engine holds ``name``."""
        if self.engine.image_id(name) is None:
            raise BenchError(f"the engine holds no {name} after the command that should make it")


# ---------------------------------------------------------------------------------------------
# The three jobs of one round


def into_engine(b: Bench, mode: str, rnd: int, context: Path, dockerfile: Path) -> str:
    """Row 1: append, build --builder docker, docker build (legacy, BuildKit); the legacy tag."""
    cache = str(b.scratch / "cache-daemon")
    b.edit()
    to = f"docker-daemon:bench/append:{rnd}"
    b.timed(
        "append-daemon",
        mode,
        rnd,
        [*b.ocibuild, "append", "--base", b.base_ref, "--to", to, f"{context}:/app"],
        OCIBUILD_CACHE_DIR=cache,
    )
    b.has_image(f"bench/append:{rnd}")
    b.edit()
    to = f"docker-daemon:bench/obuild:{rnd}"
    argv = [*b.ocibuild, "build", str(context), "--builder", "docker", "--dockerfile"]
    b.timed(
        "build-docker", mode, rnd, [*argv, str(dockerfile), "--to", to], OCIBUILD_CACHE_DIR=cache
    )
    b.has_image(f"bench/obuild:{rnd}")
    for series, buildkit in (("docker-build-legacy", "0"), ("docker-build-bk", "1")):
        b.edit()
        tag = f"bench/{series}:{rnd}"
        argv = [b.docker, "build", "-q", "-t", tag, "-f", str(dockerfile), str(context)]
        b.timed(series, mode, rnd, argv, DOCKER_BUILDKIT=buildkit)
        b.has_image(tag)
    return f"bench/docker-build-legacy:{rnd}"


def to_registry(b: Bench, mode: str, rnd: int, context: Path, built: str) -> None:
    """Row 2: ``ocibuild append`` straight to the registry, ``docker push`` of ``built``."""
    cache = str(b.scratch / "cache-push")
    b.edit()
    repo = "bench/append-push"
    to = f"{b.registry.host}/{repo}:{rnd}"
    b.timed(
        "append-push",
        mode,
        rnd,
        [*b.ocibuild, "append", "--base", b.base_ref, "--to", to, f"{context}:/app"],
        OCIBUILD_CACHE_DIR=cache,
    )
    b.registry.manifest(repo, str(rnd))
    target = f"{b.registry.host}/bench/docker-push:{rnd}"
    b.run([b.docker, "tag", built, target], "docker tag")
    b.timed("docker-push", mode, rnd, [b.docker, "push", "-q", target])
    b.registry.manifest("bench/docker-push", str(rnd))


def load_and_save(b: Bench, mode: str, rnd: int, context: Path) -> None:
    """Row 3: an image in (copy oci: -> docker-daemon: vs docker load), then out again."""
    cache = str(b.scratch / "cache-layouts")
    work = b.scratch / f"r{rnd}"
    work.mkdir()

    def new_layout(name: str) -> str:
        # Untimed: a fresh image (base + an edited payload) as an OCI layout.
        b.edit()
        ref = f"oci:{work / name}:img"
        b.run(
            [*b.ocibuild, "append", "--base", b.base_ref, "--to", ref, f"{context}:/app"],
            f"ocibuild append --to {ref}",
            OCIBUILD_CACHE_DIR=cache,
        )
        return ref

    copied = f"bench/copied:{rnd}"
    layout = new_layout("to-daemon")
    b.timed("copy-to-daemon", mode, rnd, [*b.ocibuild, "copy", layout, f"docker-daemon:{copied}"])
    b.has_image(copied)
    # A different image for docker load: the same one would find every layer loaded already.
    archive = work / "load.tar"
    loaded = f"bench/loaded:{rnd}"
    b.run(
        [*b.ocibuild, "copy", new_layout("to-archive"), f"docker-archive:{archive}:{loaded}"],
        "ocibuild copy to docker-archive:",
    )
    b.timed("docker-load", mode, rnd, [b.docker, "load", "-q", "-i", str(archive)])
    b.has_image(loaded)
    out = f"oci:{work / 'saved'}:img"
    b.timed("copy-from-daemon", mode, rnd, [*b.ocibuild, "copy", f"docker-daemon:{copied}", out])
    b.timed("docker-save", mode, rnd, [b.docker, "save", "-o", str(work / "saved.tar"), copied])
    shutil.rmtree(work)


# ---------------------------------------------------------------------------------------------
# Set-up


@contextlib.contextmanager
def private_dockerd(registry: Registry) -> Iterator[Any]:
    """tests.support's dockerd (vfs, no iptables, no bridge), told the registry is insecure."""
    try:
        from tests.support._engines import start_dockerd
    except ImportError as exc:
        raise BenchError(
            f"cannot import tests.support ({exc}): run from the repository root with "
            "`pip install -e '.[test]'`"
        ) from exc
    with start_dockerd([registry.host]) as engine:
        yield engine


def make_base(work: Path) -> str:
    """The tests' busybox base (two gzip layers, packed by umoci) as ``oci:LAYOUT:TAG``."""
    from tests.support import make_base_layout, make_busybox_rootfs

    rootfs = make_busybox_rootfs(work / "rootfs")
    return make_base_layout(work / "base", rootfs).ref


def docker_cli() -> str:
    """Debian's docker CLI, the engine's own version: it has BuildKit built in (no buildx)."""
    from tests.support._engines import docker_cli as find

    return find()


# ---------------------------------------------------------------------------------------------
# Report


def medians(samples: Sequence[Sample], mode: str) -> dict[str, dict[str, float]]:
    """Series -> median wall, CPU, engine CPU of the samples of ``mode``."""
    out = {}
    for series in SERIES:
        group = [s for s in samples if s.series == series and s.mode == mode]
        if group:
            out[series] = {
                "n": len(group),
                "wall": statistics.median(s.wall for s in group),
                "cpu": statistics.median(s.cpu for s in group),
                "engine_cpu": statistics.median(s.engine_cpu for s in group),
            }
    return out


def ratios(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Per row and mode: both medians and ocibuild / docker (below 1: ocibuild is faster)."""
    rows = []
    for mode in ("warm", "cold"):
        stats = medians(samples, mode)
        for title, o, d in ROWS:
            if o in stats and d in stats:
                rows.append(
                    {
                        "row": title,
                        "mode": mode,
                        "ocibuild": o,
                        "docker": d,
                        "n": min(stats[o]["n"], stats[d]["n"]),
                        "ocibuild_s": stats[o]["wall"],
                        "docker_s": stats[d]["wall"],
                        "ratio": stats[o]["wall"] / stats[d]["wall"],
                        "ocibuild_cpu_s": stats[o]["cpu"] + stats[o]["engine_cpu"],
                        "docker_cpu_s": stats[d]["cpu"] + stats[d]["engine_cpu"],
                    }
                )
    return rows


def render(samples: Sequence[Sample], meta: dict[str, Any]) -> str:
    """The markdown report: warm medians and ratios, then the cold round."""
    m = meta["machine"]
    lines = [
        "# ocibuild and the docker CLI on one dockerd",
        "",
        f"{meta['started']} · {m['nproc']} cores · {m['cpu_model']} · payload {meta['payload']} · "
        f"{meta['repeat']} warm round(s) after one cold",
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in sorted(m["versions"].items())),
        "",
        "| row | mode | n | ocibuild s | docker s | ocibuild / docker | ocibuild CPU s "
        "| docker CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ratios(samples):
        lines.append(
            f"| {r['row']} | {r['mode']} | {r['n']} | {r['ocibuild_s']:.3f} | {r['docker_s']:.3f} "
            f"| {r['ratio']:.2f} | {r['ocibuild_cpu_s']:.2f} | {r['docker_cpu_s']:.2f} |"
        )
    lines += [
        "",
        "CPU s: the command's process tree plus dockerd's own CPU meanwhile (medians).",
    ]
    return "\n".join(lines) + "\n"


def _write(out_dir: Path, stamp: str, record: dict[str, Any], text: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps(record, indent=1, default=str) + "\n"
    (out_dir / f"docker-{stamp}.json").write_text(data)
    (out_dir / "docker-latest.json").write_text(data)
    (out_dir / "docker-latest.md").write_text(text)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.docker_build", description=__doc__)
    p.add_argument("--quick", action="store_true", help="one warm round, the 1 KiB payload")
    p.add_argument("--repeat", type=int, default=None, help="warm rounds (default 3; 1 quick)")
    p.add_argument("--out", type=Path, default=_HERE / "results")
    p.add_argument("--cache-dir", type=Path, default=None)
    args = p.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.cache_dir = (args.cache_dir or default_cache_dir()).resolve()
    return args


def run(args: argparse.Namespace) -> str:
    """Start the registry and the engine, run the cold and warm rounds, write the results."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    # A few MiB of code (payload b's small form, 100 files), or 1 KiB with --quick.
    payload = ensure_payload(specs(quick=True)["a" if args.quick else "b"], args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="docker-bench-", dir=args.cache_dir))
    samples: list[Sample] = []
    docker = docker_cli()
    cmd = ocibuild_cmd()
    versions = {
        "ocibuild": tool_version([*cmd, "--version"]),
        "docker": tool_version([docker, "--version"]),
        "dockerd": tool_version(["/usr/sbin/dockerd", "--version"]),
        "docker-registry": tool_version(["docker-registry", "--version"]),
    }
    record: dict[str, Any] = {
        "started": started,
        "repeat": args.repeat,
        "quick": args.quick,
        "payload": f"{payload.spec.key} ({payload.files} files, {payload.total_bytes} bytes)",
        "dockerfile": DOCKERFILE,
    }
    try:
        base_ref = make_base(work)
        dockerfile = work / "Dockerfile"
        dockerfile.write_text(DOCKERFILE)
        with start_registry(work) as registry, private_dockerd(registry) as engine:
            b = Bench(engine, registry, payload, base_ref, work, cmd, docker, samples)
            b.run([*cmd, "copy", base_ref, f"docker-daemon:{BASE_NAME}"], "loading the base")
            for rnd in range(args.repeat + 1):
                mode = "cold" if rnd == 0 else "warm"
                print(f"round {rnd} ({mode})", flush=True)
                built = into_engine(b, mode, rnd, payload.root, dockerfile)
                to_registry(b, mode, rnd, payload.root, built)
                load_and_save(b, mode, rnd, payload.root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["machine"] = machine_info(versions)
    record["machine"]["loadavg_at_end"] = os.getloadavg()
    record["samples"] = [asdict(s) for s in samples]
    record["medians"] = {mode: medians(samples, mode) for mode in ("cold", "warm")}
    record["ratios"] = ratios(samples)
    text = render(samples, record)
    _write(args.out, started.replace(":", ""), record, text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        print(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"results in {args.out}/docker-latest.json, docker-latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
