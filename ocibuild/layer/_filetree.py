"""A layer built from local files (and optional in-memory files), streamed in one pass."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping, Sequence

from .._errors import SourceError
from ..oci._layer import BlobStream, LayerDigests
from ._cache import LayerCache
from ._options import LayerOptions
from ._pipeline import build_blob, reporting
from ._tar import TarOptions, encode_header, tar_stream
from ._tree import Entry, Source, walk

__all__ = ["FileTreeLayer"]

_BLOCK = 512
_END_OF_ARCHIVE = bytes(2 * _BLOCK)
_IMPLIED_DIR_MODE = 0o755


class FileTreeLayer:
    """A layer of local files: ``SRC[:DEST]`` sources, plus files given as bytes.

    ``extra_files`` maps in-image paths to ``(content, mode)``; they are added after the
    sources (replacing a file a source put at the same path), with parent directories implied.
    The sources are walked (and stat'ed for the cache) once: make a new layer to see changes.
    """

    def __init__(
        self,
        sources: Sequence[Source | str],
        options: LayerOptions | None = None,
        *,
        cache: LayerCache | None = None,
        extra_files: Mapping[str, tuple[bytes, int]] | None = None,
    ) -> None:
        self._sources = tuple(Source.parse(s) if isinstance(s, str) else s for s in sources)
        self._options = options if options is not None else LayerOptions()
        self._cache = cache
        self._extra = {_image_path(path): spec for path, spec in (extra_files or {}).items()}
        self._contents = {path: data for path, (data, _) in self._extra.items()}
        self._entries: list[Entry] | None = None
        self._digests: LayerDigests | None = None
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"FileTreeLayer({self.description!r})"

    @property
    def options(self) -> LayerOptions:
        """The options this layer is built with."""
        return self._options

    @property
    def entries(self) -> list[Entry]:
        """The sorted entries, walked on first use (where a :class:`SourceError` surfaces)."""
        if self._entries is None:
            options = self._options
            walked = walk(self._sources, excludes=options.excludes, ignore_file=options.ignore_file)
            self._entries = _with_extra_files(walked, self._extra)
        return self._entries

    @property
    def media_type(self) -> str:
        """The media type of the compressed blob."""
        return self._options.media_type

    @property
    def description(self) -> str:
        """The sources, as given."""
        parts = [f"{s.src}:{s.dest}" for s in self._sources]
        parts += [f"<bytes>:/{path}" for path in self._extra]
        return ", ".join(parts)

    def expected_tar_size(self) -> int:
        """The tar's size from the walk: a header per entry, file data in whole blocks.

        PAX records (long names, big ids) add a little more, so progress may end past 100%.
        """
        data = sum(e.size + -e.size % _BLOCK for e in self.entries if e.kind == "file")
        return len(self.entries) * _BLOCK + data + len(_END_OF_ARCHIVE)

    def fingerprint(self) -> str:
        """This layer's key in the layer cache: a stat walk, no reads; taken once, like the walk."""
        if self._fingerprint is None:
            self._fingerprint = LayerCache.fingerprint(
                self.entries, self._options, contents=self._contents
            )
        return self._fingerprint

    def known(self) -> LayerDigests | None:
        """The digests from the last full build, or from the cache, without reading any file."""
        if self._digests is None and self._cache is not None:
            hit = self._cache.get(self.fingerprint())
            if hit is not None and hit.media_type == self.media_type:
                self._digests = hit
        return self._digests

    def compressed(self) -> BlobStream:
        """The blob, built as it is read; its digests are remembered (and cached) at the end."""
        # Fingerprint before reading: a file changed mid-build then misses on the next run.
        fingerprint = self.fingerprint() if self._cache is not None else None
        options = self._options
        blob = build_blob(
            self.uncompressed(),
            compression=options.compression,
            level=options.level,
            media_type=self.media_type,
        )
        return reporting(blob, lambda digests: self._remember(fingerprint, digests))

    def uncompressed(self) -> Iterator[bytes]:
        """The tar straight from the tar writer, read from the files as it is consumed."""
        return _tar_with_contents(self.entries, self._contents, self._options.tar_options)

    def _remember(self, fingerprint: str | None, digests: LayerDigests) -> None:
        self._digests = digests
        if self._cache is not None and fingerprint is not None:
            self._cache.put(fingerprint, digests)


def _image_path(path: str) -> str:
    """An in-image path in :class:`Entry` form: relative, clean, not escaping the root."""
    clean = posixpath.normpath("/" + path).lstrip("/")
    if not clean or ".." in path.split("/"):
        raise SourceError(f"in-memory file path '{path}' must name a file inside the image")
    return clean


def _with_extra_files(entries: list[Entry], extra: Mapping[str, tuple[bytes, int]]) -> list[Entry]:
    """``entries`` with the in-memory files added (replacing files), parents implied, sorted."""
    if not extra:
        return entries
    by_path = {entry.path: entry for entry in entries}
    for path, (data, mode) in extra.items():
        parent = ""
        for part in path.split("/")[:-1]:
            parent = f"{parent}/{part}" if parent else part
            old = by_path.setdefault(parent, Entry(parent, "dir", _IMPLIED_DIR_MODE, 0, 0.0, None))
            if old.kind != "dir":
                raise SourceError(
                    f"in-memory file '/{path}' needs '/{parent}' to be a directory, "
                    "but a source puts a file there; choose another path"
                )
        replaced = by_path.get(path)
        if replaced is not None and replaced.kind == "dir":
            raise SourceError(
                f"in-memory file '/{path}' would replace a directory; choose another path"
            )
        by_path[path] = Entry(path, "file", mode & 0o7777, len(data), 0.0, None)
    linked = sorted(e.linkname for e in by_path.values() if e.kind == "hardlink")
    for target in linked:
        if target in extra:
            raise SourceError(
                f"in-memory file '/{target}' would replace a file other paths hard-link to; "
                "choose another path"
            )
    # Same order as the walk: by path component, so parents come before their children.
    return sorted(by_path.values(), key=lambda e: os.fsencode(e.path).replace(b"/", b"\0"))


def _tar_with_contents(
    entries: list[Entry], contents: Mapping[str, bytes], options: TarOptions
) -> Iterator[bytes]:
    """The tar of ``entries``, taking files without a host source from ``contents``.

    ``tar_stream`` reads every file from disk, so runs of host entries go through it (minus
    its end-of-archive blocks) and in-memory files are spliced between them.
    """
    if not contents:
        yield from tar_stream(entries, options)
        return
    run: list[Entry] = []
    for entry in entries:
        data = contents.get(entry.path) if entry.source is None else None
        if data is None or entry.kind != "file":
            run.append(entry)
            continue
        if run:
            yield from _without_end(tar_stream(run, options))
            run = []
        yield encode_header(entry, options) + data + bytes(-len(data) % _BLOCK)
    yield from tar_stream(run, options)


def _without_end(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A tar stream without its final two zero blocks, so another can follow it."""
    previous = next(chunks)
    for chunk in chunks:
        yield previous
        previous = chunk
    if not previous.endswith(_END_OF_ARCHIVE):
        raise AssertionError("tar_stream did not end with the end-of-archive blocks")
    if len(previous) > len(_END_OF_ARCHIVE):
        yield previous[: -len(_END_OF_ARCHIVE)]
