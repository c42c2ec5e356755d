"""BuildKit's progress, as dockerd streams it: ``moby.buildkit.v1.StatusResponse`` protobufs.

A build request with ``version=2`` answers JSON messages whose ``aux``, under the id
``moby.buildkit.trace``, is a base64 ``StatusResponse`` (BuildKit's
``api/services/control/control.proto``). Only a few fields matter here, so a small reader of
the protobuf wire format takes them instead of a protobuf dependency::

    StatusResponse { repeated Vertex vertexes = 1; repeated VertexStatus statuses = 2;
                     repeated VertexLog logs = 3; repeated VertexWarning warnings = 4; }
    Vertex         { string digest = 1; repeated string inputs = 2; string name = 3;
                     bool cached = 4; Timestamp started = 5; Timestamp completed = 6;
                     string error = 7; ... }
    VertexLog      { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3;
                     bytes msg = 4; }

Fields not listed are skipped by their wire type, so newer BuildKits decode as well.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass

from .._errors import PipelineError

__all__ = ["TRACE_ID", "Status", "Vertex", "VertexLog", "decode_status", "decode_trace"]

TRACE_ID = "moby.buildkit.trace"

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class Vertex:
    """One step of the build graph, as far as this update tells."""

    digest: str
    name: str = ""
    cached: bool = False
    started: bool = False
    completed: bool = False
    error: str = ""


@dataclass(frozen=True)
class VertexLog:
    """Output of a step: a chunk of its stdout or stderr (not split at line ends)."""

    vertex: str
    data: bytes


@dataclass(frozen=True)
class Status:
    """One ``StatusResponse``: the steps it updates and the output it carries."""

    vertexes: tuple[Vertex, ...] = ()
    logs: tuple[VertexLog, ...] = ()


def decode_trace(aux: object) -> Status:
    """The ``aux`` of a ``moby.buildkit.trace`` message (base64) decoded."""
    if not isinstance(aux, str):
        raise PipelineError(f"BuildKit sent a trace that is not base64 text: {aux!r:.80}")
    try:
        data = base64.b64decode(aux, validate=True)
    except binascii.Error as err:
        raise PipelineError(f"BuildKit sent a trace that is not base64: {err}") from err
    return decode_status(data)


def decode_status(data: bytes) -> Status:
    """A ``StatusResponse`` from its protobuf bytes."""
    vertexes: list[Vertex] = []
    logs: list[VertexLog] = []
    for number, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            vertexes.append(_vertex(value))
        elif number == 3 and isinstance(value, bytes):
            logs.append(_log(value))
    return Status(tuple(vertexes), tuple(logs))


def _vertex(data: bytes) -> Vertex:
    digest = name = error = ""
    cached = started = completed = False
    for number, value in _fields(data):
        if number == 1:
            digest = _string(value)
        elif number == 3:
            name = _string(value)
        elif number == 4:
            cached = bool(value)
        elif number == 5:
            started = True
        elif number == 6:
            completed = True
        elif number == 7:
            error = _string(value)
    return Vertex(digest, name, cached, started, completed, error)


def _log(data: bytes) -> VertexLog:
    vertex, msg = "", b""
    for number, value in _fields(data):
        if number == 1:
            vertex = _string(value)
        elif number == 4 and isinstance(value, bytes):
            msg = value
    return VertexLog(vertex, msg)


def _string(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise _malformed("a string field holds a number")
    return value.decode("utf-8", "replace")


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """``(field number, value)``: an int for varints and fixed fields, bytes for the rest."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == _BYTES:
            size, pos = _varint(data, pos)
            if pos + size > end:
                raise _malformed("a field runs past the end")
            yield number, data[pos : pos + size]
            pos += size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            if pos + width > end:
                raise _malformed("a field runs past the end")
            yield number, int.from_bytes(data[pos : pos + width], "little")
            pos += width
        else:
            raise _malformed(f"wire type {wire} is not one proto3 writes")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _malformed("a varint is cut off or too long")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _malformed(why: str) -> PipelineError:
    return PipelineError(f"BuildKit sent a progress message ocibuild cannot read: {why}")
