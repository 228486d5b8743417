"""The predictor pod's ``storage-initializer``: download an ``s3://`` folder (or object) into the
model directory, as KServe's storage initializer does::

    python -m devenv.serving.storage_initializer s3://bucket/path/to/model /mnt/models

It reads the variables KServe's credential builder sets (``devenv.serving.credentials``):
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``,
``S3_VERIFY_SSL``, ``AWS_CA_BUNDLE``, ``awsAnonymousCredential``, ``S3_USER_VIRTUAL_BUCKET`` and
``S3_USE_ACCELERATE``, and KServe's ``S3_CONNECT_TIMEOUT``, ``S3_READ_TIMEOUT`` and
``S3_MAX_ATTEMPTS``. Every object under the path goes to the same relative path under the target
(an exact object key goes to the target under its own name); folder markers and empty objects are
skipped, as KServe skips them. Without a key pair (and without ``awsAnonymousCredential=true``),
with a refused key, or when nothing is found, it exits 1 and its last line says why.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import get_session

CHUNK = 1024 * 1024


class StorageError(Exception):
    """The model cannot be downloaded; the message says why."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        if not uri.startswith("s3://"):
            raise StorageError(f"unsupported storage URI {uri!r}: only s3://bucket/path is read")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise StorageError(f"storage URI {uri!r} names no bucket")
        return cls(bucket, prefix.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def client_options(env: Mapping[str, str]) -> dict[str, Any]:
    """``create_client`` arguments from the pod's variables (without the key pair)."""
    config = Config(
        connect_timeout=int(env.get("S3_CONNECT_TIMEOUT", "15")),
        read_timeout=int(env.get("S3_READ_TIMEOUT", "30")),
        retries={"max_attempts": int(env.get("S3_MAX_ATTEMPTS", "3")), "mode": "standard"},
    )
    s3: dict[str, Any] = {}
    if _true(env.get("S3_USER_VIRTUAL_BUCKET")):
        s3["addressing_style"] = "virtual"
    if _true(env.get("S3_USE_ACCELERATE")):
        s3["use_accelerate_endpoint"] = True
    if s3:
        config = config.merge(Config(s3=s3))
    if _true(env.get("awsAnonymousCredential")):
        config = config.merge(Config(signature_version=UNSIGNED))
    options: dict[str, Any] = {"config": config}
    if env.get("AWS_ENDPOINT_URL"):
        options["endpoint_url"] = env["AWS_ENDPOINT_URL"]
    if env.get("AWS_DEFAULT_REGION"):
        options["region_name"] = env["AWS_DEFAULT_REGION"]
    verify: bool | str = True
    if env.get("S3_VERIFY_SSL"):
        verify = env["S3_VERIFY_SSL"].strip().lower() not in ("0", "false")
    if verify is True and env.get("AWS_CA_BUNDLE"):
        if not Path(env["AWS_CA_BUNDLE"]).exists():
            raise StorageError(f"CA bundle {env['AWS_CA_BUNDLE']} (AWS_CA_BUNDLE) not found")
        verify = env["AWS_CA_BUNDLE"]
    options["verify"] = verify
    return options


def make_client(env: Mapping[str, str]) -> Any:
    options = client_options(env)
    anonymous = _true(env.get("awsAnonymousCredential"))
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not anonymous and not (key_id and secret):
        raise StorageError(
            "no object-store credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset "
            "(the predictor's service account lists no Secret with AWS_SECRET_ACCESS_KEY)"
        )
    if not anonymous:
        options.update(aws_access_key_id=key_id, aws_secret_access_key=secret)
    return get_session().create_client("s3", **options)


def target_key(location: S3Location, key: str) -> str | None:
    """The path under the target directory for object ``key``; None: not part of the model."""
    if key == location.prefix:
        return PurePosixPath(key).name
    if location.prefix and not key.startswith(location.prefix + "/"):
        return None
    relative = key[len(location.prefix) :].lstrip("/") if location.prefix else key
    parts = PurePosixPath(relative).parts
    if not parts or ".." in parts or relative.endswith("/"):
        return None
    return relative


def listing(client: Any, location: S3Location) -> Iterator[dict[str, Any]]:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix):
        yield from page.get("Contents") or []


def _explain(exc: Exception, location: S3Location, action: str) -> StorageError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        code = error.get("Code", "Error")
        message = error.get("Message", "")
        return StorageError(f"cannot {action} {location}: {code} ({message})")
    return StorageError(f"cannot {action} {location}: {exc}")


def download(client: Any, location: S3Location, target: Path, log: Any = sys.stderr) -> int:
    """Download the model at ``location`` into ``target``; the number of files written."""
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        objects = list(listing(client, location))
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, location, "list") from None
    for entry in objects:
        key = str(entry["Key"])
        relative = target_key(location, key)
        if relative is None or int(entry.get("Size") or 0) == 0:
            continue
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            body = client.get_object(Bucket=location.bucket, Key=key)["Body"]
            with open(partial, "wb") as out:
                while chunk := body.read(CHUNK):
                    out.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise _explain(exc, S3Location(location.bucket, key), "download") from None
        os.replace(partial, path)
        count += 1
        print(f"downloaded s3://{location.bucket}/{key} to {path}", file=log, flush=True)
        if key == location.prefix:
            break
    if count == 0:
        raise StorageError(f"no model found at {location}: no objects under that path")
    return count


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or len(args) % 2:
        print(
            "usage: storage_initializer SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]", file=sys.stderr
        )
        return 1
    try:
        client = None
        for uri, dest in zip(args[::2], args[1::2], strict=True):
            location = S3Location.parse(uri)
            client = client or make_client(os.environ)
            print(f"storage-initializer: downloading {location} to {dest}", flush=True)
            count = download(client, location, Path(dest), log=sys.stdout)
            print(f"storage-initializer: {count} files from {location} in {dest}", flush=True)
    except StorageError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    except (BotoCoreError, OSError, ValueError) as exc:
        print(f"unexpected error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
