"""crane's everyday verbs: mutate, tag, ls, digest, manifest, config, delete, export (and
``index``, in ``_index.py``).

Every handler imports what it uses, so ``ocibuild --help`` stays free of the HTTP stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._index import add_index_command
from ._options import UsageError, add_quiet_option, add_registry_options, registry_options
from ._results import add_result_options

__all__ = ["add_verb_commands"]


def _parser(
    sub: Any, name: str, summary: str, example: str, more: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + (f" ({more})." if more else "."),
        epilog="examples:\n  " + example.replace("\n", "\n  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _platform(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help=what)


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_verb_commands(sub: Any) -> None:
    """Register the verbs on the ``ocibuild`` subparsers."""
    _add_mutate(sub)

    p = _parser(
        sub, "tag", "tag an image again, in its own repository",
        "ocibuild tag registry.local/app:1 stable",
        "one manifest write: no blob is sent",
    )  # fmt: skip
    p.add_argument("src", metavar="SRC", help="REGISTRY/REPO:TAG or oci:DIR:TAG")
    p.add_argument("tag", metavar="TAG", help="the new tag, in the same repository or layout")
    _json(p)
    add_registry_options(p)
    p.set_defaults(func=cmd_tag)

    p = _parser(
        sub, "ls", "list the tags of a repository (or of an OCI layout), sorted",
        "ocibuild ls registry.local/app\nocibuild ls oci:./layout --json",
    )  # fmt: skip
    p.add_argument("repository", metavar="REPO", help="REGISTRY/REPO or oci:DIR")
    p.add_argument("--json", action="store_true", help="the tags as a JSON array")
    add_registry_options(p)
    p.set_defaults(func=cmd_ls)

    p = _parser(
        sub, "digest", "print the digest of an image's manifest (or index)",
        "ocibuild digest registry.local/app:1\nocibuild digest --platform linux/arm64 app:multi",
    )  # fmt: skip
    p.add_argument("ref", metavar="REF")
    _platform(p, "for an index, the digest of this platform's manifest")
    _json(p)
    add_registry_options(p)
    p.set_defaults(func=cmd_digest)

    p = _parser(
        sub, "manifest", "write an image's manifest (or index) to stdout, byte for byte",
        "ocibuild manifest registry.local/app:1 | jq .layers",
    )  # fmt: skip
    p.add_argument("ref", metavar="REF")
    _platform(p, "for an index, this platform's manifest instead")
    add_registry_options(p)
    p.set_defaults(func=cmd_manifest)

    p = _parser(
        sub, "config", "write an image's config to stdout, byte for byte",
        "ocibuild config registry.local/app:1 | jq .config.Env",
    )  # fmt: skip
    p.add_argument("ref", metavar="REF")
    _platform(p, "for an index, this platform's image (default linux/amd64)")
    add_registry_options(p)
    p.set_defaults(func=cmd_config)

    p = _parser(
        sub, "delete", "delete an image from a registry", "ocibuild delete registry.local/app:old",
        "a tag is resolved to its digest first and the manifest is deleted, so every tag on "
        "that digest goes with it",
    )  # fmt: skip
    p.add_argument("ref", metavar="REF", help="REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST")
    _json(p)
    add_registry_options(p)
    p.set_defaults(func=cmd_delete)

    p = _parser(
        sub, "export", "write an image's flattened filesystem as a tar",
        "ocibuild export registry.local/app:1 -o rootfs.tar\n"
        "ocibuild export oci:./layout:1 | tar -t",
        "whiteouts applied, the upper layer's file winning; every layer is checked against "
        "its digests",
    )  # fmt: skip
    p.add_argument("ref", metavar="REF")
    p.add_argument(
        "--output", "-o", default="-", metavar="FILE", help="the tar file, or - for stdout"
    )
    _platform(p, "for an index, this platform's image (default linux/amd64)")
    add_registry_options(p)
    p.set_defaults(func=cmd_export)

    add_index_command(sub)


def _add_mutate(sub: Any) -> None:
    p = _parser(
        sub, "mutate", "change an image's config and annotations, adding no layer",
        "ocibuild mutate registry.local/app:1 --env MODE=prod --label team=ml --to "
        "registry.local/app:2",
    )  # fmt: skip
    p.add_argument("src", metavar="SRC")
    p.add_argument(
        "--to", "-t", metavar="REF",
        help="where to write the result (default: SRC itself, for a registry or oci: SRC)",
    )  # fmt: skip
    p.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="change only this platform of an index, written as a single image "
        "(default: every platform, written as an index)",
    )
    config = p.add_argument_group("image config (as append takes them)")
    config.add_argument("--entrypoint", metavar="CMD", help="JSON array or shell words")
    config.add_argument("--cmd", metavar="CMD", help="JSON array or shell words")
    config.add_argument("--env", "-e", action="append", default=[], metavar="K=V")
    config.add_argument("--workdir", metavar="DIR")
    config.add_argument("--user", metavar="USER[:GROUP]")
    config.add_argument("--label", "-l", action="append", default=[], metavar="K=V")
    config.add_argument("--annotation", "-a", action="append", default=[], metavar="K=V")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_registry_options(p)
    add_result_options(p)
    add_quiet_option(p)
    p.set_defaults(func=cmd_mutate)


# -- handlers ------------------------------------------------------------------------------


def cmd_mutate(args: argparse.Namespace) -> int:
    from ..image._mutate import mutate
    from ..transports import Location
    from ._options import config_changes, parse_pairs, progress_for
    from ._results import extra_tags, report_result

    dest = args.to or args.src
    if args.to is None and Location.parse(args.src).kind not in ("registry", "oci"):
        raise UsageError("mutate of this source needs --to REF (it cannot be rewritten in place)")
    changes = config_changes(args)
    annotations = parse_pairs(args.annotation, "annotation")
    tags = extra_tags(args, dest)
    progress = progress_for(args, "mutating")
    result = mutate(
        args.src,
        dest,
        changes=changes,
        annotations=annotations,
        platform=args.platform,
        registry_options=registry_options(args, args.src, dest),
        progress=progress,
        extra_tags=tags,
    )
    report_result(args, result, progress)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from ..oci import Digest
    from ..transports import Location, open_sink

    if any(c in args.tag for c in "/@") or not args.tag:
        raise UsageError(
            f"{args.tag!r} is not a tag; to write into another repository use ocibuild copy"
        )
    src = Location.parse(args.src)
    if src.kind == "registry" and src.reference is not None:
        dest = Location("registry", reference=src.reference.with_tag(args.tag))
    elif src.kind == "oci":
        dest = Location.parse(f"oci:{src.path}:{args.tag}")
    else:
        raise UsageError(f"tag works on registry and oci: images, not {src.kind}:")
    reg = registry_options(args, args.src)
    data, media_type = _top_manifest(src, reg)
    sink = open_sink(dest, reg)
    try:
        # The blobs are in this repository already: the new tag is one manifest PUT.
        sink.put_manifest(data, media_type, tag=args.tag)
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    _say(args, reference=f"{_pinnable(dest)}@{Digest.of(data)}", digest=str(Digest.of(data)))
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from ..oci import Reference
    from ..transports import Location

    location = Location.parse(args.repository)
    if location.kind == "oci":
        from ..transports._layout import layout_tags

        if location.tag:
            raise UsageError(f"ls lists a layout's tags: write oci:{location.path}, no tag")
        tags = layout_tags(location.path or ".")
    elif location.kind == "registry":
        from ..transports.registry import RegistryClient

        ref = Reference.parse(args.repository, default_tag=None)
        if ref.tag or ref.digest:
            raise UsageError(f"ls lists a repository's tags: write {ref.name}, no tag or digest")
        with RegistryClient(ref.registry, registry_options(args, args.repository)) as client:
            tags = client.tags(ref.repository)
    else:
        raise UsageError(f"ls lists registry repositories and oci: layouts, not {location.kind}:")
    tags = sorted(tags)  # Docker Distribution 2.8 answers in storage order
    if args.json:
        print(json.dumps(tags))
    else:
        for tag in tags:
            print(tag)
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from ..oci import Digest

    data, media_type = _manifest(args)
    digest = str(Digest.of(data))
    if args.json:
        print(json.dumps({"digest": digest, "mediaType": media_type, "size": len(data)}))
    else:
        print(digest)
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    data, _ = _manifest(args)
    sys.stdout.buffer.write(data)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from ..oci import Index, Manifest, Platform
    from ..oci._manifest import parse_manifest_or_index
    from ..transports import open_source

    location = _readable(args.ref)
    source = open_source(location, registry_options(args, args.ref))
    try:
        data, media_type = source.get_manifest()
        parsed = parse_manifest_or_index(data, media_type)
        if isinstance(parsed, Index):
            desc = parsed.select(Platform.parse(args.platform or "linux/amd64"))
            parsed = Manifest.from_json(source.get_child_manifest(desc), desc.media_type)
        config = source.get_blob(parsed.config)
    finally:
        source.close()
    sys.stdout.buffer.write(config)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from ..oci import Digest
    from ..transports import Location
    from ..transports.registry import RegistryClient

    location = Location.parse(args.ref)
    if location.kind != "registry" or location.reference is None:
        raise UsageError(f"delete works on registry references, not {location.kind}:")
    ref = location.reference
    with RegistryClient(ref.registry, registry_options(args, args.ref)) as client:
        digest = ref.digest
        if digest is None:  # registries delete manifests, not tags: resolve the tag first
            data, _, _ = client.get_manifest(ref.repository, ref.identifier)
            digest = Digest.of(data)
        client.delete_manifest(ref.repository, digest)
    if args.json:
        print(json.dumps({"deleted": f"{ref.name}@{digest}", "digest": str(digest)}))
    else:
        print(f"deleted {ref.name}@{digest}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..image._export import flatten
    from ..image._image import load_image

    if args.output == "-" and sys.stdout.isatty():
        raise UsageError("refusing to write a tar to a terminal: give -o FILE or a pipe")
    _readable(args.ref)
    image = load_image(
        args.ref, platform=args.platform, registry_options=registry_options(args, args.ref)
    )
    if args.output == "-":
        out = sys.stdout.buffer
        for chunk in flatten(image.layers):
            out.write(chunk)
        return 0
    _export_to_file(flatten(image.layers), args.output)
    return 0


def _export_to_file(chunks: Any, path: str) -> None:
    """Write the tar beside ``path`` and rename it into place once every layer checked out."""
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ocibuild-export-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# -- helpers -------------------------------------------------------------------------------


def _readable(spec: str) -> Any:
    from ..transports import Location

    location = Location.parse(spec)
    if location.kind == "scratch":
        raise UsageError("scratch is no stored image: it has no manifest, config or files")
    return location


def _top_manifest(location: Any, reg: Any) -> tuple[bytes, str]:
    from ..transports import open_source

    source = open_source(location, reg)
    try:
        return source.get_manifest()
    finally:
        source.close()


def _manifest(args: argparse.Namespace) -> tuple[bytes, str]:
    """The manifest bytes ``args.ref`` names; with ``--platform``, the entry of an index."""
    from .._errors import ManifestError
    from ..oci import ImageConfig, Index, Platform
    from ..oci._manifest import parse_manifest_or_index
    from ..transports import open_source

    location = _readable(args.ref)
    source = open_source(location, registry_options(args, args.ref))
    try:
        data, media_type = source.get_manifest()
        if args.platform is None:
            return data, media_type
        parsed = parse_manifest_or_index(data, media_type)
        wanted = Platform.parse(args.platform)
        if not isinstance(parsed, Index):  # a single image is its own entry, if it matches
            have = ImageConfig.from_json(source.get_blob(parsed.config)).platform
            if not have.matches(wanted):
                raise ManifestError(f"{location} is a single {have} image, not {wanted}")
            return data, media_type
        desc = parsed.select(wanted)
        return source.get_child_manifest(desc), desc.media_type
    finally:
        source.close()


def _say(args: argparse.Namespace, **result: str) -> None:
    """The reference alone, or with ``--json`` every field."""
    print(json.dumps(result) if args.json else result["reference"])


def _pinnable(location: Any) -> str:
    return str(location).split("@", 1)[0]
