"""The options the CLI's commands share, and turning them into ocibuild values."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = [
    "Once",
    "info_lines",
    "UsageError",
    "add_destination",
    "add_image_options",
    "add_registry_options",
    "config_changes",
    "finish",
    "layer_options",
    "parse_command",
    "parse_pairs",
    "progress_for",
    "registry_options",
]


class UsageError(Exception):
    """A bad option value found after argparse (exit status 2)."""


class Once(argparse.Action):
    """Store an option's value, refusing the option a second time (``--to A --to B`` would
    otherwise write to B alone, silently)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} was given twice; give it once")
        setattr(namespace, self.dest, values)


@contextlib.contextmanager
def info_lines(args: argparse.Namespace, logger_name: str) -> Iterator[None]:
    """The INFO records of ``logger_name`` (``ocibuild.builders``, ``ocibuild.deployers``) on
    stderr, one line each, while a person is watching: not with ``--json``, nor when stderr is
    not a terminal (with ``OCIBUILD_DEBUG`` the ocibuild handler shows them already)."""
    if getattr(args, "json", False) or not sys.stderr.isatty() or os.environ.get("OCIBUILD_DEBUG"):
        yield
        return
    import logging

    from ._logs import OneLineFormatter

    logger = logging.getLogger(logger_name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    handler.setLevel(logging.INFO)
    # Warnings and errors reach stderr through the ocibuild logger's own handler.
    handler.addFilter(lambda record: record.levelno < logging.WARNING)
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


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
    group.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="trace every HTTP request on stderr: method, URL, status, time (never a header "
        "value: credentials and tokens stay out)",
    )
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
        default=None,
        metavar="SECONDS",
        help="how long one registry request may wait or retry, connecting and reading "
        "included (default $OCIBUILD_RETRY_BUDGET, else 120)",
    )


def add_destination(parser: argparse.ArgumentParser) -> None:
    """The required ``--to`` of the commands that write one image."""
    parser.add_argument(
        "--to",
        "-t",
        action=Once,
        required=True,
        metavar="REF",
        help="destination: REGISTRY/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE[:REF], "
        "docker-daemon:NAME[:TAG] (a Docker-compatible engine)",
    )


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``append``, ``build`` and ``run``: base, layer format and config."""
    parser.add_argument(
        "--base",
        "-b",
        default="scratch",
        metavar="REF",
        help="base image: REGISTRY/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE[:REF], "
        "docker-daemon:NAME[:TAG] or scratch (default: %(default)s)",
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
        utf8(item, what)
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--{what} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def utf8(value: str, what: str) -> str:
    """``value`` if it is UTF-8 text: image documents are JSON, which holds nothing else."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise UsageError(f"--{what} value '{shown}' is not valid UTF-8; give UTF-8 text") from None
    return value


def parse_command(value: str | None, what: str) -> list[str] | None:
    """A JSON array (``["python", "-m", "app"]``) or shell words (``python -m app``)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as err:
            raise UsageError(f"--{what} is not a valid JSON array: {err}") from err
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise UsageError(f"--{what} must be a JSON array of strings")
        return parsed
    try:
        return shlex.split(text)
    except ValueError as err:
        raise UsageError(f"--{what}: {err}") from err


def registry_options(args: argparse.Namespace, *specs: str) -> RegistryOptions | None:
    """:class:`RegistryOptions` from the registry access options; ``None`` when none of
    ``specs`` names a registry (so offline work never imports the HTTP stack)."""
    from ..transports._location import Location

    password = None
    if getattr(args, "password_stdin", False):
        if getattr(args, "username", None) is None:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    elif getattr(args, "username", None):
        raise UsageError(
            "--username needs --password-stdin (passwords are never taken as arguments)"
        )
    if getattr(args, "concurrency", 4) < 1:
        raise UsageError("--concurrency must be at least 1")
    budget = getattr(args, "retry_budget", None)
    if budget is not None and (not math.isfinite(budget) or budget < 0):
        raise UsageError(f"--retry-budget must be a number of seconds, 0 or more (not {budget})")
    if specs and all(Location.parse(spec).kind != "registry" for spec in specs):
        return None
    from ..transports.registry import RegistryOptions, default_retry_budget

    if budget is None:
        budget = default_retry_budget()  # $OCIBUILD_RETRY_BUDGET, else 120

    return RegistryOptions(
        insecure=frozenset(getattr(args, "insecure_registry", ()) or ()),
        ca_file=getattr(args, "ca_file", None),
        username=getattr(args, "username", None),
        password=password,
        auth_file=getattr(args, "authfile", None),
        concurrency=getattr(args, "concurrency", 4),
        retry_budget=budget,
    )


def layer_options(args: argparse.Namespace) -> Any:
    """:class:`LayerOptions` from the layer options."""
    from ..layer import LayerOptions

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
            raise UsageError(f"--mtime expects seconds since 1970 or 'keep', got {args.mtime!r}")
    return LayerOptions(**kwargs)


def config_changes(args: argparse.Namespace) -> Any:
    """:class:`ContainerConfig` from the image config options."""
    from ..oci import ContainerConfig

    for option in ("entrypoint", "cmd", "workdir", "user"):
        if getattr(args, option) is not None:
            utf8(getattr(args, option), option)
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
