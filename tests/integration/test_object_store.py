"""The local object store (a real MinIO server): per-team buckets and read-only team keys.

The store itself enforces the isolation: a team's key lists and reads its own bucket, and the
server answers ``AccessDenied`` to a read of another team's bucket and to any write.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
import s3fs
from minio.error import S3Error

from devenv.object_store import ObjectStore, S3Credentials, team_bucket
from server_ext.contract import CatalogEntry, Credentials
from server_ext.server.datasets import snippet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CSV = "image,label\ncat.png,cat\ndog.png,dog\n"


@pytest.fixture(scope="module")
def teams(object_store: ObjectStore) -> ObjectStore:
    object_store.add_teams(["vision", "nlp"])
    object_store.upload(team_bucket("vision"), "labels/train.csv", CSV)
    object_store.upload(team_bucket("nlp"), "corpus/notes.txt", "private to nlp\n")
    object_store.upload(team_bucket("vision"), "shards/part-0.csv", "x,y\n1,2\n")
    object_store.upload(team_bucket("vision"), "shards/more/part-1.csv", "x,y\n3,4\n5,6\n")
    return object_store


def test_team_key_lists_and_reads_its_own_bucket(teams: ObjectStore) -> None:
    client = teams.client(teams.team_credentials("vision"))
    listing = client.list_objects("team-vision", prefix="labels/", recursive=True)
    assert [o.object_name for o in listing] == ["labels/train.csv"]
    response = client.get_object("team-vision", "labels/train.csv")
    try:
        assert response.read().decode() == CSV
    finally:
        response.close()
        response.release_conn()


def test_pandas_reads_a_team_csv_through_s3fs(teams: ObjectStore) -> None:
    frame = pd.read_csv(
        "s3://team-vision/labels/train.csv", storage_options=teams.storage_options("vision")
    )
    assert frame.to_dict("list") == {"image": ["cat.png", "dog.png"], "label": ["cat", "dog"]}


@pytest.mark.parametrize(
    ("uri", "rows"), [("s3://team-vision/shards/", 3), ("s3://team-vision/labels/train.csv", 2)]
)
def test_dataset_snippet_reads_a_prefix_or_an_object_with_the_keys_from_the_environment(
    teams: ObjectStore, monkeypatch: pytest.MonkeyPatch, uri: str, rows: int
) -> None:
    creds = teams.team_credentials("vision")
    monkeypatch.setenv("TEAM_KEY_ID", creds.access_key)
    monkeypatch.setenv("TEAM_SECRET_KEY", creds.secret_key)
    entry = CatalogEntry(
        name="shards",
        uri=uri,
        format="csv",
        endpoint_url=teams.endpoint_url,
        credentials=Credentials("TEAM_KEY_ID", "TEAM_SECRET_KEY"),
    )
    code = snippet(entry)
    assert creds.secret_key not in code
    scope: dict = {}
    exec(code, scope)
    assert len(scope["df"]) == rows


def test_store_refuses_another_teams_bucket(teams: ObjectStore) -> None:
    client = teams.client(teams.team_credentials("vision"))
    with pytest.raises(S3Error) as read:
        client.get_object("team-nlp", "corpus/notes.txt")
    assert read.value.code == "AccessDenied"
    with pytest.raises(S3Error) as listing:
        list(client.list_objects("team-nlp"))
    assert listing.value.code == "AccessDenied"
    fs = s3fs.S3FileSystem(**teams.storage_options("vision"), skip_instance_cache=True)
    with pytest.raises(PermissionError):
        fs.cat_file("team-nlp/corpus/notes.txt")


def test_team_key_cannot_write_even_its_own_bucket(teams: ObjectStore) -> None:
    client = teams.client(teams.team_credentials("nlp"))
    for bucket in ("team-nlp", "team-vision"):
        with pytest.raises(S3Error) as write:
            client.put_object(bucket, "planted.txt", io.BytesIO(b"x"), 1)
        assert write.value.code == "AccessDenied"
    with pytest.raises(S3Error) as delete:
        client.remove_object("team-nlp", "corpus/notes.txt")
    assert delete.value.code == "AccessDenied"
    assert teams.client().stat_object("team-nlp", "corpus/notes.txt").size > 0


def test_unknown_key_is_refused(teams: ObjectStore) -> None:
    stranger = teams.client(S3Credentials.generate("stranger"))
    with pytest.raises(S3Error) as refused:
        list(stranger.list_objects("team-vision"))
    assert refused.value.code == "InvalidAccessKeyId"


def test_root_password_is_not_in_the_server_log(teams: ObjectStore) -> None:
    assert teams.child is not None
    log = teams.child.log_path.read_text(errors="replace")
    assert f"API: {teams.endpoint_url}" in log, "the server's own startup output is captured"
    secrets = [teams.root_credentials.secret_key, teams.team_credentials("vision").secret_key]
    for path in teams.child.log_path.parent.iterdir():
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret key appears in {path.name}"
