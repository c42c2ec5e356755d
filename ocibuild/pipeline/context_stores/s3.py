"""The context store ``s3``: build contexts as objects in an S3 (or S3-compatible) bucket.

:meth:`S3ContextStore.put` hands the tarball to boto3's managed transfer as a stream that
cannot seek, so the transfer reads it once, in order: a context below ``multipart_threshold``
goes up in one PutObject, a larger one as a multipart upload of ``multipart_chunksize`` parts
sent ``max_concurrency`` at a time (that many parts, plus one, are what the store holds in
memory). Every request carries a SHA-256 checksum that S3 checks on receipt; the store hashes
the bytes as the transfer reads them and compares the object S3 reports afterwards (size,
then its SHA-256, or, from a store that keeps no checksums, an MD5 ETag), deleting it when
they differ.

Endpoint: ``endpoint_url``, else ``$AWS_ENDPOINT_URL_S3``, else ``$AWS_ENDPOINT_URL`` (as
boto3 and the AWS CLI read them), else AWS. Path-style addressing is the default with an
endpoint (MinIO and most S3-compatible stores need it). Credentials come from boto3's usual
chain (environment, shared files, ``profile``, instance or pod identity); the build pod gets
the ``credentials_secret`` Secret's keys, or nothing, for a pod with its own identity (IRSA,
EKS Pod Identity, an instance profile).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, BinaryIO

from ..._errors import DigestMismatchError, InvalidOptionError
from .._errors import ContextStoreError, PipelineError
from .._protocols import EnvVar, ExecutorContext
from ._common import normal_prefix, opened, read_exact
from ._s3_errors import client_error, request_error

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "DEFAULT_PREFIX",
    "DEFAULT_THRESHOLD",
    "ENDPOINT_ENV",
    "HashingReader",
    "MIN_CHUNKSIZE",
    "S3ContextStore",
    "parse_s3_url",
]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "ocibuild/contexts/"
DEFAULT_THRESHOLD = 8 * 1024 * 1024
DEFAULT_CHUNKSIZE = 8 * 1024 * 1024
MIN_CHUNKSIZE = 5 * 1024 * 1024  # S3 refuses smaller parts (all but the last)
ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# A presigned URL signed with SigV4 is valid for seven days at most.
MAX_EXPIRY = 7 * 24 * 3600
DEFAULT_EXPIRY = 3600
# No Content-Encoding: a gzip tarball must reach Kaniko as the bytes it is.
CONTENT_TYPE = "application/octet-stream"
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class S3ContextStore:
    """Build contexts in the bucket ``bucket`` (or ``s3://BUCKET/PREFIX``) under ``prefix``
    (default ``ocibuild/contexts/``).

    ``region``: the bucket's (default: boto3's, else ``us-east-1``). ``endpoint_url`` and
    ``path_style``: see the module. ``profile``: a named AWS profile. ``credentials_secret``:
    a Secret in the build's namespace holding ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` (and optionally ``AWS_SESSION_TOKEN``) for the build pod.
    ``presign_expiry``: seconds the URL of :attr:`ExecutorContext.fetch_url` stays valid.
    ``checksums=False``: send no SHA-256 checksums, for S3-compatible stores that refuse them
    (some older MinIO, Ceph and other releases); the upload is then checked by size and ETag.
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        path_style: bool | str | None = None,
        profile: str | None = None,
        credentials_secret: str | None = None,
        multipart_threshold: int | str = DEFAULT_THRESHOLD,
        multipart_chunksize: int | str = DEFAULT_CHUNKSIZE,
        max_concurrency: int | str = 4,
        presign_expiry: int | str = DEFAULT_EXPIRY,
        checksums: bool | str = True,
    ) -> None:
        self.bucket, from_url = _split_bucket(bucket)
        if from_url is not None and prefix is not None:
            raise InvalidOptionError(
                f"s3: bucket {bucket!r} already names a prefix; drop prefix={prefix!r} or "
                "give the bucket alone"
            )
        self.prefix = normal_prefix(
            "s3", from_url if from_url is not None else prefix, DEFAULT_PREFIX
        )
        self.endpoint_url = _endpoint(endpoint_url)
        self.path_style = _flag("path_style", path_style, self.endpoint_url is not None)
        self.profile = profile
        self.credentials_secret = credentials_secret or None
        self.multipart_threshold = _count("multipart_threshold", multipart_threshold, 1)
        self.multipart_chunksize = _count("multipart_chunksize", multipart_chunksize, MIN_CHUNKSIZE)
        self.max_concurrency = _count("max_concurrency", max_concurrency, 1)
        self.presign_expiry = _count("presign_expiry", presign_expiry, 1)
        if self.presign_expiry > MAX_EXPIRY:
            raise InvalidOptionError(
                f"s3: presign_expiry {presign_expiry!r} is over {MAX_EXPIRY} s (7 days), the "
                "longest a SigV4 presigned URL lives"
            )
        self.checksums = _flag("checksums", checksums, True)
        self._region = region
        self._lock = threading.Lock()
        self._client: Any = None

    def __repr__(self) -> str:
        return (
            f"S3ContextStore(bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"endpoint={self.where!r})"
        )

    @property
    def where(self) -> str:
        """The endpoint, as errors name it."""
        return self.endpoint_url or "AWS S3"

    @property
    def region(self) -> str:
        """The bucket's region: the option, else boto3's configured one, else us-east-1."""
        return self._region or self.client.meta.region_name or "us-east-1"

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use (boto3 is imported then)."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    # -- the ContextStore protocol ---------------------------------------------------

    def put(self, context: Path | BinaryIO, key: str) -> str:
        """Upload the tarball (a file, or a binary stream read to its end) as
        ``PREFIX + key``; return its ``s3://`` URL."""
        from boto3.s3.transfer import TransferConfig

        name = _object_key(self.prefix + key)
        url = f"s3://{self.bucket}/{name}"
        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            # The classic manager reads the stream in part-sized pieces, in order (the CRT
            # one, when installed, chooses its own parts), so the checksums computed while
            # reading are the parts' own.
            preferred_transfer_client="classic",
        )
        # Parts read ahead of their upload: what bounds the store's memory.
        config.max_in_memory_upload_chunks = self.max_concurrency + 1
        extra = {"ContentType": CONTENT_TYPE}
        if self.checksums:
            extra["ChecksumAlgorithm"] = "SHA256"
        with opened("s3", context) as source:
            reader = HashingReader(source, self.multipart_chunksize)
            with self._errors("uploading the build context to", url):
                self.client.upload_fileobj(
                    reader, self.bucket, name, ExtraArgs=extra, Config=config
                )
        self.verify(url, reader, multipart=reader.size >= self.multipart_threshold)
        log.info("stored the build context as %s (%d bytes)", url, reader.size)
        return url

    def delete(self, url: str) -> None:
        """Delete the object at ``url`` (``s3://BUCKET/KEY``); one already gone is fine."""
        bucket, name = parse_s3_url(url)
        with self._errors("deleting", url, missing_ok=True):
            self.client.delete_object(Bucket=bucket, Key=name)

    # -- ExecutorContextStore --------------------------------------------------------

    def executor_context(self, url: str) -> ExecutorContext:
        """Kaniko's ``s3://`` context with its region, endpoint and credentials in the env;
        ``fetch_url`` a presigned GET, for executors that read only a local directory."""
        bucket, name = parse_s3_url(url)
        env: list[EnvVar] = [{"name": "AWS_REGION", "value": self.region}]
        if self.endpoint_url is not None:
            env += [
                {"name": "S3_ENDPOINT", "value": self.endpoint_url},
                {"name": "AWS_ENDPOINT_URL_S3", "value": self.endpoint_url},
            ]
        env.append({"name": "S3_FORCE_PATH_STYLE", "value": str(self.path_style).lower()})
        if self.credentials_secret is not None:
            env += [_from_secret(self.credentials_secret, key) for key in SECRET_KEYS]
            env.append(_from_secret(self.credentials_secret, "AWS_SESSION_TOKEN", optional=True))
        with self._errors("presigning", url):
            fetch_url = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": name},
                ExpiresIn=self.presign_expiry,
            )
        return ExecutorContext(url, env=tuple(env), fetch_url=str(fetch_url))

    # -- steps -----------------------------------------------------------------------

    def verify(self, url: str, sent: HashingReader, *, multipart: bool) -> None:
        """The object at ``url`` holds what ``sent`` read (one PutObject, or parts of
        ``sent.part_size``), or it is deleted and a DigestMismatchError raised."""
        _, name = parse_s3_url(url)
        with self._errors("checking", url):
            head = self.client.head_object(Bucket=self.bucket, Key=name, ChecksumMode="ENABLED")
        size = head.get("ContentLength")
        checksum = head.get("ChecksumSHA256")
        etag = str(head.get("ETag", "")).strip('"')
        if size != sent.size:
            what = f"{size} bytes, not the {sent.size} bytes that were sent"
        elif checksum:
            wanted = sent.composite_sha256() if multipart else sent.sha256_b64()
            if checksum.split("-")[0] == wanted:
                return
            what = f"SHA-256 {checksum}, not the {wanted} of the bytes sent"
        elif _md5_etag(etag) and not _encrypted(head):
            wanted = sent.composite_md5() if multipart else sent.md5.hexdigest()
            if etag == wanted:
                return
            what = f"ETag {etag}, not the MD5 {wanted} of the bytes sent"
        else:
            log.debug("%s: %s reports no checksum; checked by size alone", url, self.where)
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=name)
            done = "the object was deleted"
        except Exception:  # the mismatch is the error to report; say the object is left
            done = "deleting it failed too: delete it"
        raise DigestMismatchError(
            f"s3: {self.where} stored {url} as {what}; {done}, and put the context again"
        )

    def _errors(self, doing: str, url: str, *, missing_ok: bool = False) -> _S3Errors:
        return _S3Errors(self, doing, url, missing_ok)

    def _make_client(self) -> Any:
        boto3 = _import_boto3()
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        try:
            session = boto3.session.Session(profile_name=self.profile)
        except BotoCoreError as err:
            raise request_error(
                self, "opening the AWS profile for", f"s3://{self.bucket}", err
            ) from None
        config = Config(
            region_name=self._region or session.region_name or "us-east-1",
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.path_style else "auto"},
            connect_timeout=15,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 5},
            # Without checksums, none of botocore's own either (CRC32 since 1.36).
            request_checksum_calculation="when_supported" if self.checksums else "when_required",
        )
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)


class _S3Errors:
    """Turns boto3's errors inside a ``with`` into one-line :class:`ContextStoreError`\\ s."""

    def __init__(self, store: S3ContextStore, doing: str, url: str, missing_ok: bool) -> None:
        self.store, self.doing, self.url, self.missing_ok = store, doing, url, missing_ok

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, err: BaseException | None, trace: object) -> bool:
        if err is None or isinstance(err, PipelineError):
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(err, ClientError):
            code = str(err.response.get("Error", {}).get("Code", ""))
            if self.missing_ok and code in ("NoSuchKey", "NoSuchBucket", "404"):
                return True
            raise client_error(self.store, self.doing, self.url, err) from None
        if isinstance(err, BotoCoreError):
            raise request_error(self.store, self.doing, self.url, err) from None
        return False


class HashingReader:
    """The context as the transfer reads it: whole reads, hashed on the way, and no ``seek``,
    so boto3 reads it once and in order, each part being the next ``part_size`` bytes."""

    def __init__(self, source: BinaryIO, part_size: int) -> None:
        self.source = source
        self.part_size = part_size
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.part_md5s: list[bytes] = []
        self.part_sha256s: list[bytes] = []
        self._part: tuple[Any, Any] | None = None
        self._in_part = 0

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        data = read_exact(self.source, size)
        self.size += len(data)
        self.md5.update(data)
        self.sha256.update(data)
        view = memoryview(data)
        while view:
            if self._part is None:
                self._part = (hashlib.md5(usedforsecurity=False), hashlib.sha256())
            take = view[: self.part_size - self._in_part]
            for digest in self._part:
                digest.update(take)
            self._in_part += len(take)
            view = view[len(take) :]
            if self._in_part == self.part_size:
                self._end_part()
        return data

    def _end_part(self) -> None:
        if self._part is not None:
            self.part_md5s.append(self._part[0].digest())
            self.part_sha256s.append(self._part[1].digest())
        self._part, self._in_part = None, 0

    def sha256_b64(self) -> str:
        return base64.b64encode(self.sha256.digest()).decode()

    def composite_sha256(self) -> str:
        """S3's checksum of a multipart object: the SHA-256 of its parts' SHA-256s."""
        self._end_part()
        return base64.b64encode(hashlib.sha256(b"".join(self.part_sha256s)).digest()).decode()

    def composite_md5(self) -> str:
        """S3's ETag of a multipart object: the MD5 of its parts' MD5s, ``-`` their count."""
        self._end_part()
        joined = hashlib.md5(b"".join(self.part_md5s), usedforsecurity=False).hexdigest()
        return f"{joined}-{len(self.part_md5s)}"


# -- names and options -----------------------------------------------------------------


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/KEY`` -> (bucket, key)."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InvalidOptionError(f"s3: {url!r} is not an s3://BUCKET/KEY URL")
    bucket, _, name = url[len("s3://") :].partition("/")
    if not name:
        raise InvalidOptionError(f"s3: {url!r} names no object: s3://BUCKET/KEY")
    return _check_bucket(bucket), _object_key(name)


def _check_bucket(name: str) -> str:
    if not isinstance(name, str) or not _BUCKET.fullmatch(name) or ".." in name:
        raise InvalidOptionError(
            f"s3: bucket name {name!r} must be 3 to 63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def _split_bucket(bucket: str) -> tuple[str, str | None]:
    """``bucket`` or ``s3://bucket[/prefix]`` -> (bucket, the prefix it names, if any)."""
    if isinstance(bucket, str) and bucket.startswith("s3://"):
        name, slash, prefix = bucket[len("s3://") :].partition("/")
        return _check_bucket(name), (prefix if slash and prefix else None)
    return _check_bucket(bucket), None


def _object_key(name: str) -> str:
    if not name or len(name.encode("utf-8", "surrogatepass")) > 1024:
        raise InvalidOptionError(f"s3: object key {name!r} must be 1 to 1024 bytes of UTF-8")
    return name


def _endpoint(option: str | None) -> str | None:
    """The endpoint option, else the one boto3 and the AWS CLI take from the environment."""
    value, source = option, "endpoint_url"
    ignored = os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"
    if not value and not ignored:
        source, value = next(
            ((n, os.environ[n]) for n in ENDPOINT_ENV if os.environ.get(n)), ("", None)
        )
    if not value:
        return None
    if not re.match(r"https?://[^/]", value):
        raise InvalidOptionError(f"s3: {source} {value!r} is not an http:// or https:// URL")
    return value.rstrip("/")


def _flag(option: str, value: bool | str | None, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    spelled = str(value).strip().lower()
    if spelled in ("1", "true", "yes", "on"):
        return True
    if spelled in ("0", "false", "no", "off"):
        return False
    raise InvalidOptionError(f"s3: {option} {value!r} is not true or false")


def _count(option: str, value: int | str, least: int) -> int:
    number = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(number, bool) or not isinstance(number, int) or number < least:
        raise InvalidOptionError(
            f"s3: {option} {value!r} must be a whole number of at least {least}"
        )
    return number


def _from_secret(secret: str, key: str, *, optional: bool = False) -> EnvVar:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": key, "valueFrom": {"secretKeyRef": ref}}


def _md5_etag(etag: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{32}(-\d+)?", etag) is not None


def _encrypted(head: dict[str, Any]) -> bool:
    # With SSE-KMS or SSE-C, S3's ETag is not the MD5 of the object.
    return head.get("ServerSideEncryption") == "aws:kms" or bool(head.get("SSECustomerAlgorithm"))


def _import_boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ContextStoreError(
            "the s3 context store needs boto3: pip install 'ocibuild[s3]'", store="s3"
        ) from None
    return boto3
