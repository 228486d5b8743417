"""The secrets check can fail: a secret planted in a response, a log or a pod spec is found and
the finding names the place, never the value."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.security.collector import Collector, _install, is_token_creation
from tests.security.rig import RigProcess
from tests.security.scanner import (
    Finding,
    Source,
    audit_pods,
    log_sources,
    pod_sources,
    scan,
    too_short,
)

pytestmark = [pytest.mark.security, pytest.mark.unit]

PLANTED = "s3cr3t-planted-0123456789abcdef"
OTHER = "another-secret-value-fedcba987654"


def test_a_planted_secret_is_found_by_name_and_place_and_never_shown() -> None:
    sources = [
        Source("log a.log", f"started with key={PLANTED} ok".encode()),
        Source("response 200 to GET /x", b'{"fine": true}'),
        Source("page /hub/home", f"<a href='/x?k={PLANTED.replace('-', '%2D')}'>".encode()),
    ]
    findings = scan({"ROOT_KEY": PLANTED, "OTHER": OTHER}, sources)
    assert findings == [Finding("ROOT_KEY", "log a.log")]
    assert PLANTED not in str(findings[0])
    assert str(findings[0]) == "ROOT_KEY in log a.log"


def test_a_url_encoded_secret_is_found() -> None:
    value = "key/with+slash=and+plus0123"
    found = scan(
        {"KEY": value}, [Source("log b.log", b"GET /?k=key%2Fwith%2Bslash%3Dand%2Bplus0123")]
    )
    assert found == [Finding("KEY", "log b.log")]


def test_short_values_are_named_not_searched() -> None:
    assert scan({"PIN": "1234"}, [Source("x", b"1234")]) == []
    assert too_short({"PIN": "1234", "LONG": PLANTED}) == ["PIN"]


def test_log_files_are_found_below_the_roots(tmp_path: Path) -> None:
    (tmp_path / "cluster" / "logs").mkdir(parents=True)
    (tmp_path / "cluster" / "logs" / "kubelet.log").write_text(f"env {PLANTED}\n")
    (tmp_path / "cluster" / "other.txt").write_text(PLANTED)
    findings = scan({"K": PLANTED}, log_sources([tmp_path]))
    assert findings == [Finding("K", str(tmp_path / "cluster" / "logs" / "kubelet.log"))]


def _audit_line(name: str, env: list[dict[str, object]]) -> str:
    pod = {
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "notebook", "env": env}]},
    }
    return json.dumps(
        {
            "verb": "create",
            "objectRef": {"namespace": "it-vision", "name": name},
            "requestObject": pod,
        }
    )


def test_a_secret_in_a_pod_spec_is_found_but_a_servers_own_token_in_its_own_pod_is_not(
    tmp_path: Path,
) -> None:
    own, other = "own-token-0123456789abcdef", "other-token-0123456789abcdef"
    audit = tmp_path / "audit.jsonl"
    lines = [
        _audit_line(
            "jupyter-a",
            [
                {"name": "JUPYTERHUB_API_TOKEN", "value": own},
                {"name": "MLFLOW_TRACKING_TOKEN", "value": own},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": PLANTED},
            ],
        ),
        # another server's token, pasted into this pod: found
        _audit_line(
            "jupyter-b",
            [
                {"name": "JUPYTERHUB_API_TOKEN", "value": other},
                {"name": "EXTRA", "value": own},
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
        ),
    ]
    audit.write_text("\n".join(lines) + "\n")
    pods = audit_pods(audit)
    assert [pod.own_token() for pod in pods] == [own, other]
    findings = scan({"ROOT": PLANTED, "token of a": own, "token of b": other}, pod_sources(pods))
    assert [(f.secret, f.where.split(" (")[0]) for f in findings] == [
        ("ROOT", "pod it-vision/jupyter-a"),
        ("token of a", "pod it-vision/jupyter-b"),
    ]


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 404 if self.path == "/missing" else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(f"body of {self.path} {PLANTED}\n".encode())

    def do_POST(self) -> None:
        self.send_response(201)
        self.end_headers()
        self.wfile.write(json.dumps({"token": OTHER}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answers() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_responses_of_urllib_and_requests_are_recorded(tmp_path: Path, answers: str) -> None:
    collector = Collector(tmp_path / "responses.bin")
    restore = _install(collector)
    try:
        with urllib.request.urlopen(f"{answers}/read", timeout=10) as resp:
            assert PLANTED in resp.read().decode()
        with urllib.request.urlopen(f"{answers}/lines", timeout=10) as resp:
            assert [line for line in resp]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{answers}/missing", timeout=10)
        assert PLANTED in refused.value.read().decode()
        assert requests.get(f"{answers}/requests", timeout=10).status_code == 200
        made = requests.post(f"{answers}/hub/api/users/v-alice/tokens", json={}, timeout=10)
        assert made.json()["token"] == OTHER
    finally:
        restore()
    records = list(collector.records())
    assert [(r.source, r.status, r.url.split("/", 3)[-1]) for r in records] == [
        ("urllib", 200, "read"),
        ("urllib", 200, "lines"),
        ("urllib", 404, "missing"),
        ("requests", 200, "requests"),
        ("requests", 201, "hub/api/users/v-alice/tokens"),
    ]
    findings = scan({"P": PLANTED, "T": OTHER}, [Source(r.where, r.body) for r in records])
    assert {f.secret for f in findings} == {"P"}
    assert len(findings) == 4
    # the new token is not kept with the responses, but searched for everywhere else
    assert list(collector.created_tokens.values()) == [OTHER]


def test_only_the_token_creation_answer_is_left_out() -> None:
    assert is_token_creation("POST", "http://h/hub/api/users/v-alice/tokens")
    assert is_token_creation("post", "http://h/hub/api/users/v-alice/tokens?x=1")
    assert not is_token_creation("GET", "http://h/hub/api/users/v-alice/tokens")
    assert not is_token_creation("POST", "http://h/hub/api/users/v-alice/tokens/a1")
    assert not is_token_creation("POST", "http://h/services/mlteams/api/users/a/tokensx")


def test_a_process_secrets_are_its_secret_named_variables_not_where_they_are_asked_for() -> None:
    process = RigProcess(
        1,
        "jupyterhub",
        {
            "MLTEAMS_OIDC_CLIENT_SECRET": PLANTED,
            "JUPYTERHUB_API_TOKEN": OTHER,
            "MLTEAMS_OIDC_TOKEN_URL": "http://127.0.0.1:60033/token",
            "MLTEAMS_KEY_FILE": "/var/lib/mlteams/signing-key.pem",
            "AWS_ACCESS_KEY_ID": "team-vision-reader-id",
            "MLTEAMS_TOKEN_TTL": "3600",
        },
    )
    assert process.secrets() == {
        "MLTEAMS_OIDC_CLIENT_SECRET": PLANTED,
        "JUPYTERHUB_API_TOKEN": OTHER,
    }
