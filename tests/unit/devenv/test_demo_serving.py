"""The demo's serving helpers: the governed key's policy, its Secret, and the printed curl."""

from __future__ import annotations

import base64
import json
import shlex

import pytest

from devenv.object_store import S3Credentials
from devenv.serving_curl import EXAMPLE_ROWS, curl_command, ready_url, v2_request
from devenv.serving_keys import governed_read_policy, serving_account, serving_secret

pytestmark = pytest.mark.unit


def test_the_key_reads_only_the_teams_governed_prefix() -> None:
    policy = governed_read_policy("mlteams-governed", "vision")
    listing, reading = policy["Statement"]
    assert listing["Action"] == ["s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["vision/*"]}}
    assert reading["Action"] == ["s3:GetObject"]
    assert reading["Resource"] == ["arn:aws:s3:::mlteams-governed/vision/*"]
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])


def test_the_secret_carries_kserves_s3_annotations_and_the_account_names_it() -> None:
    creds = S3Credentials("vision-serving-reader", "s3cr3t")
    secret = serving_secret("mlteams-serving-s3", creds, "http://127.0.0.1:9000")
    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "127.0.0.1:9000",
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-region": "us-east-1",
    }
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"AWS_ACCESS_KEY_ID": "vision-serving-reader", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    https = serving_secret("s", creds, "https://s3.example.com")
    assert https["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "1"
    account = serving_account("mlteams-serving", "mlteams-serving-s3")
    assert account["secrets"] == [{"name": "mlteams-serving-s3"}]


def test_the_curl_sends_one_v2_input_per_column() -> None:
    command = shlex.split(curl_command("http://127.0.10.3:8080/", "iris", EXAMPLE_ROWS))
    assert command[:4] == ["curl", "-s", "-H", "Content-Type: application/json"]
    assert command[-1] == "http://127.0.10.3:8080/v2/models/iris/infer"
    body = json.loads(command[command.index("-d") + 1])
    assert [i["name"] for i in body["inputs"]] == list(EXAMPLE_ROWS)
    assert all(i["shape"] == [3] and i["datatype"] == "FP64" for i in body["inputs"])


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        v2_request({"a": [1.0], "b": [1.0, 2.0]})


@pytest.mark.parametrize(
    ("obj", "url"),
    [
        ({}, None),
        (
            {
                "metadata": {"generation": 2},
                "status": {
                    "observedGeneration": 2,
                    "url": "http://x",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
            "http://x",
        ),
        (
            {
                "metadata": {"generation": 3},
                "status": {
                    "observedGeneration": 2,
                    "url": "http://x",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
            None,
        ),
        (
            {"status": {"url": "http://x", "conditions": [{"type": "Ready", "status": "False"}]}},
            None,
        ),
    ],
)
def test_only_a_ready_current_object_gives_a_url(obj: dict, url: str | None) -> None:
    assert ready_url(obj) == url
