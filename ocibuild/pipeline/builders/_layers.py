"""From a build context to layers and image config: dependencies first, then code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ...layer import FileTreeLayer, LayerCache, LayerOptions, Source
from .._context import RUNTIME_DIR, RUNTIME_ENV, SITE_PACKAGES, BuildContext
from ._deps import PythonTarget, install_requirements

__all__ = ["code_layer", "dependency_layer", "image_env"]

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's


def code_layer(
    context: BuildContext, options: LayerOptions, cache: LayerCache | None
) -> FileTreeLayer:
    """One layer with every file of the context; generated files are never written to disk."""
    sources: list[Source] = []
    extra: dict[str, tuple[bytes, int]] = {}
    for dest, item in context.files.items():
        if isinstance(item.source, bytes):
            extra[dest] = (item.source, item.mode if item.mode is not None else 0o644)
        elif item.mode is not None and item.source.is_file():
            # A forced mode (runtime files) is only possible for bytes; these files are tiny.
            extra[dest] = (item.source.read_bytes(), item.mode)
        else:
            sources.append(Source(item.source, dest))
    return FileTreeLayer(sources, options, cache=cache, extra_files=extra)


def dependency_layer(
    context: BuildContext,
    target: PythonTarget,
    options: LayerOptions,
    cache: LayerCache | None,
    *,
    cache_dir: Path,
    pip_args: Sequence[str] = (),
) -> tuple[FileTreeLayer, bool] | None:
    """The installed requirements as a layer at SITE_PACKAGES, and whether it has ``bin/``."""
    requirements = context.requirements
    if requirements is None or requirements.is_empty():
        return None
    site = install_requirements(requirements, target, cache_dir=cache_dir, pip_args=pip_args)
    # Excludes and ignore files are about the user's code, not about installed wheels.
    deps_options = replace(options, excludes=(), ignore_file=None)
    layer = FileTreeLayer([Source(site, SITE_PACKAGES)], deps_options, cache=cache)
    return layer, (site / "bin").is_dir()


def image_env(
    base_env: Mapping[str, str], context: BuildContext, *, deps: bool, deps_bin: bool
) -> dict[str, str]:
    """The env the appended image sets: runtime markers, PYTHONPATH, PATH, the context's env."""
    paths = [RUNTIME_DIR, *([SITE_PACKAGES] if deps else [])]
    if base_env.get("PYTHONPATH"):
        paths.append(base_env["PYTHONPATH"])
    env = {**RUNTIME_ENV, "PYTHONPATH": ":".join(paths)}
    if deps_bin:
        base_path = base_env.get("PATH") or _DEFAULT_PATH
        env["PATH"] = f"{SITE_PACKAGES}/bin:{base_path}"
    env.update(context.env)
    return env
