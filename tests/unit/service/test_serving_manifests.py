"""``mlteams-serving-manifests`` against a loopback HTTP server that answers as the service."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub_ext.service.serving_manifests import main

pytestmark = pytest.mark.unit

TOKEN = "a-hub-token"
MANIFEST = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "iris", "namespace": "team-vision"},
    "spec": {"predictor": {"model": {"modelFormat": {"name": "mlflow"}}}},
}


@pytest.fixture
def service() -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {"requests": [], "answer": (200, {"manifests": [MANIFEST]})}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["requests"].append((self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"token {TOKEN}":
                status, body = 403, {"message": "This token is not a hub token."}
            else:
                status, body = seen["answer"]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}/services/mlteams"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_prints_every_manifest_as_yaml(
    service: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    out = io.StringIO()
    assert main(["--service-url", service["url"], "--team", "vision"], stdout=out) == 0
    assert list(yaml.safe_load_all(out.getvalue())) == [MANIFEST]
    assert service["requests"] == [
        ("/services/mlteams/api/serving/manifests?team=vision", f"token {TOKEN}")
    ]


def test_writes_one_file_per_inference_service(service: dict[str, Any], tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    out = io.StringIO()
    code = main(
        ["--service-url", service["url"], "--token-file", str(token), "--out", str(tmp_path)],
        stdout=out,
    )
    assert code == 0
    written = tmp_path / "team-vision" / "iris.yaml"
    assert yaml.safe_load(written.read_text()) == MANIFEST
    assert out.getvalue().strip() == str(written)


def test_a_refusal_is_reported_with_the_services_message(
    service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "not-the-token")
    assert main(["--service-url", service["url"]]) == 2
    assert "403: This token is not a hub token." in capsys.readouterr().err


def test_no_service_or_no_token_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLTEAMS_SERVICE_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    assert main([]) == 2
    assert "MLTEAMS_SERVICE_URL" in capsys.readouterr().err
    assert main(["--service-url", "http://127.0.0.1:9"]) == 2
    assert "JUPYTERHUB_API_TOKEN" in capsys.readouterr().err


def test_an_unreachable_service_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    assert main(["--service-url", f"http://127.0.0.1:{port}", "--timeout", "5"]) == 2
    assert f"could not reach http://127.0.0.1:{port}/api/serving/manifests" in (
        capsys.readouterr().err
    )
