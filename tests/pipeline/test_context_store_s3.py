"""The ``s3`` context store against moto's S3 on loopback: upload, fetch, delete, errors."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ocibuild import DigestMismatchError, InvalidOptionError
from ocibuild.pipeline.context_stores import ContextStoreError, S3ContextStore
from ocibuild.pipeline.context_stores.s3 import MIN_CHUNKSIZE
from tests.support import MotoServer

BUCKET = "ocibuild-contexts"
MiB = 1024 * 1024


@pytest.fixture
def aws(s3_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto's S3 with an empty bucket, and an AWS environment holding only its credentials
    (no profile, no shared files, no endpoint variables of the user's)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    s3_server.client().create_bucket(Bucket=BUCKET)
    return s3_server


def _store(server: MotoServer, **options: Any) -> S3ContextStore:
    return S3ContextStore(BUCKET, endpoint_url=server.url, region=server.region, **options)


class _Pipe(io.RawIOBase):
    """A stream that cannot seek and answers reads with at most 64 KiB, as a pipe does."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 64 * 1024))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_small_context_goes_up_in_one_request_and_comes_back(
    aws: MotoServer, tmp_path: Path
) -> None:
    context = tmp_path / "ctx.tar.gz"
    context.write_bytes(os.urandom(300 * 1024))
    store = _store(aws)

    url = store.put(context, "build-1")

    assert url == f"s3://{BUCKET}/ocibuild/contexts/build-1"
    got = aws.client().get_object(Bucket=BUCKET, Key="ocibuild/contexts/build-1")
    assert got["Body"].read() == context.read_bytes()
    assert got["ContentType"] == "application/octet-stream"
    assert "ContentEncoding" not in got
    assert got["ETag"].strip('"') == hashlib.md5(context.read_bytes()).hexdigest()


def test_a_large_context_is_a_multipart_upload_read_once_from_a_pipe(aws: MotoServer) -> None:
    data = os.urandom(2 * MIN_CHUNKSIZE + 123_457)  # three parts, the last one short
    store = _store(aws, multipart_threshold=MiB, multipart_chunksize=MIN_CHUNKSIZE)

    url = store.put(_Pipe(data), "big")  # type: ignore[arg-type]

    head = aws.client().head_object(Bucket=BUCKET, Key="ocibuild/contexts/big")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == len(data)
    body = aws.client().get_object(Bucket=BUCKET, Key="ocibuild/contexts/big")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    # The executor's fetch step reads it with nothing but the presigned URL.
    fetch_url = store.executor_context(url).fetch_url
    assert fetch_url is not None
    with urllib.request.urlopen(fetch_url, timeout=30) as answer:
        assert hashlib.sha256(answer.read()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("size", [1000, 2 * MIN_CHUNKSIZE + 1], ids=["one-part", "multipart"])
def test_without_checksums_the_upload_is_checked_by_its_etag(aws: MotoServer, size: int) -> None:
    data = os.urandom(size)
    store = _store(
        aws, checksums="false", multipart_threshold=MiB, multipart_chunksize=MIN_CHUNKSIZE
    )

    url = store.put(io.BytesIO(data), "plain")

    key = url.removeprefix(f"s3://{BUCKET}/")
    head = aws.client().head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head
    assert head["ETag"].strip('"').endswith("-3" if size > MiB else hashlib.md5(data).hexdigest())
    # The ETag check is what passed: the same object with other bytes fails it.
    aws.client().put_object(Bucket=BUCKET, Key=key, Body=os.urandom(size))
    from ocibuild.pipeline.context_stores.s3 import HashingReader

    sent = HashingReader(io.BytesIO(data), MIN_CHUNKSIZE)
    sent.read()
    with pytest.raises(DigestMismatchError, match=r"as ETag \S+, not the MD5"):
        store.verify(url, sent, multipart=size > MiB)


def test_the_presigned_url_expires_as_configured_and_needs_no_credentials(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(aws, presign_expiry=900)
    url = store.put(io.BytesIO(b"context bytes"), "signed")

    fetch_url = store.executor_context(url).fetch_url
    assert fetch_url is not None
    query = parse_qs(urlsplit(fetch_url).query)
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert aws.secret_key not in fetch_url
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with urllib.request.urlopen(fetch_url, timeout=30) as answer:
        assert answer.read() == b"context bytes"


def test_delete_removes_the_object_and_deleting_twice_is_fine(aws: MotoServer) -> None:
    store = _store(aws)
    url = store.put(io.BytesIO(b"x" * 1000), "gone")
    listed = aws.client().list_objects_v2(Bucket=BUCKET)
    assert [o["Key"] for o in listed["Contents"]] == ["ocibuild/contexts/gone"]

    store.delete(url)
    store.delete(url)

    assert aws.client().list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_the_endpoint_comes_from_aws_endpoint_url_s3_as_boto3_reads_it(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/not-this-one")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.url)
    store = S3ContextStore(f"s3://{BUCKET}/team/builds", region=aws.region)
    assert (store.endpoint_url, store.path_style, store.prefix) == (aws.url, True, "team/builds/")

    url = store.put(io.BytesIO(b"from the env"), "k")

    assert url == f"s3://{BUCKET}/team/builds/k"
    got = aws.client().get_object(Bucket=BUCKET, Key="team/builds/k")["Body"].read()
    assert got == b"from the env"
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    assert S3ContextStore(BUCKET).endpoint_url == "http://127.0.0.1:9/not-this-one"
    assert S3ContextStore(BUCKET, endpoint_url=aws.url).endpoint_url == aws.url
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert (S3ContextStore(BUCKET).endpoint_url, S3ContextStore(BUCKET).path_style) == (None, False)


def test_the_executor_gets_the_endpoint_region_path_style_and_the_named_secret(
    aws: MotoServer,
) -> None:
    store = _store(aws, credentials_secret="build-s3", path_style="false")
    url = store.put(io.BytesIO(b"ctx"), "exec")

    executor = store.executor_context(url)

    assert executor.url == url
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in executor.env}
    assert env["AWS_REGION"] == aws.region
    assert env["S3_ENDPOINT"] == aws.url
    assert env["S3_FORCE_PATH_STYLE"] == "false"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "build-s3", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "build-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    assert env["AWS_SESSION_TOKEN"] == {
        "secretKeyRef": {"name": "build-s3", "key": "AWS_SESSION_TOKEN", "optional": True}
    }
    assert aws.secret_key not in repr(executor)
    # Without a secret the pod is left to its own identity (IRSA, an instance profile).
    plain = _store(aws).executor_context(url)
    names = {e["name"] for e in plain.env}
    assert names == {"AWS_REGION", "S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "S3_FORCE_PATH_STYLE"}
    assert {e["name"]: e.get("value") for e in plain.env}["S3_FORCE_PATH_STYLE"] == "true"


def test_a_missing_bucket_is_one_line(aws: MotoServer) -> None:
    store = S3ContextStore("no-such-bucket", endpoint_url=aws.url, region=aws.region)

    with pytest.raises(ContextStoreError) as err:
        store.put(io.BytesIO(b"ctx"), "k")

    assert str(err.value) == (
        f"s3: bucket 'no-such-bucket' does not exist at {aws.url}: create it, or give another "
        "bucket"
    )
    assert err.value.code == "NoSuchBucket"


def test_refused_credentials_are_one_line_without_the_secret(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_secret = "wrongWRONGwrong/secret+key0123456789abcd"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)
    aws.check_credentials()

    with pytest.raises(ContextStoreError) as err:
        _store(aws).put(io.BytesIO(b"ctx"), "k")

    message = str(err.value)
    assert message.startswith(f"s3: {aws.url} refused the credentials while uploading ")
    assert "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message
    assert "\n" not in message and wrong_secret not in message
    assert err.value.code == "InvalidAccessKeyId"


def test_an_unreachable_endpoint_is_one_line(aws: MotoServer) -> None:
    store = S3ContextStore(BUCKET, endpoint_url="http://127.0.0.1:9", region="us-east-1")

    with pytest.raises(ContextStoreError) as err:
        store.put(io.BytesIO(b"ctx"), "k")

    message = str(err.value)
    assert message.startswith("s3: cannot reach http://127.0.0.1:9 while uploading ")
    assert "\n" not in message and aws.secret_key not in message


def test_no_credentials_at_all_is_one_line(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # No instance metadata service to ask on this machine: do not wait for one.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(ContextStoreError, match=r"^s3: no AWS credentials found for uploading"):
        _store(aws).put(io.BytesIO(b"ctx"), "k")


def test_an_object_that_is_not_what_was_sent_is_deleted(aws: MotoServer) -> None:
    # Another writer replaced the object between the upload and its check: S3 now reports
    # other bytes than the store sent, and the store must not hand that URL on.
    store = _store(aws)
    url = store.put(io.BytesIO(b"what was sent"), "raced")
    aws.client().put_object(
        Bucket=BUCKET,
        Key="ocibuild/contexts/raced",
        Body=b"what S3 holds",
        ChecksumAlgorithm="SHA256",
    )
    from ocibuild.pipeline.context_stores.s3 import HashingReader

    sent = HashingReader(io.BytesIO(b"what was sent"), MIN_CHUNKSIZE)
    sent.read()

    with pytest.raises(DigestMismatchError, match="the object was deleted"):
        store.verify(url, sent, multipart=False)

    assert aws.client().list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bucket": "Not_A_Bucket"}, r"bucket name 'Not_A_Bucket' must be 3 to 63"),
        ({"bucket": BUCKET, "multipart_chunksize": MiB}, r"multipart_chunksize 1048576 must"),
        (
            {"bucket": BUCKET, "presign_expiry": 8 * 24 * 3600},
            r"presign_expiry 691200 is over 604800 s \(7 days\)",
        ),
        ({"bucket": BUCKET, "endpoint_url": "minio:9000"}, r"endpoint_url 'minio:9000' is not"),
        ({"bucket": BUCKET, "path_style": "sometimes"}, r"path_style 'sometimes' is not true"),
        (
            {"bucket": f"s3://{BUCKET}/p", "prefix": "q"},
            rf"bucket 's3://{BUCKET}/p' already names a prefix",
        ),
    ],
)
def test_bad_options_are_one_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOptionError, match=f"^s3: {message}"):
        S3ContextStore(**options)


def test_the_store_is_the_builtin_s3_context_store(aws: MotoServer) -> None:
    from ocibuild.pipeline._plugins import lookup
    from ocibuild.pipeline._run import create

    assert lookup("context_store", "s3") is S3ContextStore
    store = create("context_store", "s3", {"bucket": BUCKET, "endpoint_url": aws.url})
    assert store.put(io.BytesIO(b"by name"), "named") == f"s3://{BUCKET}/ocibuild/contexts/named"
