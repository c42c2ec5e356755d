"""The pipeline's sub-commands: ``build``, ``run``, ``deploy`` and ``plugins``.

``ocibuild build TARGET --to REF`` preprocesses TARGET (a file, a directory, a notebook) and
appends it to ``--base`` (default ``python:X.Y-slim`` for this Python) with the append
builder; ``ocibuild run TARGET --deployer NAME`` builds the same way and deploys; ``ocibuild
deploy IMAGE`` deploys an image that exists (:mod:`._deploy`); ``ocibuild plugins`` lists
installed plugins and the names they provide.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._deploy import add_deploy_command, add_deployer_options
from ._options import add_destination, add_image_options, add_registry_options

__all__ = ["add_pipeline_commands"]


def add_pipeline_commands(subparsers: Any) -> None:
    """Add ``build``, ``run``, ``deploy`` and ``plugins`` to the CLI's sub-command parsers."""
    p = subparsers.add_parser(
        "build",
        help="build a Python file, directory or notebook into an image",
        description="Preprocess TARGET (python, notebook, full_notebook, or a plugin's "
        "preprocessor), add its requirements as a dependency layer, append both to "
        "--base and write the image to --to.",
    )
    _add_build_arguments(p)
    add_destination(p)
    p.set_defaults(func=cmd_build)

    p = subparsers.add_parser(
        "run",
        help="build TARGET and deploy it (job, local, or a plugin's deployer)",
        description="Build TARGET like 'ocibuild build' and deploy the image with --deployer.",
    )
    _add_build_arguments(p)
    dest = p.add_argument_group("destination (one of)")
    dest.add_argument("--to", "-t", metavar="REF", help="write the image exactly here")
    dest.add_argument(
        "--registry",
        metavar="HOST[/NAMESPACE]",
        help="push to REGISTRY/IMAGE_NAME:TAG (tag derived from the content)",
    )
    p.add_argument("--image-name", default=None, metavar="NAME", help="default: ocibuild-job")
    p.add_argument("--tag", metavar="TAG", help="tag instead of the content-derived one")
    add_deployer_options(p)
    p.set_defaults(func=cmd_run)

    add_deploy_command(subparsers)

    p = subparsers.add_parser("plugins", help="list installed plugins and the names they provide")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_plugins)


def _add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="a .py file, a directory, or a .ipynb notebook")
    group = p.add_argument_group("pipeline")
    group.add_argument(
        "--preprocessor",
        "-p",
        metavar="NAME",
        help="python, notebook, full_notebook, or a plugin's "
        "(default: notebook for .ipynb, else python)",
    )
    group.add_argument(
        "--requirements",
        "-r",
        metavar="FILE",
        help="requirements.txt or pyproject.toml, installed as its own layer",
    )
    group.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH",
        help="more input files or directories (repeatable)",
    )
    group.add_argument(
        "--executable", metavar="FILE", help="the script to run, when TARGET is a directory"
    )
    group.add_argument("--path-prefix", metavar="DIR", help="work dir in the image (default /app/)")
    group.add_argument(
        "--python-version",
        metavar="X.Y",
        help="the image's Python, when the base has no PYTHON_VERSION env",
    )
    add_image_options(p)
    add_registry_options(p)
    # Python code needs a Python base: scratch (the append default) is never right here.
    # (the same default as builders.append.default_base_image, without importing the builder)
    p.set_defaults(base="python:{}.{}-slim".format(*sys.version_info[:2]))


def _preprocessor(args: argparse.Namespace) -> Any:
    from ..pipeline._run import create, target_options

    name, options = target_options(args.target, args.preprocessor)
    if args.requirements:
        options["requirements"] = args.requirements
    if args.input:
        options["input_files"] = [*options.get("input_files", []), *args.input]
    if args.executable:
        options["executable"] = args.executable
    if args.path_prefix:
        options["path_prefix"] = args.path_prefix
    return create("preprocessor", name, options)


def _builder(args: argparse.Namespace, preprocessor: Any, **dest: Any) -> Any:
    from ..pipeline._run import create
    from ._options import config_changes, layer_options, parse_pairs, registry_options

    options: dict[str, Any] = {
        "preprocessor": preprocessor,
        "base_image": args.base,
        "platform": args.platform,
        "python_version": args.python_version,
        "layer_options": layer_options(args),
        "config": config_changes(args),
        "annotations": parse_pairs(args.annotation, "annotation"),
        "registry_options": registry_options(args),
        "cache": not args.no_cache,
        **{k: v for k, v in dest.items() if v is not None},
    }
    return create("builder", "append", options)


def cmd_build(args: argparse.Namespace) -> int:
    """``ocibuild build``: print the written reference (or the write as JSON)."""
    from ..pipeline._run import build_image

    result = build_image(_builder(args, _preprocessor(args), to=args.to))
    _print_build(args, result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``ocibuild run``: build, print the reference, deploy (see :mod:`._deploy`)."""
    from ..pipeline._run import build_image, deploy_image
    from ._deploy import choose_deployer, deploy_and_report
    from ._options import UsageError

    if bool(args.to) == bool(args.registry):
        raise UsageError("give exactly one of --to REF and --registry HOST[/NAMESPACE]")
    choice = choose_deployer(args)  # before the build: a bad option costs no push
    builder = _builder(
        args,
        _preprocessor(args),
        to=args.to,
        registry=args.registry,
        image_name=args.image_name,
        tag=args.tag,
    )
    result = build_image(builder)
    deploy_and_report(
        args, choice, result.image, lambda: deploy_image(choice.deployer, builder, result)
    )
    return 0


def _print_build(args: argparse.Namespace, result: Any) -> None:
    if args.json and result.write is not None:
        print(json.dumps(result.write.to_dict(), indent=2), flush=True)
    else:
        print(result.image, flush=True)


def cmd_plugins(args: argparse.Namespace) -> int:
    """``ocibuild plugins``: every plugin, its distribution and version, and its names."""
    from ..pipeline._plugins import list_plugins

    plugins = list_plugins()
    if args.json:
        print(json.dumps([p.to_dict() for p in plugins], indent=2))
        return 0
    for plugin in plugins:
        print(f"{plugin.name}  ({plugin.distribution} {plugin.version})".rstrip())
        for kind, provided in plugin.provides.items():
            print(f"    {kind.replace('_', ' ')}s: {', '.join(provided)}")
    return 0
