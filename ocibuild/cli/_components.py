"""``--preprocessor-option`` and ``--builder-option``, and the pipeline's advice in flags.

``K=V`` values are typed by the factory's annotations, through the same code as
``--deployer-option`` (:mod:`._convert`): ``pip_args='["--find-links=wheels"]'`` becomes a
list, ``push=no`` a bool. An option that has a flag of its own (``base_image``: ``--base``)
is refused, so each option has one spelling on the command line. Pipeline errors whose
advice names Python parameters (``executable=``) are shown with the flags instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._convert import Parameters
from ._options import UsageError, parse_pairs

__all__ = [
    "BUILDER_FLAGS",
    "PREPROCESSOR_FLAGS",
    "check_command",
    "component_options",
    "executable_in",
]

# option -> the flag (or argument) that sets it
PREPROCESSOR_FLAGS: Mapping[str, str] = {
    "input_files": "TARGET and --input",
    "notebook_file": "TARGET",
    "function_obj": "TARGET",
    "requirements": "--requirements",
    "executable": "--executable",
    "command": "--command",
    "path_prefix": "--path-prefix",
}
BUILDER_FLAGS: Mapping[str, str] = {
    "preprocessor": "TARGET and --preprocessor",
    "base_image": "--base",
    "platform": "--platform",
    "python_version": "--python-version",
    "layer_options": "--compression, --level and --mtime",
    "excludes": "--exclude",
    "ignore_file": "--ignore-file",
    "config": "--entrypoint, --cmd, --env, --workdir and --user",
    "labels": "--label",
    "annotations": "--annotation",
    "registry_options": "--username, --authfile, --insecure-registry and --ca-file",
    "cache": "--no-cache",
    "no_cache": "--no-cache",
    "to": "--to",
    "registry": "--registry",
    "image_name": "--image-name",
    "tag": "--tag",
    "dockerfile": "--dockerfile",
    "context_dir": "TARGET with --dockerfile",
    "build_args": "--build-arg",
    "target": "--target",
    "pull": "--pull",
    "network": "--network",
    "dry_run": "--dry-run",
}


def component_options(
    params: Parameters, values: Sequence[str], what: str, flags: Mapping[str, str]
) -> dict[str, Any]:
    """``--WHAT K=V`` values typed for the factory; one :class:`UsageError` for a bad one."""
    pairs = parse_pairs(values, what)
    for name in pairs:
        if name in flags and params.takes(name):
            raise UsageError(f"--{what} {name}: give it as {flags[name]}")
    return params.convert(pairs, what)


def executable_in(target: str, executable: str) -> str:
    """``--executable`` of a directory TARGET: a relative path names a file in TARGET.

    A path from the current directory into TARGET (the spelling before this rule) still
    works when TARGET holds no file of that path.
    """
    root = Path(target)
    inside = root / executable
    if inside.is_file():
        return str(inside)
    given = Path(executable)
    if given.is_file() and given.resolve().is_relative_to(root.resolve()):
        return executable
    raise UsageError(
        f"--executable {executable}: no such file in {target} (a relative --executable is a "
        "path in the TARGET directory)"
    )


def check_command(preprocessor: Any) -> None:
    """Before any pull: a python preprocessor that cannot tell what to run is a usage error."""
    from ..pipeline._errors import PipelineError
    from ..pipeline.preprocessors import PythonPreprocessor

    if not isinstance(preprocessor, PythonPreprocessor):
        return
    try:
        preprocessor.get_command()
    except PipelineError as err:
        if err.flags is None:
            raise
        raise UsageError(err.flags) from None
