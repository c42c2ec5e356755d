"""The ``gcs`` context store against the Cloud Storage emulator: uploads of every kind, resumed
after failures, verified, deleted; names and endpoints."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
from pathlib import Path

import pytest
from ocibuild import DigestMismatchError, InvalidOptionError, SourceError
from ocibuild.plugins import lookup, reset_plugins

from ocibuild_gcp import GcpAuthError, GcsContextStore, GoogleApiError
from tests.emulators._gcs import CHUNK_QUANTUM, GcsEmulator
from tests.emulators._server import Request
from tests.fixtures_auth import ADC
from tests.fixtures_gcs import TEST_BUCKET

KIB = 1024
UPLOAD = r"/upload/storage/v1/b/ocibuild-test/o"


def _data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _store(gcs: GcsEmulator, chunk_size: int = CHUNK_QUANTUM) -> GcsContextStore:
    return GcsContextStore(TEST_BUCKET, chunk_size=chunk_size, api_endpoint=gcs.url)


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "context.tar.gz"
    path.write_bytes(data)
    return path


def _session_puts(gcs: GcsEmulator) -> list[Request]:
    return gcs.received("PUT", UPLOAD)


class _Pipe(io.RawIOBase):
    """A stream that cannot seek and answers reads in short pieces, like a pipe."""

    def __init__(self, data: bytes, piece: int = 10_000) -> None:
        self._data, self._at, self._piece = data, 0, piece

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        part = self._data[self._at : self._at + min(len(buffer), self._piece)]
        buffer[: len(part)] = part
        self._at += len(part)
        return len(part)


# -- uploads -----------------------------------------------------------------------------


def test_a_small_context_is_one_multipart_request_with_its_md5(
    gcs: GcsEmulator, tmp_path: Path, adc: ADC
) -> None:
    data = _data(100 * KIB)
    url = _store(gcs).put(_file(tmp_path, data), "sha256-abc.tar.gz")

    assert url == f"gs://{TEST_BUCKET}/ocibuild/contexts/sha256-abc.tar.gz"
    assert gcs.data(TEST_BUCKET, "ocibuild/contexts/sha256-abc.tar.gz") == data
    (post,) = gcs.received("POST", UPLOAD)
    assert post.param("uploadType") == "multipart"
    assert adc.token_server.valid(post.bearer)
    metadata = json.loads(post.body.split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[0])
    assert metadata == {
        "name": "ocibuild/contexts/sha256-abc.tar.gz",
        "contentType": "application/octet-stream",
        "md5Hash": _md5(data),
    }
    assert not _session_puts(gcs)


def test_a_large_context_goes_up_in_chunks_the_last_with_the_total_and_md5(
    gcs: GcsEmulator, tmp_path: Path
) -> None:
    data = _data(2 * CHUNK_QUANTUM + 100 * KIB)
    _store(gcs).put(_file(tmp_path, data), "big")

    assert gcs.data(TEST_BUCKET, "ocibuild/contexts/big") == data
    (start,) = gcs.received("POST", UPLOAD)
    assert start.param("uploadType") == "resumable"
    assert start.param("name") == "ocibuild/contexts/big"
    puts = _session_puts(gcs)
    q, total = CHUNK_QUANTUM, len(data)
    assert [p.headers["content-range"] for p in puts] == [
        f"bytes 0-{q - 1}/*",
        f"bytes {q}-{2 * q - 1}/*",
        f"bytes {2 * q}-{total - 1}/{total}",
    ]
    assert [p.headers.get("x-goog-hash") for p in puts] == [None, None, f"md5={_md5(data)}"]
    # The session URI is the authorization: no token goes with it.
    assert all(p.bearer is None for p in puts)
    assert gcs.media_bytes == total


def test_a_context_of_whole_chunks_ends_with_an_empty_request_naming_the_total(
    gcs: GcsEmulator, tmp_path: Path
) -> None:
    data = _data(2 * CHUNK_QUANTUM)
    _store(gcs).put(_file(tmp_path, data), "even")

    assert gcs.data(TEST_BUCKET, "ocibuild/contexts/even") == data
    ranges = [p.headers["content-range"] for p in _session_puts(gcs)]
    assert ranges[-1] == f"bytes */{len(data)}"
    assert _session_puts(gcs)[-1].headers["x-goog-hash"] == f"md5={_md5(data)}"


def test_a_stream_that_cannot_seek_is_read_once_to_its_end(gcs: GcsEmulator) -> None:
    data = _data(3 * CHUNK_QUANTUM + 1)
    stream = io.BufferedReader(_Pipe(data), buffer_size=4096)
    assert not stream.seekable()

    url = _store(gcs).put(stream, "piped")

    assert url.endswith("/piped") and gcs.data(TEST_BUCKET, "ocibuild/contexts/piped") == data
    assert stream.read() == b""
    assert not stream.closed  # the caller's stream stays the caller's


def test_a_small_stream_is_one_request(gcs: GcsEmulator) -> None:
    _store(gcs).put(io.BytesIO(b"tiny"), "tiny")
    assert gcs.data(TEST_BUCKET, "ocibuild/contexts/tiny") == b"tiny"
    assert [r.param("uploadType") for r in gcs.received("POST", UPLOAD)] == ["multipart"]


# -- failures on the way -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop", "503"])
def test_an_interrupted_chunk_resumes_where_the_session_stopped(
    gcs: GcsEmulator, tmp_path: Path, kind: str
) -> None:
    chunk = 2 * CHUNK_QUANTUM
    data = _data(2 * chunk + 50 * KIB)
    # The second chunk's request breaks after the session kept its first 256 KiB.
    gcs.fail_chunk(2, "drop" if kind == "drop" else "503", persist=CHUNK_QUANTUM)

    _store(gcs, chunk).put(_file(tmp_path, data), "resumed")

    assert gcs.data(TEST_BUCKET, "ocibuild/contexts/resumed") == data
    # Only the 256 KiB the session had not kept went again.
    assert gcs.media_bytes == len(data) + CHUNK_QUANTUM
    ranges = [p.headers["content-range"] for p in _session_puts(gcs)]
    assert ranges == [
        f"bytes 0-{chunk - 1}/*",
        f"bytes {chunk}-{2 * chunk - 1}/*",
        "bytes */*",  # what do you have?
        f"bytes {chunk + CHUNK_QUANTUM}-{2 * chunk - 1}/*",
        f"bytes {2 * chunk}-{len(data) - 1}/{len(data)}",
    ]


def test_a_stream_resumes_too_from_the_chunk_in_memory(gcs: GcsEmulator) -> None:
    data = _data(3 * CHUNK_QUANTUM + 7)
    gcs.fail_chunk(2, "drop", persist=0)

    _store(gcs).put(io.BufferedReader(_Pipe(data)), "piped")

    assert gcs.data(TEST_BUCKET, "ocibuild/contexts/piped") == data
    assert gcs.media_bytes == len(data) + CHUNK_QUANTUM


def test_a_lost_answer_to_the_last_chunk_is_asked_for(gcs: GcsEmulator, tmp_path: Path) -> None:
    data = _data(CHUNK_QUANTUM + 10)
    gcs.fail_chunk(2, "drop", persist=10)  # all of it kept, the answer never sent

    _store(gcs).put(_file(tmp_path, data), "last")

    assert gcs.data(TEST_BUCKET, "ocibuild/contexts/last") == data
    assert _session_puts(gcs)[-1].headers["content-range"] == f"bytes */{len(data)}"
    assert gcs.media_bytes == len(data)


def test_an_expired_session_is_one_line_without_the_session_uri(
    gcs: GcsEmulator, tmp_path: Path
) -> None:
    gcs.fail_chunk(2, "expire")
    with pytest.raises(GoogleApiError) as caught:
        _store(gcs).put(_file(tmp_path, _data(3 * CHUNK_QUANTUM)), "gone")
    message = str(caught.value)
    assert "\n" not in message and "upload_id" not in message and "upload-" not in message
    assert f"gs://{TEST_BUCKET}/ocibuild/contexts/gone" in message
    assert "404" in message and "put the context again" in message
    assert caught.value.status == 404


@pytest.mark.parametrize("size", [10 * KIB, 2 * CHUNK_QUANTUM + 3])
def test_an_object_stored_wrong_is_refused_and_deleted(
    gcs: GcsEmulator, tmp_path: Path, size: int
) -> None:
    gcs.corrupt = True
    with pytest.raises(DigestMismatchError) as caught:
        _store(gcs).put(_file(tmp_path, _data(size)), "bad")
    message = str(caught.value)
    assert "\n" not in message and "MD5" in message and "deleted" in message
    assert (TEST_BUCKET, "ocibuild/contexts/bad") not in gcs.objects
    assert gcs.received("DELETE")


# -- delete, names, endpoints, credentials -----------------------------------------------


def test_delete_removes_the_object_and_a_second_delete_is_fine(
    gcs: GcsEmulator, tmp_path: Path
) -> None:
    key = "a dir/ctx+1?x=#ü%20.tar.gz"
    store = _store(gcs)
    url = store.put(_file(tmp_path, b"context"), key)
    assert url == f"gs://{TEST_BUCKET}/ocibuild/contexts/{key}"
    assert gcs.data(TEST_BUCKET, f"ocibuild/contexts/{key}") == b"context"

    store.delete(url)
    store.delete(url)

    assert not gcs.objects
    deletes = gcs.received("DELETE")
    assert len(deletes) == 2
    encoded = "ocibuild%2Fcontexts%2Fa%20dir%2Fctx%2B1%3Fx%3D%23%C3%BC%2520.tar.gz"
    assert deletes[0].path == f"/storage/v1/b/{TEST_BUCKET}/o/{encoded}"


def test_storage_emulator_host_needs_no_credentials(
    gcs_anonymous: GcsEmulator, tmp_path: Path
) -> None:
    store = GcsContextStore(f"gs://{TEST_BUCKET}/builds", chunk_size=CHUNK_QUANTUM)
    assert store.endpoint == gcs_anonymous.url  # http:// added to 127.0.0.1:PORT

    small = store.put(_file(tmp_path, b"x" * 10), "small")
    large = store.put(io.BytesIO(_data(CHUNK_QUANTUM + 1)), "large")

    assert (small, large) == (
        f"gs://{TEST_BUCKET}/builds/small",
        f"gs://{TEST_BUCKET}/builds/large",
    )
    assert all(r.bearer is None for r in gcs_anonymous.requests)
    store.delete(small)
    assert list(gcs_anonymous.objects) == [(TEST_BUCKET, "builds/large")]


def test_an_explicit_endpoint_needs_credentials(gcs_anonymous: GcsEmulator, tmp_path: Path) -> None:
    store = GcsContextStore(TEST_BUCKET, api_endpoint=gcs_anonymous.url)
    with pytest.raises(GcpAuthError) as caught:
        store.put(_file(tmp_path, b"x"), "k")
    assert "no Google credentials found" in str(caught.value)
    assert not gcs_anonymous.requests


def test_a_refused_token_is_one_line_naming_the_credentials(
    gcs: GcsEmulator, tmp_path: Path, adc: ADC
) -> None:
    gcs.refuse_tokens = True
    with pytest.raises(GcpAuthError) as caught:
        _store(gcs).put(_file(tmp_path, b"x"), "k")
    message = str(caught.value)
    assert "\n" not in message and "401" in message and str(adc.key_file) in message
    sent = {r.bearer for r in gcs.requests}
    assert len(sent) == 2  # the token, then a new one after the first 401
    assert not any(token and token in message for token in sent)


def test_a_missing_bucket_is_the_api_s_error(gcs: GcsEmulator, tmp_path: Path) -> None:
    store = GcsContextStore("no-such-bucket", api_endpoint=gcs.url)
    with pytest.raises(GoogleApiError) as caught:
        store.put(_file(tmp_path, b"x"), "k")
    assert caught.value.status == 404 and "bucket does not exist" in str(caught.value)


@pytest.mark.parametrize(
    "bucket",
    [
        "",
        "UPPER",
        "ab",
        "-leading",
        "trailing-",
        "a" * 64,
        "with space",
        "192.168.0.1",
        "goog-bucket",
        "my-google-stuff",
        "gs://Bad/prefix",
        "gs://",
    ],
)
def test_a_bad_bucket_name_is_one_line(bucket: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        GcsContextStore(bucket)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("gcs: bucket name")


def test_bucket_spellings_and_options() -> None:
    store = GcsContextStore("gs://my_bucket.example.com/team/builds", chunk_size="524288")
    assert (store.bucket, store.prefix, store.chunk_size) == (
        "my_bucket.example.com",
        "team/builds/",
        512 * KIB,
    )
    assert GcsContextStore("gs://b-1").prefix == "ocibuild/contexts/"
    assert GcsContextStore("b-1", prefix="").prefix == ""
    assert GcsContextStore("b-1", project="p").endpoint == "https://storage.googleapis.com"
    with pytest.raises(InvalidOptionError, match="already names a prefix"):
        GcsContextStore("gs://b-1/x", prefix="y")
    for size in (1000, 0, -CHUNK_QUANTUM, "lots"):
        with pytest.raises(InvalidOptionError, match="multiple of 256 KiB"):
            GcsContextStore("b-1", chunk_size=size)
    with pytest.raises(InvalidOptionError, match="not an http"):
        GcsContextStore("b-1", api_endpoint="storage.example.com")


def test_bad_keys_urls_and_files_are_one_line(tmp_path: Path) -> None:
    store = GcsContextStore("b-1")
    with pytest.raises(InvalidOptionError, match="line break"):
        store.put(io.BytesIO(b""), "a\nb")
    with pytest.raises(InvalidOptionError, match="1 to 1024 bytes"):
        store.put(io.BytesIO(b""), "x" * 1100)
    with pytest.raises(SourceError, match="cannot read the build context"):
        store.put(tmp_path / "missing.tar.gz", "k")
    for url in ("s3://b-1/x", "gs://b-1", "gs://B/x"):
        with pytest.raises(InvalidOptionError):
            store.delete(url)


def test_ocibuild_finds_the_store_by_name() -> None:
    reset_plugins()
    try:
        assert lookup("context_store", "gcs") is GcsContextStore
    finally:
        reset_plugins()
