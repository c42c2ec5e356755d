"""The platforms a caller asks for, spelled the same everywhere, and the entries of an index
(or the one image) they name."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .._errors import InvalidPlatformError, ManifestError
from ..oci import Descriptor, Index, Platform

__all__ = [
    "ALL",
    "DEFAULT_PLATFORM",
    "PlatformSpec",
    "check_single",
    "select_entries",
    "wanted_platforms",
]

ALL = "all"
DEFAULT_PLATFORM = Platform("linux", "amd64")

# What every function that takes a platform accepts: a Platform, its spelling
# (``linux/arm64/v8``), several (a sequence, or one string with commas), or "all".
PlatformSpec = Platform | str | Sequence[Platform | str] | None

log = logging.getLogger("ocibuild.image")


def wanted_platforms(spec: PlatformSpec) -> tuple[Platform, ...] | str | None:
    """The platforms ``spec`` asks for, in order without repeats; ``"all"``; or ``None``."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec.strip() == ALL:
            return ALL
        items: Sequence[Platform | str] = spec.split(",")
    elif isinstance(spec, Platform):
        items = (spec,)
    elif isinstance(spec, Sequence) and spec:
        items = spec
    else:
        raise InvalidPlatformError(
            "platform must be a Platform, a string like linux/arm64, several of them, or "
            f"'all'; not {spec!r}"
        )
    out: list[Platform] = []
    for item in items:
        one = item if isinstance(item, Platform) else _one_platform(item)
        if one not in out:
            out.append(one)
    return tuple(out)


def _one_platform(item: object) -> Platform:
    if not isinstance(item, str):
        raise InvalidPlatformError(
            f"platform must be a Platform or a string like linux/arm64, not {type(item).__name__}"
        )
    return Platform.parse(item)


def select_entries(
    name: object, index: Index, wanted: tuple[Platform, ...] | str | None
) -> list[Descriptor]:
    """The entries of ``index`` (read from ``name``) that ``wanted`` asks for, each once.

    Asked for nothing, it is ``linux/amd64``, with a warning naming what else there was:
    a multi-platform base silently narrowed to one surprises people.
    """
    if wanted == ALL:
        return list(index.images)
    if not isinstance(wanted, tuple):
        chosen = index.select(DEFAULT_PLATFORM)
        others = [str(d.platform) for d in index.images if d is not chosen and d.platform]
        if others:
            platform = chosen.platform or DEFAULT_PLATFORM
            log.warning(
                "%s is a multi-platform index; using %s only, not %s: pass --platform all "
                "(platform='all') for every platform, or a list such as --platform %s,%s",
                name, platform, ", ".join(others), platform, others[0],
            )  # fmt: skip
        return [chosen]
    entries: list[Descriptor] = []
    for platform in wanted:
        desc = index.select(platform)
        if all(desc is not e for e in entries):
            entries.append(desc)
    return entries


def check_single(name: object, platform: Platform, wanted: tuple[Platform, ...]) -> None:
    """A single image (read from ``name``) can only be asked for its own platform."""
    if len(wanted) == 1 and platform.matches(wanted[0]):
        return
    asked = ", ".join(str(p) for p in wanted)
    raise ManifestError(
        f"{name} is a single {platform} image, not {asked}; drop --platform or pick a matching base"
    )
