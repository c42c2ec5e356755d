"""The contenders, each driven as a black box through its command line.

Every tool runs one *round* per payload against a fresh registry that holds only the base image
(``bench/base:latest``, Docker schema 2). Within a round:

- cold: ``main.py`` is edited, then the tool pushes to a repository that does not exist yet, so
  the base layers must be mounted or uploaded; ocibuild gets an empty ``OCIBUILD_CACHE_DIR``.
- warm: ``main.py`` is edited again, then the tool pushes to the same repository, which now has
  the base layers (and the previous payload layer, which no longer matches); ocibuild keeps its
  cache dir.
- noop (ocibuild only): the warm command again, nothing changed.

The edit before cold and warm makes every timed run build a layer that no registry, cache or
blob-info database has seen, so no tool can skip work by remembering an earlier run.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import limits
from .baseimage import BASE_TAG, BaseImage
from .measure import BenchError, Measured, measure, missing_tool
from .payloads import Payload, edit_main, ensure_tar
from .record import Sample, combine
from .registry import Registry

__all__ = ["LimitsTool", "OcibuildTool", "RoundContext", "Tool", "UmociTool", "tool_version"]

_TIMEOUT = 1800.0  # seconds: a tool slower than this on one payload is hung


@dataclass
class RoundContext:
    """What a tool needs for one round: payload, registry, base, scratch space."""

    payload: Payload
    registry: Registry
    base: BaseImage
    round: int
    scratch: Path  # empty, deleted after the round
    next_rev: Callable[[], int]
    report: Callable[[Sample], None]

    def edit(self) -> None:
        """Play a code edit so the next run builds a layer nobody has seen."""
        edit_main(self.payload, self.next_rev())

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        what: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> tuple[Measured, float]:
        """Run and measure one command; also return the registry's CPU seconds meanwhile."""
        before = self.registry.cpu.seconds()
        m = measure(argv, env=_env(env), cwd=cwd, timeout=_TIMEOUT).check(what)
        return m, self.registry.cpu.seconds() - before

    def verify(self, repo: str, ref: str) -> dict[str, Any]:
        """Check what was pushed: the base layers, in order, then at least one new layer."""
        digest, manifest = self.registry.manifest(repo, ref)
        layers = [layer["digest"] for layer in manifest.get("layers", [])]
        base = [layer.digest for layer in self.base.layers]
        if layers[: len(base)] != base or len(layers) <= len(base):
            raise BenchError(f"{repo}:{ref} does not look like base + payload: layers {layers}")
        return {
            "manifest_digest": digest,
            "layers": len(layers),
            "layer_bytes": manifest["layers"][-1].get("size"),
        }

    def sample(
        self, series: str, mode: str, m: Measured, registry_cpu: float | None, **extra: Any
    ) -> Sample:
        """Record a measured run and announce it."""
        s = Sample(
            payload=self.payload.spec.name,
            series=series,
            mode=mode,
            round=self.round,
            wall=m.wall,
            user=m.user,
            sys=m.sys,
            max_rss_mb=m.max_rss_mb,
            payload_bytes=self.payload.total_bytes,
            registry_cpu=registry_cpu,
            **extra,
        )
        self.report(s)
        return s


class Tool:
    """A contender: checked once, set up once, then run one round per payload and repeat."""

    name = ""

    def check(self) -> None:
        """Raise :class:`BenchError` naming how to install what is missing."""

    def versions(self) -> dict[str, str]:
        """Name -> version string of what this tool runs."""
        return {}

    def setup(self, scratch: Path, base: BaseImage) -> None:
        """Untimed preparation shared by all payloads."""

    def prepare(self, payload: Payload, cache_dir: Path) -> None:
        """Untimed preparation for one payload."""

    def run_round(self, ctx: RoundContext) -> list[Sample]:
        """Run the timed samples of one round."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------


class OcibuildTool(Tool):
    """``ocibuild append`` with gzip and zstd: cold, warm, then the no-op rebuild."""

    name = "ocibuild"

    def __init__(self) -> None:
        self.cmd = ocibuild_cmd()

    def check(self) -> None:
        try:
            m = measure([*self.cmd, "append", "--help"], env=_env(self._pythonpath()))
        except BenchError as exc:
            raise missing_tool("ocibuild", "run `pip install -e .` in the repository") from exc
        if m.returncode != 0 or "--base" not in m.stdout:
            raise BenchError(
                f"`{shlex.join(self.cmd)} append --help` failed (exit {m.returncode}): "
                f"{(m.stderr or m.stdout).strip()[-300:]}; run `pip install -e .` in the "
                "repository, set OCIBUILD_BENCH_CMD, or deselect it with --tools"
            )

    def versions(self) -> dict[str, str]:
        m = measure([*self.cmd, "--version"], env=_env(self._pythonpath()))
        return {
            "ocibuild": m.stdout.strip() if m.returncode == 0 else "unknown",
            "ocibuild_cmd": shlex.join(self.cmd),
        }

    def _pythonpath(self) -> dict[str, str]:
        return {"PYTHONPATH": str(limits.REPO_ROOT)} if self.cmd[0] == sys.executable else {}

    def run_round(self, ctx: RoundContext) -> list[Sample]:
        samples = []
        for codec in limits.CODECS:
            series = f"ocibuild-{codec}"
            repo = f"bench/ocibuild-{codec}-r{ctx.round}"
            cache = tempfile.mkdtemp(prefix=f"cache-{codec}-", dir=ctx.scratch)
            env = {**self._pythonpath(), "OCIBUILD_CACHE_DIR": cache}

            def append(tag: str, repo: str = repo, codec: str = codec) -> list[str]:
                return [
                    *self.cmd,
                    "append",
                    "--base",
                    ctx.registry.base_ref(),
                    "--to",
                    f"{ctx.registry.host}/{repo}:{tag}",
                    "--compression",
                    codec,
                    "--level",
                    str(limits.LEVELS[codec]),
                    "--json",
                    f"{ctx.payload.root}:/app",
                ]

            warm_digest = ""
            for mode, tag, edit in (
                ("cold", "cold", True),
                ("warm", "warm", True),
                ("noop", "warm", False),
            ):
                if edit:
                    ctx.edit()
                m, reg_cpu = ctx.run(append(tag), f"ocibuild append ({series}, {mode})", env)
                info = {**ctx.verify(repo, tag), "json": _json_or_text(m.stdout)}
                if mode == "warm":
                    warm_digest = info["manifest_digest"]
                if mode == "noop":
                    info["same_digest_as_warm"] = info["manifest_digest"] == warm_digest
                samples.append(
                    ctx.sample(
                        series, mode, m, reg_cpu, blob_bytes=info.get("layer_bytes"), info=info
                    )
                )
        return samples


def ocibuild_cmd() -> list[str]:
    """How to start the CLI: OCIBUILD_BENCH_CMD, the installed script, or the repo's module."""
    if cmd := os.environ.get("OCIBUILD_BENCH_CMD"):
        return shlex.split(cmd)
    # The script beside this interpreter first: a PATH hit may be a pyenv shim, a bash script
    # that would add its own start-up to every timed run.
    script = Path(sysconfig.get_path("scripts")) / "ocibuild"
    if script.exists():
        return [str(script)]
    if exe := shutil.which("ocibuild"):
        return [exe]
    # Not installed: run the package from the source tree (PYTHONPATH is set to it).
    return [sys.executable, "-m", "ocibuild"]


# ---------------------------------------------------------------------------------------------


class UmociTool(Tool):
    """``umoci repack`` of the payload onto the unpacked base, then ``skopeo copy`` to the registry.

    The base is unpacked once, outside the timing (``setup``). Before each timed pair, also
    untimed, a copy of that layout and bundle is made and the payload is hard-linked into
    ``rootfs/app``; the timed pair is ``umoci repack`` + ``skopeo copy``.
    """

    name = "umoci"

    def check(self) -> None:
        for tool in ("umoci", "skopeo"):
            if shutil.which(tool) is None:
                raise missing_tool(tool, f"apt-get install -y {tool}")

    def versions(self) -> dict[str, str]:
        return {
            "umoci": tool_version(["umoci", "--version"]),
            "skopeo": tool_version(["skopeo", "--version"]),
        }

    def setup(self, scratch: Path, base: BaseImage) -> None:
        self.template = scratch / "umoci-template"
        self.template.mkdir()
        layout = self.template / "layout"
        shutil.copytree(base.layout, layout)
        measure(
            [
                "umoci",
                "unpack",
                "--rootless",
                "--image",
                f"{layout}:{BASE_TAG}",
                self.template / "bundle",
            ]
        ).check("umoci unpack of the base")

    def run_round(self, ctx: RoundContext) -> list[Sample]:
        samples = []
        repo = f"bench/umoci-r{ctx.round}"
        for mode in ("cold", "warm"):
            ctx.edit()
            work = ctx.scratch / f"umoci-{mode}"
            self._stage(work, ctx.payload)
            m1, cpu1 = ctx.run(
                ["umoci", "repack", "--image", f"{work}/layout:bench", work / "bundle"],
                f"umoci repack ({mode})",
            )
            m2, cpu2 = ctx.run(
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    f"oci:{work}/layout:bench",
                    f"docker://{ctx.registry.host}/{repo}:{mode}",
                ],
                f"skopeo copy ({mode})",
            )
            info = ctx.verify(repo, mode)
            samples.append(
                ctx.sample(
                    "umoci+skopeo",
                    mode,
                    combine(m1, m2),
                    cpu1 + cpu2,
                    blob_bytes=info.get("layer_bytes"),
                    info=info,
                    phases={"umoci_repack": round(m1.wall, 4), "skopeo_copy": round(m2.wall, 4)},
                )
            )
            shutil.rmtree(work)
        return samples

    def _stage(self, work: Path, payload: Payload) -> None:
        work.mkdir()
        cp = shutil.which("cp") or "cp"
        for part in ("layout", "bundle"):
            subprocess.run([cp, "-a", self.template / part, work / part], check=True)
        # Hard links: no 1 GiB of dirty page cache being written back during the timed run.
        subprocess.run([cp, "-al", payload.root, work / "bundle" / "rootfs" / "app"], check=True)


# ---------------------------------------------------------------------------------------------


class LimitsTool(Tool):
    """What the same bytes cost through sha256 alone, one compressor alone, or a curl upload."""

    name = "limits"

    def check(self) -> None:
        for tool, pkg in (("curl", "curl"), ("tar", "tar"), ("bash", "bash")):
            if shutil.which(tool) is None:
                raise missing_tool(tool, f"apt-get install -y {pkg}")
        for module in ("isal", "zstandard"):
            try:
                __import__(module)
            except ImportError as exc:
                raise missing_tool(f"python package {module}", f"pip install {module}") from exc

    def versions(self) -> dict[str, str]:
        import isal
        import zstandard

        return {
            "curl": tool_version(["curl", "--version"]),
            "tar": tool_version(["tar", "--version"]),
            "isal": isal.__version__,
            "zstandard": zstandard.__version__,
        }

    def prepare(self, payload: Payload, cache_dir: Path) -> None:
        self.tar = ensure_tar(payload, cache_dir)
        self.blobs = {codec: limits.ensure_blob(self.tar, codec) for codec in limits.CODECS}

    def run_round(self, ctx: RoundContext) -> list[Sample]:
        tar_bytes = self.tar.stat().st_size
        samples = []

        def once(series: str, argv: list[str], blob_bytes: int, reg: bool = False) -> None:
            m, reg_cpu = ctx.run(argv, series, cwd=limits.REPO_ROOT)
            samples.append(
                ctx.sample(
                    series,
                    "once",
                    m,
                    reg_cpu if reg else None,
                    blob_bytes=blob_bytes,
                    info={"tar_bytes": tar_bytes},
                )
            )

        once("limit-tar", limits.tar_argv(ctx.payload.root), tar_bytes)
        once("limit-sha256", limits.sha256_argv(self.tar), tar_bytes)
        for codec in limits.CODECS:
            path, digest, size = self.blobs[codec]
            once(f"limit-{codec}", limits.compress_argv(self.tar, codec), size)
            repo = f"bench/curl-{codec}-r{ctx.round}"
            once(
                f"limit-curl-{codec}",
                limits.curl_upload_argv(ctx.registry.host, repo, path, digest),
                size,
                reg=True,
            )
        return samples


# ---------------------------------------------------------------------------------------------


def tool_version(argv: list[str]) -> str:
    """The first line a ``--version`` prints, or "unknown"."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip()
    line = text.splitlines()[0] if text else "unknown"
    return line.split(" (")[0] if len(line) > 40 else line  # curl's line lists every library


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    # Loopback must never go through a proxy a developer has set.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


def _json_or_text(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text.strip()[:500]
