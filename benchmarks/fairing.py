"""Kubeflow Fairing 1.0.2's AppendBuilder, run from its own venv through fairing_driver.py."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .baseimage import BaseImage
from .measure import BenchError
from .payloads import Payload
from .record import Sample
from .tools import RoundContext, Tool

__all__ = ["FairingTool", "install_venv"]

PINS = Path(__file__).resolve().parent / "fairing-pins.txt"
DRIVER = Path(__file__).resolve().parent / "fairing_driver.py"
_MODULES = (
    "kubeflow.fairing.builders.append.append",
    "kubeflow.fairing.preprocessors.base",
)


def install_hint(venv: Path) -> str:
    """The commands that create the venv (plain pip never resolves Fairing on Python 3.11)."""
    return (
        f"python3 -m venv {venv} && {venv}/bin/pip install --no-deps -r {PINS} "
        "(or pass --install-fairing)"
    )


def install_venv(venv: Path) -> None:
    """Create the Fairing venv from the pin file (about a minute)."""
    print(f"installing Kubeflow Fairing 1.0.2 into {venv}", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "-r", str(PINS)], check=True
        )
    except subprocess.CalledProcessError as exc:
        raise BenchError(
            f"installing the Fairing venv failed ({exc}); try: {install_hint(venv)}"
        ) from exc


class FairingTool(Tool):
    """``AppendBuilder.build()`` with a ``BasePreProcessor`` over the payload's files.

    The whole driver process is timed (interpreter start, Fairing's imports, build, push), the
    same as the whole ``ocibuild`` process; Fairing's own build/push split is kept in ``phases``.
    """

    name = "fairing"

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.python = venv / "bin" / "python"

    def check(self) -> None:
        probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('kubeflow') is None)"
        if (
            not self.python.exists()
            or subprocess.run([str(self.python), "-c", probe], check=False).returncode != 0
        ):
            raise BenchError(
                f"the Kubeflow Fairing venv is missing at {self.venv}: create it "
                f"with {install_hint(self.venv)}, or deselect it with --tools"
            )

    def versions(self) -> dict[str, str]:
        out = subprocess.run(
            [
                str(self.python),
                "-c",
                "import importlib.metadata as m; print(m.version('kubeflow-fairing'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return {"kubeflow-fairing": out.stdout.strip() or "unknown", "fairing_venv": str(self.venv)}

    def setup(self, scratch: Path, base: BaseImage) -> None:
        # Import once untimed: the first import of a fresh venv also writes its .pyc files.
        subprocess.run(
            [str(self.python), "-c", "import " + ", ".join(_MODULES)],
            check=True,
            capture_output=True,
        )

    def prepare(self, payload: Payload, cache_dir: Path) -> None:
        pass

    def run_round(self, ctx: RoundContext) -> list[Sample]:
        samples = []
        repo = f"bench/fairing-r{ctx.round}"
        # An empty docker config: Fairing's keychain must find no credentials, and no helpers.
        env = {"DOCKER_CONFIG": tempfile.mkdtemp(prefix="docker-config-", dir=ctx.scratch)}
        for mode in ("cold", "warm"):
            ctx.edit()
            m, reg_cpu = ctx.run(
                [
                    self.python,
                    DRIVER,
                    "--registry",
                    ctx.registry.fairing_host,
                    "--image-name",
                    repo,
                    "--base",
                    ctx.registry.base_ref(ctx.registry.fairing_host),
                    "--src",
                    ctx.payload.root,
                ],
                f"Fairing AppendBuilder ({mode})",
                env,
            )
            try:
                out = json.loads(m.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError) as exc:
                raise BenchError(
                    f"the Fairing driver printed no result: {m.stdout[-300:]!r} {m.stderr[-500:]!r}"
                ) from exc
            info = {**ctx.verify(repo, out["tag"]), "driver": out}
            phases = {k: out[k] for k in ("import_s", "build_s", "push_s") if k in out}
            samples.append(
                ctx.sample(
                    "fairing",
                    mode,
                    m,
                    reg_cpu,
                    blob_bytes=info.get("layer_bytes"),
                    phases=phases,
                    info=info,
                )
            )
        return samples
