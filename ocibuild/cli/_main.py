"""The ``ocibuild`` command line.

Importing this module stays cheap (argparse only); each command imports what it uses.
User mistakes end as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._completion import add_completion_command
from ._examples import add_examples
from ._options import (
    UsageError,
    add_destination,
    add_image_options,
    add_progress_options,
    add_registry_options,
    config_changes,
    count_value,
    days_value,
    layer_options,
    one_platform_value,
    parse_pairs,
    platform_value,
    progress_for,
    registry_options,
    run_command,
)
from ._pipeline import add_pipeline_commands
from ._results import add_result_options, extra_tags, report_result
from ._verbs import add_verb_commands

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader left


def cmd_append(args: argparse.Namespace) -> int:
    from ..image._image import load
    from ..image._write import write
    from ..layer import FileTreeLayer, LayerCache
    from ..transports._base import phase

    if not args.sources and not args.tarball:
        raise UsageError(
            "nothing to append: give SRC[:DEST] paths and/or --tarball FILE "
            "(to change only the config or annotations, use ocibuild mutate)"
        )
    options = layer_options(args)
    changes = config_changes(args)
    annotations = parse_pairs(args.annotation, "annotation")
    reg = registry_options(args, args.base, args.to)
    tags = extra_tags(args, args.to)
    cache = None if args.no_cache else LayerCache()

    layers: list[Any] = []
    if args.tarball:
        from ..layer import TarballLayer  # the tarball reader loads only for a tarball

        layers += [
            TarballLayer(path, compression=args.compression, level=args.level, strict=args.strict)
            for path in args.tarball
        ]
    if args.sources:
        layers.append(FileTreeLayer(args.sources, options, cache=cache))

    progress = progress_for(args, "appending")
    with phase(progress, "resolve base") as step:
        loaded = load(args.base, platform=args.platform, registry_options=reg)
        step.detail = args.base
    created_by = "ocibuild append " + " ".join(
        [*(f"--tarball {t}" for t in args.tarball), *args.sources]
    )
    images = []
    for image in loaded.images:
        image = image.append(*layers, created_by=created_by).with_config(changes)
        if annotations:
            image = image.with_annotations(annotations)
        images.append(image)

    result = write(
        images,
        args.to,
        registry_options=reg,
        progress=progress,
        as_index=len(images) > 1 or (loaded.is_index and _several(args.platform)),
        extra_tags=tags,
        base_annotations=not args.no_base_annotations,
    )
    report_result(args, result, progress)
    return 0


def _several(platform: str | None) -> bool:
    """Whether ``--platform`` asked for all or a list: an index stays one, even of one entry."""
    return platform is not None and (platform.strip() == "all" or "," in platform)


def cmd_copy(args: argparse.Namespace) -> int:
    from ..image._copy import copy

    tags = extra_tags(args, args.dest)
    progress = progress_for(args, "copying")
    result = copy(
        args.src,
        args.dest,
        platform=args.platform,
        registry_options=registry_options(args, args.src, args.dest),
        progress=progress,
        extra_tags=tags,
    )
    report_result(args, result, progress)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..image._inspect import inspect

    report = inspect(
        args.ref, platform=args.platform, registry_options=registry_options(args, args.ref)
    )
    if args.raw:
        sys.stdout.write(report.manifest_bytes.decode("utf-8") + "\n")
    elif args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.human())
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from ..transports.registry import login

    if not args.username:
        raise UsageError("login needs --username")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask for the password: use --password-stdin")
        password = getpass.getpass("Password: ")
    args.password_stdin = False
    username, args.username = args.username, None
    where = login(args.registry, username, password, registry_options(args))
    print(f"Login succeeded: credentials for {args.registry} stored in {where}")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from ..transports.registry import logout

    if logout(args.registry, registry_options(args)):
        print(f"Removed credentials for {args.registry}")
    else:
        print(f"No stored credentials for {args.registry}")
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    from ..layer import LayerCache
    from ..pipeline.builders._deps import prune_dependencies

    cache = LayerCache()
    older_than = None if args.older_than_days is None else args.older_than_days * 86400
    keep = None if args.keep is None and older_than is not None else (args.keep or 0)
    layers = cache.prune(max_entries=keep, older_than=older_than)
    deps = prune_dependencies(cache.root, keep=keep, older_than=older_than)
    print(f"removed {layers} layer entries and {deps} dependency trees from {cache.root}")
    return 0


# -- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="ocibuild",
        description="Build OCI images from files and Python code without a Docker daemon.",
    )
    parser.add_argument("--version", action="version", version=f"ocibuild {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "append",
        help="append files as a layer on a base image and write it",
        description="Append SRC[:DEST] paths (one layer) and --tarball layers to a "
        "base image, and write the result to --to.",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SRC[:DEST]",
        help="file or directory, placed at DEST in the image (default /BASENAME); "
        "a directory's contents go under DEST",
    )
    add_destination(p)
    p.add_argument(
        "--tarball",
        "-f",
        action="append",
        default=[],
        metavar="FILE",
        help="an existing layer tarball (plain, gzip or zstd), one layer each; its members "
        "are passed through as given (see --tarball-strict)",
    )
    p.add_argument(
        "--tarball-strict",
        dest="strict",
        action="store_true",
        help="refuse --tarball members that reach outside the image root or are more than "
        "files, directories and links: absolute or '..' paths, hard links to them, symlinks "
        "whose relative target climbs above the root (absolute targets are kept: runtimes "
        "resolve them inside the container), members beneath a symlink of the same tarball, "
        "devices, FIFOs and setuid/setgid files; checked as the layer streams, nothing is "
        "written",
    )
    add_image_options(p)
    add_registry_options(p)
    add_progress_options(p)
    add_result_options(p)
    p.set_defaults(func=cmd_append)

    p = sub.add_parser(
        "copy", help="copy an image between registries, layouts, archives and engines"
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.add_argument(
        "--platform",
        type=platform_value,
        metavar="OS/ARCH[/VARIANT][,...]|all",
        help="copy one platform of an index, or a comma list of them as a new index "
        "(default: all of it)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_registry_options(p)
    add_progress_options(p)
    add_result_options(p)
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser("inspect", help="show an image's manifest and config")
    p.add_argument("ref", metavar="REF")
    p.add_argument(
        "--platform",
        type=one_platform_value,
        metavar="OS/ARCH[/VARIANT]",
        help="for an index, show this platform's image",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="manifest and config as JSON")
    fmt.add_argument("--raw", action="store_true", help="the manifest bytes as stored")
    add_registry_options(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("login", help="store credentials for a registry")
    p.add_argument("registry", metavar="REGISTRY")
    add_registry_options(p)
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", help="erase stored credentials for a registry")
    p.add_argument("registry", metavar="REGISTRY")
    p.add_argument("--authfile", metavar="FILE", help="the auth JSON to erase them from")
    p.set_defaults(func=cmd_logout)

    p = sub.add_parser("cache", help="manage the layer cache")
    cache_sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    prune = cache_sub.add_parser("prune", help="remove old layer cache entries")
    prune.add_argument(
        "--keep",
        type=count_value,
        default=None,
        metavar="N",
        help="keep the N most recently used entries (default: remove all)",
    )
    prune.add_argument(
        "--older-than-days",
        type=days_value,
        metavar="DAYS",
        help="only remove entries unused for this many days",
    )
    prune.set_defaults(func=cmd_cache_prune)

    add_pipeline_commands(sub)
    add_verb_commands(sub)
    add_completion_command(sub, parser)  # last: its scripts list every command added before it
    add_examples(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _show_warnings()  # after parsing: `--help` and usage errors need no logging
    if getattr(args, "verbose", False):
        _trace_http()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        status = run_command(func, args)
        sys.stdout.flush()  # inside the try: a reader that left is seen here, not at exit
        return status
    except KeyboardInterrupt:
        print("ocibuild: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`ocibuild inspect REF | head -1`): end quietly, as
        # other Unix tools do. What is still buffered goes nowhere, not to a second error.
        _drop_stdout()
        return EXIT_PIPE_CLOSED
    except UsageError as err:
        parser.exit(EXIT_USAGE, f"ocibuild: error: {err}\n")
    except Exception as err:
        message = _one_line(err)
        if message is None or os.environ.get("OCIBUILD_DEBUG"):
            raise
        print(f"ocibuild: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no stdout file to point anywhere
        pass


def _show_warnings() -> None:
    """ocibuild's warnings reach stderr once each, one line, whoever logged them."""
    import logging

    from ._logs import OneLineFormatter

    logger = logging.getLogger("ocibuild")
    if not any(isinstance(h.formatter, OneLineFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(OneLineFormatter())
        handler.setLevel(logging.DEBUG if os.environ.get("OCIBUILD_DEBUG") else logging.WARNING)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if os.environ.get("OCIBUILD_DEBUG") else logging.INFO)
    logger.propagate = False


def _trace_http() -> None:
    """``-v``: the registry client's line per HTTP request (``ocibuild.http``) on stderr."""
    import logging

    from ._logs import OneLineFormatter

    logger = logging.getLogger("ocibuild.http")
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # once, even when OCIBUILD_DEBUG shows the ocibuild logger's


def _one_line(err: BaseException) -> str | None:
    """The one-line message for errors users cause; ``None`` for bugs (shown with a traceback)."""
    from .._errors import OCIBuildError

    if isinstance(err, OCIBuildError):
        # the command line's own wording, where the library's speaks Python
        text = getattr(err, "flags", None) or str(err)
        return text.splitlines()[0] if text else type(err).__name__
    if isinstance(err, OSError):
        where = f" {err.filename!r}" if err.filename else ""
        return f"{err.strerror or err}{':' if where else ''}{where}"
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
