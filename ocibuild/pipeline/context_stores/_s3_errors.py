"""boto3's errors as one-line :class:`ContextStoreError`\\ s that say what to do.

S3's error messages never echo a secret key, but a store behind another S3-compatible server
may echo more (a signature's string to sign, a token): anything shaped like a key or token is
cut from the message before it is shown.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from .._errors import ContextStoreError

__all__ = ["Bucket", "client_error", "request_error"]


class Bucket(Protocol):
    """What an error message names of the store (an :class:`S3ContextStore`)."""

    @property
    def bucket(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def profile(self) -> str | None: ...


_REFUSED = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
}
_DENIED = {"AccessDenied", "AllAccessDisabled", "403", "Forbidden"}
_MOVED = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "301",
}
# Secret access keys are 40 characters of base64; session tokens are longer.
_SECRET_SHAPED = re.compile(r"[A-Za-z0-9/+=]{30,}")


def client_error(store: Bucket, doing: str, url: str, err: Any) -> ContextStoreError:
    """An S3 error answer (botocore's ``ClientError``) as one line."""
    error = err.response.get("Error", {})
    code = str(error.get("Code") or "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    detail = _one_line(str(error.get("Message") or ""))
    said = f"{code}: {detail}" if detail else code or f"HTTP {status}"
    if code in ("NoSuchBucket",) or (code == "404" and doing == "checking"):
        message = (
            f"s3: bucket {store.bucket!r} does not exist at {store.where}: create it, or give "
            "another bucket"
        )
    elif code in _REFUSED:
        message = (
            f"s3: {store.where} refused the credentials while {doing} {url} ({said}): check "
            f"{_credential_sources(store)}"
        )
    elif code in _DENIED:
        message = (
            f"s3: {doing} {url} was denied at {store.where} ({said}): the credentials "
            f"({_credential_sources(store)}) need s3:PutObject, s3:GetObject and "
            "s3:DeleteObject on the bucket"
        )
    elif code in _MOVED:
        region = error.get("Region") or _bucket_region(err) or "another region"
        message = (
            f"s3: bucket {store.bucket!r} is in {region}, not {store.region} ({said}): give "
            "region= the bucket's region"
        )
    else:
        message = f"s3: {doing} {url} failed at {store.where} ({said})"
    return ContextStoreError(message, store="s3", code=code or None)


def request_error(store: Bucket, doing: str, url: str, err: Exception) -> ContextStoreError:
    """A request that got no S3 answer (botocore's ``BotoCoreError``) as one line."""
    from botocore import exceptions

    name = type(err).__name__
    if isinstance(err, exceptions.NoCredentialsError):
        message = (
            f"s3: no AWS credentials found for {doing} {url}: set {_credential_sources(store)}"
        )
    elif isinstance(err, exceptions.ProfileNotFound):
        message = (
            f"s3: the AWS profile {store.profile!r} is in neither ~/.aws/config nor "
            "~/.aws/credentials: give another profile, or none"
        )
    elif isinstance(err, (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError)):
        message = (
            f"s3: cannot reach {store.where} while {doing} {url} ({_one_line(str(err))}): check "
            "endpoint_url (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) and the network"
        )
    elif isinstance(err, exceptions.ReadTimeoutError):
        message = f"s3: {store.where} did not answer in time while {doing} {url}: try again"
    else:
        message = f"s3: {doing} {url} failed at {store.where} ({name}: {_one_line(str(err))})"
    return ContextStoreError(message, store="s3", code=name)


def _credential_sources(store: Bucket) -> str:
    if store.profile:
        return f"the AWS profile {store.profile!r}"
    return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials"


def _bucket_region(err: Any) -> str | None:
    headers = err.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None


def _one_line(text: str) -> str:
    return _SECRET_SHAPED.sub("[...]", " ".join(text.split()))[:300]
