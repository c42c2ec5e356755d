"""``ocibuild index create|append``: a multi-platform index from images."""

from __future__ import annotations

import argparse
from typing import Any

from ._options import UsageError, add_quiet_option, add_registry_options, registry_options
from ._results import add_result_options

__all__ = ["add_index_command"]


def add_index_command(sub: Any) -> None:
    """Register ``index`` and its two actions."""
    p = sub.add_parser(
        "index",
        help="build a multi-platform index from images",
        description="Build or extend an image index (a multi-platform image) from images; "
        "each entry's platform comes from its image's config.",
        epilog="examples:\n  ocibuild index create registry.local/app:1 --image registry.local/"
        "app:1-amd64 --image registry.local/app:1-arm64\n  ocibuild index append "
        "registry.local/app:1 --image registry.local/app:1-s390x",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create",
        help="write an index of the given images",
        description="Write an index of the --image images to DEST. Their blobs are copied "
        "where DEST lacks them (mounted within one registry); an --image that is an index "
        "brings each of its entries.",
        epilog="examples:\n  ocibuild index create registry.local/app:1 \\\n"
        "    --image registry.local/app:1-amd64 --image registry.local/app:1-arm64",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("dest", metavar="DEST", help="REGISTRY/REPO:TAG or oci:DIR[:TAG]")
    _common(create)
    create.set_defaults(func=cmd_index, append=False)
    append = actions.add_parser(
        "append",
        help="add images to an existing index",
        description="Add the --image images to the index at INDEX and write it back; an "
        "entry for a platform an --image brings is replaced.",
        epilog="examples:\n  ocibuild index append registry.local/app:1 "
        "--image registry.local/app:1-s390x",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    append.add_argument("dest", metavar="INDEX", help="REGISTRY/REPO:TAG or oci:DIR:TAG")
    _common(append)
    append.set_defaults(func=cmd_index, append=True)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image",
        "-i",
        dest="images",
        action="append",
        required=True,
        metavar="REF",
        help="an image (or index) to add (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_registry_options(p)
    add_result_options(p)
    add_quiet_option(p)


def cmd_index(args: argparse.Namespace) -> int:
    from ..image._index import build_index
    from ..transports import Location
    from ._options import progress_for
    from ._results import extra_tags, report_result

    location = Location.parse(args.dest)
    if args.append and location.kind == "oci" and not location.tag:
        # Without a tag the new index would sit beside the old one, not replace it.
        raise UsageError(f"index append needs the index's tag: oci:{location.path}:TAG")
    tags = extra_tags(args, args.dest)
    progress = progress_for(args, "indexing")
    result = build_index(
        args.dest,
        args.images,
        append=args.append,
        registry_options=registry_options(args, args.dest, *args.images),
        progress=progress,
        extra_tags=tags,
    )
    report_result(args, result, progress)
    return 0
