"""What the strict tarball check refuses: members that reach outside the image root when an
extractor unpacks the layer, or that carry more than files, directories and links.

Layer tarballs pass through as given by default (as crane and ``docker import`` do); the
strict check is for tarballs from someone else. Refused, member by member as the headers
stream past:

- a path that is absolute or has a ``..`` component, and a hard link to such a path;
- a symlink whose relative target climbs above the image root. An absolute target is kept:
  runtimes and careful extractors (containerd, umoci, securejoin) resolve it inside the
  container's root, and real base layers are full of them (``/etc/localtime``);
- a member beneath a symlink of the same tarball (``link -> /etc`` then ``link/passwd``),
  which is how a kept absolute link would otherwise lead a naive extractor out of its root;
- devices, FIFOs and types other than files, directories and links (GNU sparse files, ...);
- setuid and setgid bits: from an untrusted tarball they are a way to root inside the
  container;
- a global pax header that sets ``path`` or ``linkpath``, which some readers apply to every
  member after it.
"""

from __future__ import annotations

from .._errors import TarballError
from ..oci._config import json_text
from ._tar_index import Member, numeric_field

__all__ = ["StrictCheck"]

_KEPT_KINDS = frozenset({b"0", b"\0", b"7", b"1", b"2", b"5"})  # files, links, directories
_NAMED_KINDS = {b"3": "a character device", b"4": "a block device", b"6": "a FIFO"}
_SET_ID = 0o6000
_MAX_SHOWN = 120


class StrictCheck:
    """Refuses hostile members, one header at a time; remembers the symlinks seen so far."""

    def __init__(self) -> None:
        self._symlinks: set[str] = set()

    def check(self, member: Member, block: bytes) -> None:
        """Raise :class:`TarballError` naming ``member`` (its raw header is ``block``) and why."""
        why = self._why(member, block)
        if why is not None:
            raise TarballError(f"member {_shown(member.name)} {why}; the strict check refuses it")

    def check_global(self, records: dict[str, str]) -> None:
        """Refuse a global pax header that renames the members after it."""
        for key in ("path", "linkpath"):
            if key in records:
                raise TarballError(
                    f"a global pax header sets '{key}' ({_shown(records[key])}) for every "
                    "member after it; the strict check refuses it"
                )

    def _why(self, member: Member, block: bytes) -> str | None:
        kind = member.kind
        if kind in _NAMED_KINDS:
            return f"is {_NAMED_KINDS[kind]}"
        if kind not in _KEPT_KINDS:
            return f"has type {kind.decode('latin-1')!r}, not a file, directory or link"
        parts = _parts(member.name)
        why = self._path_problem(member.name, parts)
        if why is not None:
            return why
        if kind == b"1":
            target = self._path_problem(member.linkname, _parts(member.linkname))
            if target is not None:
                return f"is a hard link to {_shown(member.linkname)}, which {target}"
        elif kind == b"2":
            if not member.linkname.startswith("/") and _climbs(parts[:-1], member.linkname):
                return f"is a symlink to {_shown(member.linkname)}, above the image root"
            self._symlinks.add("/".join(parts))
        try:
            mode = numeric_field(block[100:108])
        except ValueError:
            return "has a mode field that is not a number"
        if mode & _SET_ID:
            return f"has the setuid or setgid bit (mode {mode & 0o7777:04o})"
        return None

    def _path_problem(self, name: str, parts: list[str]) -> str | None:
        """Why a member path would land outside the root when extracted, if it would."""
        if name.startswith("/"):
            return "has an absolute path"
        if ".." in parts:
            return "has '..' in its path"
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if above in self._symlinks:
                return f"lies beneath {_shown(above)}, a symlink of the same tarball"
        return None


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _climbs(directory: list[str], target: str) -> bool:
    """Whether the relative ``target`` of a link in ``directory`` goes above the root."""
    depth = len(directory)
    for part in _parts(target):
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


def _shown(text: str) -> str:
    """``text`` quoted on one line (names may hold newlines), undecodable bytes as ``\\xNN``."""
    shown = json_text(text)
    if len(shown) > _MAX_SHOWN:  # keep both ends: the hostile part is often the tail
        half = (_MAX_SHOWN - 3) // 2
        shown = shown[:half] + "..." + shown[-half:]
    return repr(shown)
