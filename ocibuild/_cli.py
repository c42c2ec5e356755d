"""The ``ocibuild`` command line.

Importing this module stays cheap (argparse only); each command imports what it uses.
User mistakes end as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    """A bad option value found after argparse (exit status 2)."""


# -- shared options ----------------------------------------------------------------------


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """Options that say how to reach registries."""
    group = parser.add_argument_group("registry access")
    group.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain HTTP / unverified TLS for HOST[:PORT] (repeatable); "
        "loopback registries need no flag",
    )
    group.add_argument("--ca-file", metavar="PEM", help="extra CA bundle to trust")
    group.add_argument("--username", "-u", help="registry user name (with --password-stdin)")
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the registry password or token from stdin",
    )
    group.add_argument(
        "--authfile", metavar="FILE", help="docker/containers auth JSON to read credentials from"
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="blobs transferred at once (default 4)",
    )
    group.add_argument(
        "--retry-budget",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to keep retrying connection errors, 429 and 5xx (default 120)",
    )


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``append``, ``build`` and ``run``: base, layer format and config."""
    parser.add_argument(
        "--base",
        "-b",
        default="scratch",
        metavar="REF",
        help="base image: REGISTRY/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE[:REF] or "
        "scratch (default: %(default)s)",
    )
    parser.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]|all",
        help="platform to pick from a multi-platform base, or 'all'",
    )
    layer = parser.add_argument_group("layer")
    layer.add_argument("--compression", choices=("gzip", "zstd", "none"), default="gzip")
    layer.add_argument("--level", type=int, metavar="N", help="compression level")
    layer.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help=".dockerignore-style pattern to leave out (repeatable)",
    )
    layer.add_argument(
        "--ignore-file",
        metavar="FILE",
        help="file of exclude patterns (a directory's own .ocibuildignore or "
        ".dockerignore applies without this)",
    )
    layer.add_argument(
        "--mtime",
        metavar="EPOCH|keep",
        help="file times in the layer: seconds since 1970 (default "
        "SOURCE_DATE_EPOCH or 0) or 'keep' for the real times",
    )
    layer.add_argument("--no-cache", action="store_true", help="do not use the layer cache")
    config = parser.add_argument_group("image config")
    config.add_argument("--entrypoint", metavar="CMD", help="JSON array or shell words")
    config.add_argument("--cmd", metavar="CMD", help="JSON array or shell words")
    config.add_argument("--env", "-e", action="append", default=[], metavar="K=V")
    config.add_argument("--workdir", metavar="DIR")
    config.add_argument("--user", metavar="USER[:GROUP]")
    config.add_argument("--label", "-l", action="append", default=[], metavar="K=V")
    config.add_argument("--annotation", "-a", action="append", default=[], metavar="K=V")
    config.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout, and no progress"
    )


def parse_pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """``["K=V", ...]`` -> dict; a value without ``=`` is a usage error."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _UsageError(f"--{what} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def parse_command(value: str | None, what: str) -> list[str] | None:
    """A JSON array (``["python", "-m", "app"]``) or shell words (``python -m app``)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as err:
            raise _UsageError(f"--{what} is not a valid JSON array: {err}") from err
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise _UsageError(f"--{what} must be a JSON array of strings")
        return parsed
    try:
        return shlex.split(text)
    except ValueError as err:
        raise _UsageError(f"--{what}: {err}") from err


def registry_options(args: argparse.Namespace, *specs: str) -> Any:
    """:class:`RegistryOptions` from the registry access options; ``None`` when none of
    ``specs`` names a registry (so offline work never imports the HTTP stack)."""
    from ._location import Location

    password = None
    if getattr(args, "password_stdin", False):
        if getattr(args, "username", None) is None:
            raise _UsageError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    elif getattr(args, "username", None):
        raise _UsageError(
            "--username needs --password-stdin (passwords are never taken as arguments)"
        )
    if getattr(args, "concurrency", 4) < 1:
        raise _UsageError("--concurrency must be at least 1")
    if specs and all(Location.parse(spec).kind != "registry" for spec in specs):
        return None
    from .registry import RegistryOptions

    return RegistryOptions(
        insecure=frozenset(getattr(args, "insecure_registry", ()) or ()),
        ca_file=getattr(args, "ca_file", None),
        username=getattr(args, "username", None),
        password=password,
        auth_file=getattr(args, "authfile", None),
        concurrency=getattr(args, "concurrency", 4),
        retry_budget=getattr(args, "retry_budget", 120.0),
    )


def layer_options(args: argparse.Namespace) -> Any:
    """:class:`LayerOptions` from the layer options."""
    from .layer import LayerOptions

    kwargs: dict[str, Any] = {
        "compression": args.compression,
        "level": args.level,
        "excludes": tuple(args.exclude),
        "ignore_file": args.ignore_file,
    }
    if args.mtime is not None:
        if args.mtime == "keep":
            kwargs["mtime"] = None
        elif args.mtime.isdigit():
            kwargs["mtime"] = int(args.mtime)
        else:
            raise _UsageError(f"--mtime expects seconds since 1970 or 'keep', got {args.mtime!r}")
    return LayerOptions(**kwargs)


def config_changes(args: argparse.Namespace) -> Any:
    """:class:`ContainerConfig` from the image config options."""
    from .oci import ContainerConfig

    return ContainerConfig(
        entrypoint=parse_command(args.entrypoint, "entrypoint"),
        cmd=parse_command(args.cmd, "cmd"),
        env=parse_pairs(args.env, "env") or None,
        working_dir=args.workdir,
        user=args.user,
        labels=parse_pairs(args.label, "label") or None,
    )


def progress_for(args: argparse.Namespace, verb: str) -> Any:
    """A terminal progress line when stderr is a terminal and ``--json`` is off."""
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None
    from ._progress import TerminalProgress

    return TerminalProgress(verb=verb)


def finish(args: argparse.Namespace, result: Any, progress: Any) -> None:
    """Print a write result: JSON, or the pinned reference like ``crane``."""
    if progress is not None:
        progress.close()
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.reference)


# -- commands ----------------------------------------------------------------------------


def cmd_append(args: argparse.Namespace) -> int:
    from ._load import load
    from ._write import write
    from .layer import FileTreeLayer, LayerCache, TarballLayer

    if not args.sources and not args.tarball:
        raise _UsageError("nothing to append: give SRC[:DEST] paths and/or --tarball FILE")
    options = layer_options(args)
    changes = config_changes(args)
    annotations = parse_pairs(args.annotation, "annotation")
    reg = registry_options(args, args.base, args.to)
    cache = None if args.no_cache else LayerCache()

    layers: list[Any] = [
        TarballLayer(path, compression=args.compression, level=args.level) for path in args.tarball
    ]
    if args.sources:
        layers.append(FileTreeLayer(args.sources, options, cache=cache))

    all_platforms = args.platform == "all"
    platform = None if all_platforms else args.platform
    loaded = load(args.base, platform=platform, all_platforms=all_platforms, registry_options=reg)
    created_by = "ocibuild append " + " ".join(
        [*(f"--tarball {t}" for t in args.tarball), *args.sources]
    )
    images = []
    for image in loaded.images:
        if platform and args.base == "scratch":
            from .oci import Platform

            image = image.with_platform(Platform.parse(platform))
        image = image.append(*layers, created_by=created_by).with_config(changes)
        if annotations:
            image = image.with_annotations(annotations)
        images.append(image)

    progress = progress_for(args, "appending")
    result = write(
        images,
        args.to,
        registry_options=reg,
        progress=progress,
        as_index=loaded.is_index and all_platforms,
    )
    finish(args, result, progress)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from ._copy import copy

    progress = progress_for(args, "copying")
    result = copy(
        args.src,
        args.dest,
        platform=args.platform,
        registry_options=registry_options(args, args.src, args.dest),
        progress=progress,
    )
    finish(args, result, progress)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ._inspect import inspect

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
    from .registry import login

    if not args.username:
        raise _UsageError("login needs --username")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        if not sys.stdin.isatty():
            raise _UsageError("no terminal to ask for the password: use --password-stdin")
        password = getpass.getpass("Password: ")
    args.password_stdin = False
    username, args.username = args.username, None
    where = login(args.registry, username, password, registry_options(args))
    print(f"Login succeeded: credentials for {args.registry} stored in {where}")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from .registry import logout

    if logout(args.registry, registry_options(args)):
        print(f"Removed credentials for {args.registry}")
    else:
        print(f"No stored credentials for {args.registry}")
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    from ._deps import prune_dependencies
    from .layer import LayerCache

    cache = LayerCache()
    older_than = None if args.older_than_days is None else args.older_than_days * 86400
    keep = None if args.keep is None and older_than is not None else (args.keep or 0)
    layers = cache.prune(max_entries=keep, older_than=older_than)
    deps = prune_dependencies(cache.root, keep=keep, older_than=older_than)
    print(f"removed {layers} layer entries and {deps} dependency trees from {cache.root}")
    return 0


# -- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

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
    p.add_argument(
        "--to",
        "-t",
        required=True,
        metavar="REF",
        help="destination: REGISTRY/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE[:REF]",
    )
    p.add_argument(
        "--tarball",
        "-f",
        action="append",
        default=[],
        metavar="FILE",
        help="an existing layer tarball (plain, gzip or zstd), one layer each",
    )
    add_image_options(p)
    add_registry_options(p)
    p.set_defaults(func=cmd_append)

    p = sub.add_parser("copy", help="copy an image between registries, layouts and archives")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]|all",
        help="copy one platform of an index (default: all of it)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_registry_options(p)
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser("inspect", help="show an image's manifest and config")
    p.add_argument("ref", metavar="REF")
    p.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="for an index, show this platform's image"
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
        type=int,
        default=None,
        metavar="N",
        help="keep the N most recently used entries (default: remove all)",
    )
    prune.add_argument(
        "--older-than-days",
        type=float,
        metavar="DAYS",
        help="only remove entries unused for this many days",
    )
    prune.set_defaults(func=cmd_cache_prune)

    _add_pipeline_commands(sub)
    return parser


def _add_pipeline_commands(sub: Any) -> None:
    try:
        from ._cli_pipeline import add_pipeline_commands
    except ImportError:
        return

    def image_and_registry(parser: argparse.ArgumentParser) -> None:
        add_image_options(parser)
        add_registry_options(parser)

    add_pipeline_commands(sub, image_and_registry)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("ocibuild: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _UsageError as err:
        parser.exit(EXIT_USAGE, f"ocibuild: error: {err}\n")
    except Exception as err:
        message = _one_line(err)
        if message is None or os.environ.get("OCIBUILD_DEBUG"):
            raise
        print(f"ocibuild: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _one_line(err: BaseException) -> str | None:
    """The one-line message for errors users cause; ``None`` for bugs (shown with a traceback)."""
    from ._errors import OCIBuildError

    if isinstance(err, OCIBuildError):
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, OSError):
        where = f" {err.filename!r}" if err.filename else ""
        return f"{err.strerror or err}{':' if where else ''}{where}"
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
