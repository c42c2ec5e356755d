"""Dependency layers without a daemon: requirements -> wheels for the image's platform -> a layer.

pip resolves and installs wheels for the *image* (not this machine) with ``--target``,
``--platform``, ``--python-version``, ``--implementation cp`` and ``--only-binary=:all:``. The
installed tree is cached under ``<cache>/deps/<key>``, where the key hashes the requirements
text (with ``-r``/``-c`` files), the target and pip's index settings, so a code change never
reruns pip; the layer cache then makes the layer itself a stat walk. Console scripts in
``bin/`` get a ``#!/usr/bin/env python3`` line (pip writes this machine's interpreter there).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...oci import Platform
from .._errors import DependencyError
from .._requirements import Requirements

__all__ = [
    "PythonTarget",
    "install_requirements",
    "pip_platform_tags",
    "python_version_from_env",
]

_log = logging.getLogger("ocibuild.deps")
CACHE_FORMAT = 1
_DONE = "ocibuild-deps.json"

_ARCH = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "386": "i686",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "arm": "armv7l",
}
_LEGACY_MANYLINUX = {
    "x86_64": ("manylinux1", "manylinux2010"),
    "i686": ("manylinux1", "manylinux2010"),
}
_MAX_GLIBC_MINOR = 28  # Debian 10+, RHEL 8+, Ubuntu 20.04+: the bases people use today
_NO_WHEEL = re.compile(r"No matching distribution found for ([^\s;]+)")
_PIP_SETTINGS = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_CONSTRAINT",
    "PIP_NO_INDEX",
    "PIP_PRE",
    "PIP_CONFIG_FILE",
)


@dataclass(frozen=True)
class PythonTarget:
    """The interpreter wheels are chosen for: platform, ``X.Y`` and implementation."""

    platform: Platform
    python_version: str
    implementation: str = "cp"
    platform_tags: tuple[str, ...] = ()  # empty: derived from the platform

    def tags(self) -> tuple[str, ...]:
        """The ``--platform`` values given to pip."""
        return self.platform_tags or pip_platform_tags(self.platform)

    def describe(self) -> str:
        """E.g. ``linux/amd64, CPython 3.11``."""
        p = self.platform
        name = f"{p.os}/{p.architecture}" + (f"/{p.variant}" if p.variant else "")
        impl = "CPython" if self.implementation == "cp" else self.implementation
        return f"{name}, {impl} {self.python_version}"


def pip_platform_tags(platform: Platform) -> tuple[str, ...]:
    """Wheel platform tags a glibc Linux image of ``platform`` can load (glibc 2.17 to 2.28)."""
    arch = _ARCH.get(platform.architecture)
    if platform.os != "linux" or arch is None:
        where = f"no wheel platform tags for {platform.os}/{platform.architecture}"
        raise DependencyError(
            f"{where}: pass platform_tags=[...] (pip --platform values), or build with the "
            'docker builder (builder="docker")',
            flags=f"{where}: give --builder-option platform_tags='[...]' (pip --platform "
            "values), or build with --builder docker",
        )
    if arch == "armv7l" and platform.variant not in (None, "v7"):
        raise DependencyError(f"no wheel platform tags for linux/arm/{platform.variant}")
    low = 5 if arch in ("x86_64", "i686") else 17
    tags = [*_LEGACY_MANYLINUX.get(arch, ()), "manylinux2014"]
    tags += [f"manylinux_2_{minor}" for minor in range(low, _MAX_GLIBC_MINOR + 1)]
    return (*(f"{tag}_{arch}" for tag in tags), f"linux_{arch}")


def python_version_from_env(env: Mapping[str, str]) -> str | None:
    """``X.Y`` from ``PYTHON_VERSION`` as the official python images set it (``3.11.9``)."""
    match = re.match(r"^\s*(\d+)\.(\d+)", env.get("PYTHON_VERSION", ""))
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _pip_settings() -> dict[str, str]:
    """Index settings that change what pip resolves: PIP_* variables and pip config files."""
    settings = {name: os.environ[name] for name in _PIP_SETTINGS if name in os.environ}
    config_files = [
        os.environ.get("PIP_CONFIG_FILE", ""),
        "/etc/pip.conf",
        "/etc/xdg/pip/pip.conf",
        os.path.expanduser("~/.config/pip/pip.conf"),
        os.path.expanduser("~/.pip/pip.conf"),
        os.path.join(sys.prefix, "pip.conf"),
    ]
    for path in filter(None, config_files):
        try:
            settings[path] = Path(path).read_text(encoding="utf-8")
        except OSError:
            continue
    return settings


def cache_key(requirements: Requirements, target: PythonTarget, pip_args: Sequence[str]) -> str:
    """The dependency cache key: what pip would install, for which interpreter, from where."""
    material = {
        "format": CACHE_FORMAT,
        "requirements": requirements.fingerprint_text(),
        "tags": list(target.tags()),
        "python": target.python_version,
        "implementation": target.implementation,
        "pip_args": list(pip_args),
        "pip_settings": _pip_settings(),
    }
    blob = json.dumps(material, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def install_requirements(
    requirements: Requirements,
    target: PythonTarget,
    *,
    cache_dir: Path,
    pip_args: Sequence[str] = (),
) -> Path:
    """The directory holding the installed wheels (pip runs only on a cache miss)."""
    key = cache_key(requirements, target, pip_args)
    entry = cache_dir / "deps" / key
    if (entry / _DONE).is_file():
        _log.info("dependency layer: reusing %s (no pip run) for %s", entry, target.describe())
        with contextlib.suppress(OSError):
            os.utime(entry / _DONE)  # marks the entry as used, for `ocibuild cache prune`
        return entry / "site-packages"
    entry.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:12]}-", dir=entry.parent))
    try:
        _log.info(
            "dependency layer: running pip for %s (%s)", target.describe(), requirements.origin
        )
        _run_pip(requirements, target, work, pip_args)
        _fix_scripts(work / "site-packages" / "bin")
        record = {
            "requirements": requirements.origin,
            "target": target.describe(),
            "tags": list(target.tags()),
        }
        (work / _DONE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        try:
            os.replace(work, entry)
        except OSError:
            if not (entry / _DONE).is_file():  # not another build winning the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return entry / "site-packages"


def prune_dependencies(
    cache_dir: Path, *, keep: int | None = None, older_than: float | None = None
) -> int:
    """Remove installed dependency trees unused for ``older_than`` seconds, then all but the
    ``keep`` most recently used; returns how many were removed."""
    root = cache_dir / "deps"
    try:
        entries = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    now = time.time()
    used: list[tuple[float, str]] = []
    for entry in entries:
        try:
            used.append((os.stat(Path(entry.path) / _DONE).st_mtime, entry.path))
        except OSError:
            used.append((0.0, entry.path))  # unfinished (a build that died): always removable
    used.sort(reverse=True)
    doomed = {path for mtime, path in used if older_than is not None and now - mtime > older_than}
    if keep is not None:
        doomed.update(path for _, path in used[keep:])
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return len(doomed)


def _run_pip(
    requirements: Requirements, target: PythonTarget, work: Path, pip_args: Sequence[str]
) -> None:
    if requirements.path is not None:
        source = ["-r", str(requirements.path)]
    else:
        listed = work / "requirements.txt"
        listed.write_text("\n".join(requirements.lines) + "\n", encoding="utf-8")
        source = ["-r", str(listed)]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(work / "site-packages"),
        *(arg for tag in target.tags() for arg in ("--platform", tag)),
        "--python-version",
        target.python_version,
        "--implementation",
        target.implementation,
        "--only-binary=:all:",
        # Compiled .pyc files embed source mtimes: leave them out so the layer is reproducible.
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        *pip_args,
        *source,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    (work / "pip.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise _pip_error(proc.returncode, proc.stdout + proc.stderr, requirements, target)


def _pip_error(
    status: int, output: str, requirements: Requirements, target: PythonTarget
) -> DependencyError:
    """One line that names the package and says what to do."""
    missing = _NO_WHEEL.findall(output)
    if missing:
        return _no_wheel(missing[-1], requirements, target)
    if "No module named pip" in output:
        return DependencyError(f"pip is not installed for {sys.executable}: python -m ensurepip")
    errors = [line.strip() for line in output.splitlines() if line.startswith("ERROR:")]
    last = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1]
    return DependencyError(
        f"pip could not install the requirements from {requirements.origin} for "
        f"{target.describe()} (exit {status}): {last}"
    )


def _no_wheel(package: str, requirements: Requirements, target: PythonTarget) -> DependencyError:
    """What can be done when pip found no wheel: each way named as the library and the CLI
    spell it (the append builder installs wheels only, and the base's packages count)."""
    name = re.split(r"[\s\[<>=!~;@]", package, maxsplit=1)[0]
    where = f"no wheel of {package} for {target.describe()} (from {requirements.origin})"
    docker = "which runs pip in the image and can build from source"
    return DependencyError(
        f"{where}: the append builder installs wheels only; pin a version that has a wheel, "
        'add a wheelhouse of wheels built for the image (pip_args=["--find-links=DIR"]), '
        f"use a base_image that has {name} installed and drop it from the requirements, or "
        f'build with the docker builder (builder="docker"), {docker}',
        flags=f"{where}: the append builder installs wheels only; pin a version that has a "
        "wheel, add a wheelhouse of wheels built for the image (--builder-option "
        f"pip_args='[\"--find-links=DIR\"]'), use a --base that has {name} installed and "
        f"drop it from the requirements, or build with --builder docker, {docker}",
    )


def _fix_scripts(bin_dir: Path) -> None:
    """Point console scripts at the image's python3 instead of this machine's interpreter."""
    if not bin_dir.is_dir():
        return
    for script in sorted(bin_dir.iterdir()):
        if not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(b"#!") and b"python" in data.split(b"\n", 1)[0]:
            rest = data.split(b"\n", 1)[1] if b"\n" in data else b""
            script.write_bytes(b"#!/usr/bin/env python3\n" + rest)
