"""External tools the tests lean on (skopeo, umoci, ...), run so that failures are loud."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "APT_PACKAGES",
    "MissingToolError",
    "ToolError",
    "require",
    "run",
    "skopeo_copy",
    "skopeo_inspect",
    "umoci_unpack",
]

# Which Debian package provides each tool, so a missing one names its fix.
APT_PACKAGES: Mapping[str, str] = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "htpasswd": "apache2-utils",
    "busybox": "busybox-static",
}

_SECRET_FLAGS = frozenset({"--creds", "--src-creds", "--dest-creds"})


class MissingToolError(RuntimeError):
    """A tool the tests need is not installed."""


class ToolError(RuntimeError):
    """A tool ran and failed; the message carries its stderr."""


def require(tool: str) -> str:
    """Return the path of `tool`, or raise naming the apt package that provides it."""
    path = shutil.which(tool)
    if path is None:
        package = APT_PACKAGES.get(tool, tool)
        raise MissingToolError(
            f"{tool} is not installed; the tests need it: run `apt-get install -y {package}`"
        )
    return path


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run `cmd`; raise ToolError with its stderr if it fails."""
    argv = [os.fspath(arg) for arg in cmd]
    if os.sep not in argv[0]:
        argv[0] = require(argv[0])
    proc = subprocess.run(
        argv, input=input, capture_output=True, env=env, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise ToolError(f"`{_redacted(argv)}` exited with {proc.returncode}: {stderr}")
    return proc


def skopeo_inspect(
    ref: str,
    *,
    raw: bool = False,
    config: bool = False,
    tls_verify: bool = False,
    creds: str | None = None,
    cert_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """`skopeo inspect` a transport reference: bytes with `raw`, else the parsed JSON."""
    argv = ["skopeo", "inspect", "--authfile", str(_empty_authfile())]
    if raw:
        argv.append("--raw")
    if config:
        argv.append("--config")
    if ref.startswith("docker://"):
        argv.append(f"--tls-verify={str(tls_verify).lower()}")
        argv += _registry_flags("", creds, cert_dir)
    out = run([*argv, ref]).stdout
    return out if raw else json.loads(out)


def skopeo_copy(
    src: str,
    dst: str,
    *,
    tls_verify: bool = False,
    creds: str | None = None,
    cert_dir: str | os.PathLike[str] | None = None,
    format: str | None = None,
    all_images: bool = False,
) -> str:
    """`skopeo copy` src to dst; return the digest of the manifest written to dst.

    `tls_verify`, `creds` and `cert_dir` apply to whichever side is a `docker://` reference.
    `format` is skopeo's `--format` (`oci`, `v2s2`); `all_images` copies every image of a list.
    """
    with tempfile.TemporaryDirectory(prefix="skopeo-") as tmp:
        digest_file = Path(tmp) / "digest"
        argv = [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--quiet",
            "--authfile",
            str(_empty_authfile()),
            "--digestfile",
            str(digest_file),
        ]
        for side, ref in (("src", src), ("dest", dst)):
            if ref.startswith("docker://"):
                argv.append(f"--{side}-tls-verify={str(tls_verify).lower()}")
                argv += _registry_flags(f"{side}-", creds, cert_dir)
        if format is not None:
            argv += ["--format", format]
        if all_images:
            argv.append("--all")
        run([*argv, src, dst])
        return digest_file.read_text().strip()


def umoci_unpack(
    layout_dir: str | os.PathLike[str], tag: str, bundle_dir: str | os.PathLike[str]
) -> Path:
    """Unpack `layout_dir:tag` rootless into `bundle_dir`; return the rootfs path."""
    run(["umoci", "unpack", "--rootless", "--image", f"{os.fspath(layout_dir)}:{tag}", bundle_dir])
    return Path(bundle_dir) / "rootfs"


def _registry_flags(
    prefix: str, creds: str | None, cert_dir: str | os.PathLike[str] | None
) -> list[str]:
    flags = []
    if creds is not None:
        flags += [f"--{prefix}creds", creds]
    if cert_dir is not None:
        flags += [f"--{prefix}cert-dir", os.fspath(cert_dir)]
    return flags


@functools.cache
def _empty_authfile() -> Path:
    # skopeo otherwise reads the user's own auth files (docker config, containers auth.json),
    # which would make the tests depend on the machine they run on.
    directory = tempfile.mkdtemp(prefix="ocibuild-tests-auth-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "auth.json"
    path.write_text('{"auths": {}}')
    return path


def _redacted(argv: Sequence[str]) -> str:
    shown = ["***" if i > 0 and argv[i - 1] in _SECRET_FLAGS else arg for i, arg in enumerate(argv)]
    return shlex.join(shown)
