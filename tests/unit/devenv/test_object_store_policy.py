"""The object store's naming and IAM policy documents, and its build pin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devenv import object_store, objectstore_build
from devenv.object_store import S3Credentials, read_only_policy, team_bucket, team_user
from devenv.procs import ProcessGroup

pytestmark = pytest.mark.unit


def test_team_bucket_and_user_names() -> None:
    assert team_bucket("vision") == "team-vision"
    assert team_user("nlp") == "team-nlp-reader"
    assert object_store.team_policy_name("nlp") == "team-nlp-read"


@pytest.mark.parametrize("bad", ["", "a", "Vision", "has_underscore", "-lead", "trail-", "x" * 53])
def test_team_names_that_cannot_name_a_bucket_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot name a bucket"):
        team_bucket(bad)


def test_read_only_policy_grants_reads_on_one_bucket_only() -> None:
    policy = read_only_policy("team-vision")
    json.dumps(policy)
    assert policy["Version"] == "2012-10-17"
    granted = {
        (action, resource)
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        for action in statement["Action"]
        for resource in statement["Resource"]
    }
    assert granted == {
        ("s3:GetBucketLocation", "arn:aws:s3:::team-vision"),
        ("s3:ListBucket", "arn:aws:s3:::team-vision"),
        ("s3:GetObject", "arn:aws:s3:::team-vision/*"),
    }


def test_credentials_hide_the_secret_and_feed_s3fs() -> None:
    creds = S3Credentials.generate("team-vision-reader")
    assert creds.secret_key not in repr(creds)
    assert len(creds.secret_key) >= 32
    assert S3Credentials.generate().access_key != S3Credentials.generate().access_key
    options = creds.storage_options("http://127.0.0.1:9000")
    assert options["key"] == "team-vision-reader"
    assert options["secret"] == creds.secret_key
    assert options["endpoint_url"] == "http://127.0.0.1:9000"


def test_store_repr_hides_the_root_password(tmp_path: Path) -> None:
    store = object_store.ObjectStore(
        tmp_path,
        procs=ProcessGroup("unit-object-store", tmp_path / "logs"),
        binary=tmp_path / "minio",
    )
    assert store.root_credentials.secret_key not in repr(store)
    env = store.environment()
    assert env["MINIO_ROOT_PASSWORD"] == store.root_credentials.secret_key
    assert store.root_credentials.secret_key not in " ".join(store.argv())


def test_minio_is_pinned_to_an_exact_version() -> None:
    version = objectstore_build.OBJECTSTORE.pinned_version()
    assert version.startswith("v0.0.0-2026")
    assert objectstore_build.OBJECTSTORE.binaries_dir().name.startswith(f"{version}-")
