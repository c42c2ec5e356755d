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
import contextlib
import json
import os
import sys
from typing import Any

from ._deploy import add_deploy_command, add_deployer_options
from ._options import (
    Once,
    UsageError,
    add_image_options,
    add_progress_options,
    add_registry_options,
    info_lines,
    parse_command,
    progress_for,
)
from ._results import add_result_options, check_output_options, write_result_files

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
        "--base and write the image to --to (or push it to --registry).",
    )
    _add_build_arguments(p)
    _add_push_target(p)
    add_result_options(p, tags=False)
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
    _add_push_target(p)
    add_result_options(p, tags=False)
    add_deployer_options(p)
    p.set_defaults(func=cmd_run)

    add_deploy_command(subparsers)

    p = subparsers.add_parser("plugins", help="list installed plugins and the names they provide")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_plugins)


def _add_push_target(p: argparse.ArgumentParser) -> None:
    dest = p.add_argument_group("destination (one of)")
    dest.add_argument(
        "--to",
        "-t",
        action=Once,
        metavar="REF",
        help="write the image exactly here: REGISTRY/REPO:TAG, oci:DIR[:TAG], "
        "docker-archive:FILE[:REF], docker-daemon:NAME[:TAG]",
    )
    dest.add_argument(
        "--registry",
        metavar="HOST[/NAMESPACE]",
        help="push to REGISTRY/IMAGE_NAME:TAG (tag derived from the content); default "
        f"${REPO_ENV} when --to is not given either",
    )
    p.add_argument("--image-name", default=None, metavar="NAME", help="default: ocibuild-job")
    p.add_argument("--tag", metavar="TAG", help="tag instead of the content-derived one")


def _check_push_target(args: argparse.Namespace) -> None:
    """One of ``--to`` and ``--registry``; neither means ``$OCIBUILD_REPO``."""
    if args.to and args.registry:
        raise UsageError("give one of --to REF and --registry HOST[/NAMESPACE], not both")
    if not args.to:
        args.registry = args.registry or _env_registry()


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
        "--executable",
        metavar="FILE",
        help="the script to run, when TARGET is a directory (a path in TARGET)",
    )
    group.add_argument(
        "--command",
        metavar="CMD",
        help="what runs the executable, a JSON array or shell words (default: python); "
        "without an executable, the whole command",
    )
    group.add_argument(
        "--preprocessor-option",
        action="append",
        default=[],
        metavar="K=V",
        help="a preprocessor parameter, typed by its annotations: overwrite=no, "
        'output_map=\'{"data.csv": "data/data.csv"}\' (JSON for lists and mappings)',
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
    add_progress_options(p)
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
        "Docker-compatible engine: DOCKER_HOST or the docker context), cluster (built by "
        "Kaniko or BuildKit in a Kubernetes Job), or a plugin's (default: append)",
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
    group.add_argument(
        "--builder-option",
        action="append",
        default=[],
        metavar="K=V",
        help="a builder parameter, typed by its annotations: "
        "pip_args='[\"--find-links=wheels\"]', push=no, buildkit=none; "
        "--builder cluster --builder-option context_source=s3 --builder-option bucket=B "
        "(JSON for lists and mappings)",
    )


def _preprocessor(args: argparse.Namespace) -> Any:
    """The preprocessor TARGET implies (or ``--preprocessor`` names), given the flags it takes;
    a flag given for an option it does not take is a usage error naming the preprocessor."""
    from ..pipeline._plugins import lookup
    from ..pipeline._run import create, target_options
    from ._components import PREPROCESSOR_FLAGS, check_command, component_options, executable_in
    from ._convert import Parameters

    if getattr(args, "dockerfile", None):
        return None  # the Dockerfile says what goes in; TARGET is its context directory

    name, options = target_options(args.target, args.preprocessor)
    params = Parameters(lookup("preprocessor", name))
    executable = args.executable
    if executable and os.path.isdir(args.target):
        executable = executable_in(args.target, executable)
    inputs = [*options.get("input_files", []), *args.input] if args.input else None
    for flag, option, value in (
        ("--requirements", "requirements", args.requirements),
        ("--input", "input_files", inputs),
        ("--executable", "executable", executable),
        ("--command", "command", parse_command(args.command, "command")),
        ("--path-prefix", "path_prefix", args.path_prefix),
    ):
        if not value:
            continue
        if not params.takes(option):
            raise UsageError(
                f"{flag}: the preprocessor {name!r} has no {option!r} option "
                f"(its options: {', '.join(params.names) or 'none'})"
            )
        options[option] = value
    given = args.preprocessor_option
    options.update(component_options(params, given, "preprocessor-option", PREPROCESSOR_FLAGS))
    preprocessor = create("preprocessor", name, options)
    check_command(preprocessor)
    return preprocessor


def _builder(args: argparse.Namespace, preprocessor: Any, progress: Any, **dest: Any) -> Any:
    """The builder ``--builder`` names, given the options it takes; a flag given for an option
    it does not take is a usage error naming the builder (like the deployer flags)."""
    from ..pipeline._plugins import lookup
    from ..pipeline._run import create
    from ._components import BUILDER_FLAGS, component_options
    from ._convert import Parameters
    from ._options import config_changes, layer_options, parse_pairs, registry_options

    params = Parameters(lookup("builder", args.builder))
    options = component_options(params, args.builder_option, "builder-option", BUILDER_FLAGS)

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
    if params.takes("progress"):
        options["progress"] = progress
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
    if args.no_base_annotations:
        offer("base_annotations", False, "--no-base-annotations")
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
    pairs = parse_pairs(getattr(args, "builder_option", []), "builder-option")
    options.update(params.convert(pairs, "builder-option"))
    return create("builder", args.builder, options)


def cmd_build(args: argparse.Namespace) -> int:
    """``ocibuild build``: print the written reference (or the write as JSON)."""
    _check_push_target(args)
    check_output_options(args)
    progress = progress_for(args, "building")
    _, result = _build(args, progress)
    if not args.dry_run_build:  # a dry run printed the Dockerfile and the context instead
        _print_build(args, result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``ocibuild run``: build, print the reference, deploy (see :mod:`._deploy`)."""
    from ..pipeline._run import deploy_image
    from ._deploy import choose_deployer, deploy_and_report

    _check_push_target(args)
    choice = choose_deployer(args)  # before the build: a bad option costs no push
    progress = progress_for(args, "building")
    builder, result = _build(args, progress)
    write_result_files(args, result.image, str(result.digest))
    deploy_and_report(
        args, choice, result.image, lambda: deploy_image(choice.deployer, builder, result)
    )
    return 0


def _build(args: argparse.Namespace, progress: Any) -> tuple[Any, Any]:
    """The builder the flags ask for, and what its build returned."""
    from ..pipeline._run import build_image

    builder = _builder(
        args,
        _preprocessor(args),
        progress,
        to=args.to,
        registry=args.registry,
        image_name=args.image_name,
        tag=args.tag,
    )
    with _builder_lines(args, builder, progress):
        result = build_image(builder)
    progress.close()
    return builder, result


def _builder_lines(args: argparse.Namespace, builder: Any, progress: Any) -> Any:
    """The builder's INFO lines on a terminal, unless it reports its steps to ``progress``."""
    if getattr(builder, "progress", None) is progress:
        return contextlib.nullcontext()
    progress.stop()  # the builder shows its own output (the docker builder's steps)
    return info_lines(args, "ocibuild.builders")


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
    write_result_files(args, result.image, str(result.digest))
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
