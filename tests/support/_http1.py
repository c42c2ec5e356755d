"""Just enough HTTP/1.1 framing to relay messages byte for byte: heads and streamed bodies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedReader
from typing import NamedTuple

__all__ = ["Head", "LoggedRequest", "body_pieces", "read_head"]

_MAX_LINE = 65536
_MAX_HEADERS = 200
_BUFFER = 256 * 1024


class LoggedRequest(NamedTuple):
    """One request as a server saw it; `status` is None when no answer was sent."""

    method: str
    path: str  # path and query, as sent
    status: int | None


@dataclass(frozen=True)
class Head:
    """A request or response head: start line and headers, in wire order."""

    start: str  # "PATCH /v2/x/blobs/uploads/1 HTTP/1.1" or "HTTP/1.1 202 Accepted"
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The last value of header `name` (case-insensitive), or None."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found

    def without(self, *names: str) -> Head:
        """The same head minus the named headers."""
        drop = {n.lower() for n in names}
        return Head(self.start, tuple(h for h in self.headers if h[0].lower() not in drop))

    def encode(self) -> bytes:
        """The head as bytes on the wire, blank line included."""
        lines = [self.start, *(f"{key}: {value}" for key, value in self.headers), "", ""]
        return "\r\n".join(lines).encode("latin-1")

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.get("Transfer-Encoding") or "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.get("Content-Length")
        return int(value) if value is not None else None

    @property
    def wants_close(self) -> bool:
        connection = (self.get("Connection") or "").lower()
        http10 = self.start.startswith("HTTP/1.0") or self.start.endswith("HTTP/1.0")
        return "close" in connection or (http10 and "keep-alive" not in connection)


def read_head(reader: BufferedReader) -> Head | None:
    """Read one message head; None if the peer closed cleanly before sending anything."""
    lines: list[str] = []
    while True:
        raw = reader.readline(_MAX_LINE)
        if not raw:
            if lines:
                raise ConnectionError("connection closed in the middle of a message head")
            return None
        if not raw.endswith(b"\n"):
            raise ConnectionError("header line too long")
        line = raw.rstrip(b"\r\n").decode("latin-1")
        if not line:
            if lines:
                break
            continue  # stray CRLF between messages (RFC 9112 section 2.2)
        lines.append(line)
        if len(lines) > _MAX_HEADERS:
            raise ConnectionError("too many header lines")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Head(lines[0], tuple(headers))


def body_pieces(
    reader: BufferedReader, head: Head, *, until_close: bool = False, limit: int | None = None
) -> Iterator[tuple[bytes, int]]:
    """Yield (wire bytes, payload byte count) of the body that follows `head`, as it arrives.

    The framing is chunked, Content-Length, or (only when `until_close`, for responses) the end
    of the connection. With `limit`, stop once that many payload bytes were read.
    """
    if head.chunked:
        yield from _chunked(reader, limit)
    elif head.content_length is not None:
        yield from _sized(reader, head.content_length, limit)
    elif until_close:
        while data := reader.read1(_BUFFER):
            yield data, len(data)


def _sized(reader: BufferedReader, size: int, limit: int | None) -> Iterator[tuple[bytes, int]]:
    remaining = size if limit is None else min(size, limit)
    while remaining > 0:
        data = reader.read1(min(remaining, _BUFFER))
        if not data:
            raise ConnectionError("connection closed in the middle of a body")
        remaining -= len(data)
        yield data, len(data)


def _chunked(reader: BufferedReader, limit: int | None) -> Iterator[tuple[bytes, int]]:
    total = 0
    while True:
        line = reader.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise ConnectionError("connection closed in a chunk header")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        yield line, 0
        if size == 0:
            yield from _trailers(reader)
            return
        for data, count in _sized(reader, size, None if limit is None else limit - total):
            total += count
            yield data, count
        if limit is not None and total >= limit:
            return
        yield reader.readline(_MAX_LINE), 0  # the CRLF that ends the chunk


def _trailers(reader: BufferedReader) -> Iterator[tuple[bytes, int]]:
    while True:
        line = reader.readline(_MAX_LINE)
        if not line:
            raise ConnectionError("connection closed in chunked trailers")
        yield line, 0
        if line in (b"\r\n", b"\n"):
            return
