"""The pipeline's sub-commands: ``build``, ``run``, ``deploy`` and ``plugins``.

``ocibuild build TARGET --to REF`` preprocesses TARGET (a file, a directory, a notebook) and
appends it to ``--base`` (default ``python:X.Y-slim`` for this Python) with the append
builder, or builds it with another (``--builder docker``: a Dockerfile built by the engine;
``--dockerfile FILE`` builds the user's own with TARGET as its context directory); ``ocibuild
run TARGET --deployer NAME`` builds the same way and deploys; ``ocibuild
deploy IMAGE`` deploys an image that exists (:mod:`._deploy`); ``ocibuild plugins`` lists
installed plugins and the names they provide.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._deploy import add_deploy_command, add_deployer_options
from ._options import (
    Once,
    UsageError,
    add_destination,
    add_image_options,
    add_registry_options,
    info_lines,
)

__all__ = ["REPO_ENV", "add_pipeline_commands"]

# Where `run` pushes when neither --to nor --registry says (as KO_DOCKER_REPO is for ko).
REPO_ENV = "OCIBUILD_REPO"


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
    p.add_argument(
        "--dry-run",
        action="store_true",
        dest="dry_run_build",
        help="print the Dockerfile and the build context's files, and build nothing "
        "(docker builder)",
    )
    p.set_defaults(func=cmd_build)

    p = subparsers.add_parser(
        "run",
        help="build TARGET and deploy it (job, local, or a plugin's deployer)",
        description="Build TARGET like 'ocibuild build' and deploy the image with --deployer.",
    )
    _add_build_arguments(p)
    dest = p.add_argument_group("destination (one of)")
    dest.add_argument("--to", "-t", action=Once, metavar="REF", help="write the image exactly here")
    dest.add_argument(
        "--registry",
        metavar="HOST[/NAMESPACE]",
        help="push to REGISTRY/IMAGE_NAME:TAG (tag derived from the content); default "
        f"${REPO_ENV} when --to is not given either",
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
    _add_builder_options(p)
    add_image_options(p)
    add_registry_options(p)
    # Python code needs a Python base: scratch (the append default) is never right here.
    # (the same default as builders.append.default_base_image, without importing the builder)
    p.set_defaults(base="python:{}.{}-slim".format(*sys.version_info[:2]))


def _add_builder_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "builder",
        "each option goes to a builder that takes it; --platform, --label and "
        "--no-cache reach the docker builder too",
    )
    group.add_argument(
        "--builder",
        default="append",
        metavar="NAME",
        help="append (layers appended to --base, no daemon), docker (a Dockerfile built by a "
        "Docker-compatible engine: DOCKER_HOST or the docker context), or a plugin's "
        "(default: append)",
    )
    group.add_argument(
        "--dockerfile",
        metavar="FILE",
        help="build this Dockerfile, with TARGET as its context directory (docker builder)",
    )
    group.add_argument(
        "--build-arg", action="append", default=[], metavar="K=V", help="a Dockerfile ARG"
    )
    group.add_argument(
        "--target", dest="build_target", metavar="STAGE", help="the Dockerfile stage to build"
    )
    group.add_argument("--pull", action="store_true", help="pull the base even if present")
    group.add_argument("--network", metavar="MODE", help="the RUN steps' network: host, none")


def _preprocessor(args: argparse.Namespace) -> Any:
    from ..pipeline._run import create, target_options

    if getattr(args, "dockerfile", None):
        return None  # the Dockerfile says what goes in; TARGET is its context directory

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
    """The builder ``--builder`` names, given the options it takes; a flag given for an option
    it does not take is a usage error naming the builder (like the deployer flags)."""
    from ..pipeline._plugins import lookup
    from ..pipeline._run import create
    from ._convert import Parameters
    from ._options import config_changes, layer_options, parse_pairs, registry_options

    params = Parameters(lookup("builder", args.builder))
    options: dict[str, Any] = {}

    def offer(name: str, value: Any, *given: str) -> None:
        if params.takes(name):
            options[name] = value
        elif given:
            raise UsageError(
                f"{given[0]}: the builder {args.builder!r} has no {name!r} option "
                f"(its options: {', '.join(params.names) or 'none'})"
            )

    def flags(*pairs: tuple[str, Any]) -> list[str]:
        """The flags given (``--level 0`` is given; an empty list or mapping is not)."""
        return [
            flag
            for flag, value in pairs
            if value is not None
            and value is not False
            and not (isinstance(value, (str, list, dict)) and not value)
        ]

    offer("preprocessor", preprocessor)
    offer("base_image", args.base)
    offer("platform", args.platform, *flags(("--platform", args.platform)))
    offer("python_version", args.python_version, *flags(("--python-version", args.python_version)))
    layer_flags = flags(("--compression", args.compression != "gzip"), ("--level", args.level))
    layer_flags += flags(("--mtime", args.mtime))
    if params.takes("layer_options"):
        options["layer_options"] = layer_options(args)
    else:
        offer("layer_options", None, *layer_flags)
        offer("excludes", tuple(args.exclude), *flags(("--exclude", args.exclude)))
        if args.ignore_file:
            offer("ignore_file", args.ignore_file, "--ignore-file")
    config_flags = flags(
        *((f"--{name}", getattr(args, name)) for name in ("entrypoint", "cmd", "env", "workdir"))
    ) + flags(("--user", args.user))
    if params.takes("config"):
        options["config"] = config_changes(args)
    else:
        offer("config", None, *config_flags)
        offer("labels", parse_pairs(args.label, "label"), *flags(("--label", args.label)))
    annotations = parse_pairs(args.annotation, "annotation")
    offer("annotations", annotations, *flags(("--annotation", args.annotation)))
    access = flags(
        ("--username", args.username),
        ("--authfile", args.authfile),
        ("--insecure-registry", args.insecure_registry),
        ("--ca-file", args.ca_file),
    )
    if params.takes("registry_options") or access:
        offer("registry_options", registry_options(args), *access)
    if params.takes("cache"):
        options["cache"] = not args.no_cache
    else:
        offer("no_cache", args.no_cache, *flags(("--no-cache", args.no_cache)))
    for flag, name, value in (
        ("--dockerfile", "dockerfile", args.dockerfile),
        ("--build-arg", "build_args", parse_pairs(args.build_arg, "build-arg")),
        ("--target", "target", args.build_target),
        ("--pull", "pull", args.pull),
        ("--network", "network", args.network),
        ("--dry-run", "dry_run", getattr(args, "dry_run_build", False)),
    ):
        if flags((flag, value)):
            offer(name, value, flag)
    if args.dockerfile:
        offer("context_dir", args.target, "--dockerfile")
    options.update({k: v for k, v in dest.items() if v is not None})
    return create("builder", args.builder, options)


def cmd_build(args: argparse.Namespace) -> int:
    """``ocibuild build``: print the written reference (or the write as JSON)."""
    from ..pipeline._run import build_image

    builder = _builder(args, _preprocessor(args), to=args.to)
    with info_lines(args, "ocibuild.builders"):
        result = build_image(builder)
    if not args.dry_run_build:  # a dry run printed the Dockerfile and the context instead
        _print_build(args, result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``ocibuild run``: build, print the reference, deploy (see :mod:`._deploy`)."""
    from ..pipeline._run import build_image, deploy_image
    from ._deploy import choose_deployer, deploy_and_report

    if args.to and args.registry:
        raise UsageError("give one of --to REF and --registry HOST[/NAMESPACE], not both")
    if not args.to:
        args.registry = args.registry or _env_registry()
    choice = choose_deployer(args)  # before the build: a bad option costs no push
    builder = _builder(
        args,
        _preprocessor(args),
        to=args.to,
        registry=args.registry,
        image_name=args.image_name,
        tag=args.tag,
    )
    with info_lines(args, "ocibuild.builders"):
        result = build_image(builder)
    deploy_and_report(
        args, choice, result.image, lambda: deploy_image(choice.deployer, builder, result)
    )
    return 0


def _env_registry() -> str:
    """``$OCIBUILD_REPO``, the push target's default; a usage error when it is unset too."""
    import os

    value = os.environ.get(REPO_ENV, "").strip().rstrip("/")
    if not value:
        raise UsageError(
            f"say where the image goes: --to REF, --registry HOST[/NAMESPACE], or set ${REPO_ENV}"
        )
    return value


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
