"""Helpers for the pipeline tests: unpack a built image and run its command with this Python."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import skopeo_copy, umoci_unpack

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Unpacked:
    """An image unpacked by umoci: its rootfs and the runtime config umoci derived from it."""

    bundle: Path

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    @property
    def process(self) -> dict[str, Any]:
        process: dict[str, Any] = json.loads((self.bundle / "config.json").read_text())["process"]
        return process

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.process["env"])

    def files(self, under: str) -> dict[str, bytes]:
        """Every regular file below the in-image directory ``under``, by in-image path."""
        root = self.rootfs / under.lstrip("/")
        return {
            "/" + str(p.relative_to(self.rootfs)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }

    def run(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The image's command, run with this Python from ``rootfs/<workdir>``, env as in the image.

        ``python`` becomes this interpreter and each PYTHONPATH entry is moved under the rootfs.
        """
        args = list(self.process["args"])
        if args[0] in ("python", "python3"):
            args[0] = sys.executable
        image_env = self.env
        pythonpath = [str(self.rootfs) + p for p in image_env.get("PYTHONPATH", "").split(":") if p]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "OCIBUILD_RUNTIME": image_env.get("OCIBUILD_RUNTIME", ""),
            "FAIRING_RUNTIME": image_env.get("FAIRING_RUNTIME", ""),
            "PYTHONPATH": ":".join(pythonpath),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        cwd = self.rootfs / self.process["cwd"].lstrip("/")
        return subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )


def unpack(ref: str, dest: Path) -> Unpacked:
    """Unpack ``oci:DIR:TAG[@digest]`` or a registry reference (copied to a layout first)."""
    dest.mkdir(parents=True, exist_ok=True)
    if ref.startswith("oci:"):
        layout, _, tag = ref[len("oci:") :].split("@")[0].partition(":")
    else:
        name, _, digest = ref.partition("@")
        repo = re.sub(r":[^/:]+$", "", name)  # containers/image refuses a tag and a digest together
        layout, tag = str(dest / "layout"), "copied"
        skopeo_copy(
            f"docker://{repo}@{digest}" if digest else f"docker://{name}", f"oci:{layout}:{tag}"
        )
    umoci_unpack(layout, tag, dest / "bundle")
    return Unpacked(dest / "bundle")


def child_env(**extra: str) -> dict[str, str]:
    """An environment for an ocibuild subprocess: this work tree first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCIBUILD_", "KUBE"))}
    paths = [extra.pop("PYTHONPATH", ""), str(REPO_ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


def ocibuild_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m ocibuild ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
