"""What a command that writes an image tells CI: more tags, a digest file, image refs, quiet.

``--tag`` gives the written image more tags (the blobs go once; each tag is one manifest PUT),
``--digest-file`` holds the digest as Docker's ``--iidfile`` does, ``--image-refs`` the pinned
references, one a line, as ko writes them, and ``--quiet`` leaves stdout the reference alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any

from ._options import UsageError

__all__ = [
    "add_result_options",
    "check_output_options",
    "extra_tags",
    "report_result",
    "write_result_files",
]

# The Docker tag grammar; an OCI layout's ref.name grammar is wider, checked by the sink.
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def add_result_options(parser: argparse.ArgumentParser, *, tags: bool = True) -> None:
    """The options above (``tags`` False for commands that tag otherwise); ``--quiet`` comes
    from :func:`add_quiet_option` or, with progress, :func:`add_progress_options`."""
    group = parser.add_argument_group("results")
    if tags:
        group.add_argument(
            "--tag",
            dest="extra_tags",
            action="append",
            default=[],
            metavar="TAG",
            help="one more tag for the written image (repeatable; a registry or oci: "
            "destination): the layers go once, each tag is one manifest write",
        )
    group.add_argument(
        "--digest-file", metavar="FILE", help="write the image's digest to FILE (like --iidfile)"
    )
    group.add_argument(
        "--image-refs",
        metavar="FILE",
        help="write the pinned reference of each tag to FILE, one a line (like ko)",
    )


def check_output_options(args: argparse.Namespace) -> None:
    """``--quiet`` with ``--json`` is a usage error: they ask for different stdout."""
    if getattr(args, "quiet", False) and getattr(args, "json", False):
        raise UsageError("--quiet and --json ask for different output; give one")


def extra_tags(args: argparse.Namespace, dest: str) -> tuple[str, ...]:
    """The ``--tag`` values, checked against ``dest``'s transport (a usage error if wrong)."""
    from ..transports import Location

    check_output_options(args)
    tags = tuple(getattr(args, "extra_tags", ()) or ())
    if not tags:
        return ()
    kind = Location.parse(dest).kind
    if kind not in ("registry", "oci"):
        raise UsageError(f"--tag needs a registry or oci: destination, not {kind}:")
    for tag in tags:
        if kind == "registry" and not _TAG.match(tag):
            raise UsageError(
                f"--tag {tag!r} is not a valid tag (letters, digits, '_', '.', '-'; at most 128)"
            )
    return tags


def report_result(args: argparse.Namespace, result: Any, progress: Any = None) -> None:
    """Close ``progress``, write the files asked for, then print the result."""
    if progress is not None:
        progress.close()
    refs = write_result_files(args, result.reference, str(result.digest))
    if getattr(args, "json", False):
        document = result.to_dict()
        if len(refs) > 1:
            document["references"] = refs
        print(json.dumps(document, indent=2))
    else:
        print(result.reference)


def write_result_files(args: argparse.Namespace, reference: str, digest: str) -> list[str]:
    """Write ``--digest-file`` and ``--image-refs`` if asked; the pinned references."""
    refs = references(reference, getattr(args, "extra_tags", ()) or ())
    if getattr(args, "digest_file", None):
        _write_text(args.digest_file, digest)
    if getattr(args, "image_refs", None):
        _write_text(args.image_refs, "".join(f"{ref}\n" for ref in refs))
    return refs


def references(reference: str, tags: Any) -> list[str]:
    """``NAME:TAG@DIGEST`` for the written tag and each extra one (``NAME@DIGEST`` untagged)."""
    name, _, digest = reference.rpartition("@")
    base, tagged = _split_tag(name)
    out = [reference]
    for tag in tags:
        pinned = f"{base}:{tag}@{digest}"
        if pinned not in out:
            out.append(pinned)
    if not tagged and len(out) > 1:
        out.pop(0)  # the first --tag became the written tag
    return out


def _split_tag(name: str) -> tuple[str, bool]:
    """``host:5000/app:1`` -> (``host:5000/app``, True); a port is not a tag."""
    if name.startswith("oci:"):
        path, sep, _ = name[4:].partition(":")
        return f"oci:{path}", bool(sep)
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], True
    return name, False


def _write_text(path: str, text: str) -> None:
    """Replace ``path`` whole: a reader never sees half a digest."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
