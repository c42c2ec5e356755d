"""The options the CLI's commands share, and turning them into ocibuild values."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = [
    "Once",
    "info_lines",
    "UsageError",
    "add_destination",
    "count_value",
    "days_value",
    "location_value",
    "one_platform_value",
    "platform_value",
    "user_value",
    "add_image_options",
    "add_progress_options",
    "add_quiet_option",
    "add_registry_options",
    "config_changes",
    "finish",
    "layer_options",
    "parse_command",
    "parse_pairs",
    "progress_for",
    "registry_options",
    "run_command",
    "stop_progress",
]


class UsageError(Exception):
    """A bad option value found after argparse (exit status 2)."""


def user_value(value: str) -> str:
    """``--user``: ``USER[:GROUP]``, each a name or a number; anything else no runtime takes."""
    user, sep, group = value.partition(":")
    if not user or (sep and not group) or ":" in group:
        raise argparse.ArgumentTypeError(
            f"expected USER[:GROUP] (a name or id, and optionally a group), got {value!r}"
        )
    return value


def platform_value(value: str) -> str:
    """``--platform``: ``OS/ARCH[/VARIANT]``, a comma list of them, or ``all``."""
    if value.strip() == "all":
        return value
    for item in value.split(","):
        one_platform_value(item)
    return value


def one_platform_value(value: str) -> str:
    """``--platform`` where one image is shown: ``OS/ARCH[/VARIANT]``."""
    from .._errors import InvalidPlatformError
    from ..oci import Platform

    try:
        Platform.parse(value)
    except InvalidPlatformError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def location_value(value: str) -> str:
    """An image spelling (``REGISTRY/REPO:TAG``, ``oci:DIR[:TAG]``, ...) that parses."""
    from .._errors import InvalidReferenceError
    from ..transports._location import check_spelling

    try:
        check_spelling(value)  # loads no plugins: a plugin's prefix is the command's to read
    except InvalidReferenceError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def count_value(value: str) -> int:
    """A whole number, 0 or more."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {value!r}")
    return number


def days_value(value: str) -> float:
    """A number of days, 0 or more."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"expected a number of days, 0 or more, got {value!r}")
    return number


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
    quiet = getattr(args, "quiet", False) or getattr(args, "progress", None) == "none"
    if (
        getattr(args, "json", False)
        or quiet
        or not sys.stderr.isatty()
        or os.environ.get("OCIBUILD_DEBUG")
    ):
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
        type=location_value,
        metavar="REF",
        help="destination: REGISTRY/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE[:REF], "
        "docker-daemon:NAME[:TAG] (a Docker-compatible engine)",
    )


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``append``, ``build`` and ``run``: base, layer format and config."""
    parser.add_argument(
        "--base",
        "-b",
        type=location_value,
        default="scratch",
        metavar="REF",
        help="base image: REGISTRY/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE[:REF], "
        "docker-daemon:NAME[:TAG] or scratch (default: %(default)s)",
    )
    parser.add_argument(
        "--platform",
        type=platform_value,
        metavar="OS/ARCH[/VARIANT][,...]|all",
        help="platforms to pick from a multi-platform base: one, a comma list (the result is "
        "an index of those), or 'all' (default: linux/amd64, with a warning)",
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
    config.add_argument("--user", type=user_value, metavar="USER[:GROUP]")
    config.add_argument("--label", "-l", action="append", default=[], metavar="K=V")
    config.add_argument("--annotation", "-a", action="append", default=[], metavar="K=V")
    config.add_argument(
        "--no-base-annotations",
        action="store_true",
        help="leave out the org.opencontainers.image.base.name/.base.digest annotations "
        "that name a registry base",
    )
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
    import shlex  # not at import: `--help` does not split commands

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
    from .._errors import InvalidOptionError
    from ..layer._compress import check_level

    try:
        check_level(args.compression, args.level)
    except InvalidOptionError as err:
        raise UsageError(f"--level: {err}") from None
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


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress auto|plain|none`` and ``-q/--quiet``, for the commands that move blobs."""
    parser.add_argument(
        "--progress",
        choices=("auto", "plain", "none"),
        default=None,
        help="how to show progress on stderr: auto (redrawn in place on a terminal, else "
        "nothing), plain (one line per finished step or blob), none "
        "(default $OCIBUILD_PROGRESS, else auto)",
    )
    add_quiet_option(parser)


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: no progress, no info lines, stdout holds only the result's reference."""
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress; print only the result's reference on stdout",
    )


# The displays progress_for made, so stop_progress can end them before an error is printed.
_shown: list[Any] = []


def progress_for(args: argparse.Namespace, verb: str) -> Any:
    """The progress display the options ask for: ``auto`` draws on a terminal and shows
    nothing elsewhere (a one-line error stays one line in a CI log), ``plain`` writes one line
    per finished step or blob, ``none``, ``-q`` and ``--json`` show nothing."""
    from ._progress import PlainProgress, SilentProgress, TerminalProgress

    mode = getattr(args, "progress", None) or os.environ.get("OCIBUILD_PROGRESS") or "auto"
    if mode not in ("auto", "plain", "none"):
        raise UsageError(f"OCIBUILD_PROGRESS must be auto, plain or none (not {mode!r})")
    display: Any
    if getattr(args, "quiet", False) or getattr(args, "json", False) or mode == "none":
        display = SilentProgress()
    elif mode == "plain":
        display = PlainProgress(sys.stderr, verb=verb)
    elif sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        display = TerminalProgress(sys.stderr, verb=verb)
    else:
        display = SilentProgress()
    _shown.append(display)
    return display


def stop_progress() -> None:
    """Stop every display still drawing, so what is printed next starts on a fresh line."""
    while _shown:
        _shown.pop().stop()


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command's handler; however it ends, its progress display has stopped first, so
    ``interrupted`` or an error is printed on a line of its own."""
    try:
        return func(args)
    finally:
        stop_progress()


def finish(args: argparse.Namespace, result: Any, progress: Any) -> None:
    """Print a write result: JSON, or the pinned reference like ``crane``."""
    if progress is not None:
        progress.close()
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.reference)
