"""A real S3-compatible object store (MinIO, built from its Go module) on a free loopback port.

Started through ``ProcessGroup`` so it carries the rig marker and is stopped with the rig. The
root user and password are generated per start and reach the server only through its
environment; nothing here prints or logs them. Each team gets a bucket and an IAM user whose
policy allows reading that bucket only, so the store itself refuses a cross-team read or any
write with ``AccessDenied``.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio
from minio.credentials import StaticProvider
from minio.error import MinioAdminException
from minio.minioadmin import MinioAdmin
from urllib3.exceptions import HTTPError

from .controlplane import StartError
from .objectstore_build import ensure_minio
from .procs import Child, ProcessGroup, free_port

REGION = "us-east-1"
READ_ACTIONS_ON_BUCKET = ("s3:GetBucketLocation", "s3:ListBucket")
READ_ACTIONS_ON_OBJECTS = ("s3:GetObject",)
_TEAM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,50}[a-z0-9]$")


@dataclass(frozen=True)
class S3Credentials:
    """An access key pair; the secret is left out of ``repr``."""

    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls, access_key: str | None = None) -> S3Credentials:
        return cls(access_key or f"root-{secrets.token_hex(6)}", secrets.token_urlsafe(30))

    def storage_options(self, endpoint_url: str) -> dict[str, Any]:
        """``storage_options`` for pandas/fsspec (s3fs) reading ``s3://`` from this store."""
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "endpoint_url": endpoint_url,
            "client_kwargs": {"region_name": REGION},
        }


def team_bucket(team: str) -> str:
    """The bucket holding ``team``'s data: ``team-<team>`` (a valid S3 bucket name)."""
    if not _TEAM_NAME.match(team):
        raise ValueError(
            f"team name {team!r} cannot name a bucket: use 2-52 lowercase letters, digits or '-'"
        )
    return f"team-{team}"


def team_user(team: str) -> str:
    """The access key of ``team``'s read-only IAM user."""
    return f"{team_bucket(team)}-reader"


def team_policy_name(team: str) -> str:
    return f"{team_bucket(team)}-read"


def read_only_policy(bucket: str) -> dict[str, Any]:
    """IAM policy document allowing listing and reading ``bucket`` and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(READ_ACTIONS_ON_BUCKET),
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Action": list(READ_ACTIONS_ON_OBJECTS),
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


@dataclass
class ObjectStore:
    """One MinIO server with its data under ``state_dir/data``, listening on 127.0.0.1."""

    state_dir: Path
    procs: ProcessGroup
    port: int = 0
    binary: Path | None = None
    child: Child | None = field(default=None, init=False)
    _root: S3Credentials = field(default_factory=S3Credentials.generate, init=False, repr=False)
    _teams: dict[str, S3Credentials] = field(default_factory=dict, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self._host}"

    @property
    def root_credentials(self) -> S3Credentials:
        """The root user's key pair, generated for this instance (kept out of ``repr``)."""
        return self._root

    @property
    def _host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        binary = self.binary or ensure_minio()
        return [
            str(binary),
            "server",
            str(self.state_dir / "data"),
            "--address",
            self._host,
            "--certs-dir",
            str(self.state_dir / "certs"),
        ]

    def environment(self) -> dict[str, str]:
        return dict(
            os.environ,
            MINIO_ROOT_USER=self._root.access_key,
            MINIO_ROOT_PASSWORD=self._root.secret_key,
            MINIO_BROWSER="off",
            MINIO_UPDATE="off",
            MINIO_REGION=REGION,
        )

    def start(self, timeout: float = 120) -> None:
        """Start the server and return once it serves S3 and its IAM answers admin calls."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.child = self.procs.start(
            f"minio-{self.port}", self.argv(), env=self.environment(), cwd=self.state_dir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise StartError(f"object store exited:\n{self.child.log_tail()}")
            if self._ready():
                return
            time.sleep(0.5)
        tail = self.child.log_tail()
        self.stop()
        raise StartError(f"object store did not answer in {timeout:.0f}s:\n{tail}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"{self.endpoint_url}/minio/health/ready", timeout=2
            ) as response:
                if response.status != 200:
                    return False
            self.admin().user_list()
        except (urllib.error.URLError, OSError, HTTPError, MinioAdminException):
            return False
        return True

    def stop(self) -> None:
        self.procs.stop_child(self.child)
        self.child = None

    def admin(self) -> MinioAdmin:
        """The admin API client, signed as the root user."""
        provider = StaticProvider(self._root.access_key, self._root.secret_key)
        return MinioAdmin(endpoint=self._host, credentials=provider, secure=False)

    def client(self, credentials: S3Credentials | None = None) -> Minio:
        """An S3 client signed with ``credentials`` (the root user when omitted)."""
        creds = credentials or self._root
        return Minio(
            self._host,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            secure=False,
            region=REGION,
        )

    def create_bucket(self, bucket: str) -> str:
        client = self.client()
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        return bucket

    def add_team(self, team: str) -> S3Credentials:
        """Create ``team``'s bucket and its read-only user; return that user's key pair."""
        if team in self._teams:
            return self._teams[team]
        bucket = self.create_bucket(team_bucket(team))
        creds = S3Credentials(team_user(team), secrets.token_urlsafe(30))
        admin = self.admin()
        admin.policy_add(team_policy_name(team), policy=read_only_policy(bucket))
        admin.user_add(creds.access_key, creds.secret_key)
        admin.attach_policy([team_policy_name(team)], user=creds.access_key)
        self._teams[team] = creds
        return creds

    def add_teams(self, teams: Iterable[str]) -> dict[str, S3Credentials]:
        return {team: self.add_team(team) for team in teams}

    def team_credentials(self, team: str) -> S3Credentials:
        """The read-only key pair of a team added with ``add_team``."""
        try:
            return self._teams[team]
        except KeyError:
            raise KeyError(f"team {team!r} has no bucket in this object store") from None

    def upload(self, bucket: str, key: str, data: bytes | str | Path) -> None:
        """Write one object as the root user: bytes, text (UTF-8) or a local file's contents."""
        if isinstance(data, Path):
            data = data.read_bytes()
        elif isinstance(data, str):
            data = data.encode()
        self.client().put_object(bucket, key, io.BytesIO(data), len(data))

    def storage_options(self, team: str) -> dict[str, Any]:
        """pandas/s3fs ``storage_options`` for reading with ``team``'s key pair."""
        return self.team_credentials(team).storage_options(self.endpoint_url)
