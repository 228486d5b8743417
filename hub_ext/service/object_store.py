"""The governed bucket, reached with the service's own S3 key pair (aiobotocore).

Objects are named by ``s3://<bucket>/<key>`` URIs throughout. Presigned URLs let a process with
no credentials (the evaluation Job) read or write one object for a limited time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 60.0
_MISSING_CODES = ("NoSuchKey", "404", "NotFound", "NoSuchBucket")


class StoreUnavailable(Exception):
    """The object store did not answer, or refused the service's request."""


class ObjectMissing(Exception):
    """No object under the URI."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"there is no object at {uri}")
        self.uri = uri


def split_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; ``ValueError`` for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return bucket, key


def join_uri(prefix_uri: str, *parts: str) -> str:
    """``prefix_uri`` with ``parts`` appended, one ``/`` between each."""
    return "/".join([prefix_uri.rstrip("/"), *(part.strip("/") for part in parts)])


class ObjectStore:
    """A small async client of one S3-compatible store."""

    def __init__(
        self,
        endpoint_url: str,
        access_key_id: str,
        secret_access_key: str,
        region: str = DEFAULT_REGION,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": 2, "mode": "standard"},
        )

    def __repr__(self) -> str:
        return f"ObjectStore({self.endpoint_url!r})"

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        session = get_session()
        async with session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self._access_key_id,
            aws_secret_access_key=self._secret_access_key,
            config=self._config,
        ) as client:
            yield client

    async def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        async with self._client() as client:
            try:
                await client.head_bucket(Bucket=bucket)
                return
            except ClientError as exc:
                if _code(exc) not in _MISSING_CODES:
                    raise _unavailable(exc, f"s3://{bucket}") from None
            except BotoCoreError as exc:
                raise _unavailable(exc, f"s3://{bucket}") from None
            try:
                await client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise _unavailable(exc, f"s3://{bucket}") from None
            except BotoCoreError as exc:
                raise _unavailable(exc, f"s3://{bucket}") from None

    async def put(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        """Write ``data`` as the object at ``uri``."""
        bucket, key = split_uri(uri)
        extra = {"ContentType": content_type} if content_type else {}
        async with self._client() as client:
            try:
                await client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(exc, uri) from None

    async def get(self, uri: str) -> bytes:
        """The object at ``uri``; ``ObjectMissing`` when there is none."""
        bucket, key = split_uri(uri)
        async with self._client() as client:
            try:
                response = await client.get_object(Bucket=bucket, Key=key)
                async with response["Body"] as body:
                    data: bytes = await body.read()
                    return data
            except ClientError as exc:
                if _code(exc) in _MISSING_CODES:
                    raise ObjectMissing(uri) from None
                raise _unavailable(exc, uri) from None
            except BotoCoreError as exc:
                raise _unavailable(exc, uri) from None

    async def list(self, prefix_uri: str) -> list[str]:
        """The URIs of the objects under ``prefix_uri`` (a folder if it ends in ``/``), sorted."""
        bucket, prefix = split_uri(prefix_uri)
        found: list[str] = []
        async with self._client() as client:
            try:
                paginator = client.get_paginator("list_objects_v2")
                async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                    found.extend(
                        f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", ())
                    )
            except ClientError as exc:
                if _code(exc) == "NoSuchBucket":
                    return []
                raise _unavailable(exc, prefix_uri) from None
            except BotoCoreError as exc:
                raise _unavailable(exc, prefix_uri) from None
        return sorted(found)

    async def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every object under ``prefix_uri`` (taken as a folder); how many there were."""
        folder = prefix_uri.rstrip("/") + "/"
        uris = await self.list(folder)
        bucket, _ = split_uri(folder)
        async with self._client() as client:
            try:
                for start in range(0, len(uris), 1000):
                    chunk = uris[start : start + 1000]
                    await client.delete_objects(
                        Bucket=bucket,
                        Delete={"Objects": [{"Key": split_uri(u)[1]} for u in chunk]},
                    )
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(exc, prefix_uri) from None
        return len(uris)

    async def presign_get(self, uri: str, expires: int) -> str:
        """A URL that reads the object at ``uri`` without credentials for ``expires`` seconds."""
        return await self._presign("get_object", uri, expires)

    async def presign_put(self, uri: str, expires: int) -> str:
        """A URL that writes the object at ``uri`` (HTTP PUT) for ``expires`` seconds."""
        return await self._presign("put_object", uri, expires)

    async def _presign(self, operation: str, uri: str, expires: int) -> str:
        bucket, key = split_uri(uri)
        async with self._client() as client:
            url: str = await client.generate_presigned_url(
                operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires)
            )
            return url


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unavailable(exc: Exception, uri: str) -> StoreUnavailable:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        detail = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        return StoreUnavailable(f"the object store refused the request for {uri} ({detail})")
    return StoreUnavailable(f"the object store does not answer for {uri} ({exc})")
