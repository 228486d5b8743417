"""JupyterHub (with configurable-http-proxy) on loopback, spawning onto the local cluster."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .controlplane import StartError
from .paths import REPO_ROOT, local_dir
from .procs import Child, ProcessGroup, free_port

CONFIG_FILE = REPO_ROOT / "devenv" / "jupyterhub_config.py"


def proxy_command() -> str:
    path = local_dir() / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if path.exists():
        return str(path)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise StartError("configurable-http-proxy is not installed: run `make setup`")
    return found


@dataclass
class LocalHub:
    """One JupyterHub process; its proxy is the hub's own child."""

    state_dir: Path
    kubeconfig: Path
    procs: ProcessGroup
    namespace: str = "jupyterhub"
    password: str = "mlteams"
    public_port: int = 0
    api_token: str = field(default_factory=lambda: secrets.token_hex(16))
    extra_env: dict[str, str] = field(default_factory=dict)
    hub_port: int = 0
    """The hub's own port, where its REST API is (``api_url``): preset it when another process
    must know the API before the hub starts; 0: a free port, chosen at the first start."""
    proxy_api_port: int = 0
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def api_url(self) -> str:
        """The hub's REST API as processes beside it reach it (not through the proxy)."""
        return f"http://127.0.0.1:{self.hub_port}/hub/api"

    def start(self, timeout: float = 120) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.public_port = self.public_port or free_port()
        self.hub_port = self.hub_port or free_port()
        self.proxy_api_port = self.proxy_api_port or free_port()
        hub_port, proxy_api_port = self.hub_port, self.proxy_api_port
        token_file = self.state_dir / "proxy_token"
        if not token_file.exists():
            token_file.write_text(secrets.token_hex(32))
        bin_dir = str(Path(sys.executable).parent)
        env = dict(
            os.environ,
            PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
            KUBECONFIG=str(self.kubeconfig),
            MLTEAMS_HUB_STATE_DIR=str(self.state_dir),
            MLTEAMS_HUB_PUBLIC_URL=self.url,
            MLTEAMS_HUB_API_URL=f"http://127.0.0.1:{hub_port}/hub/",
            MLTEAMS_PROXY_API_URL=f"http://127.0.0.1:{proxy_api_port}",
            MLTEAMS_PROXY_COMMAND=proxy_command(),
            MLTEAMS_PROXY_TOKEN=token_file.read_text().strip(),
            MLTEAMS_HUB_NAMESPACE=self.namespace,
            MLTEAMS_DEMO_PASSWORD=self.password,
            MLTEAMS_TEST_TOKEN=self.api_token,
            **self.extra_env,
        )
        self.child = self.procs.start(
            f"jupyterhub-{self.state_dir.name}",
            [str(Path(bin_dir) / "jupyterhub"), "-f", str(CONFIG_FILE)],
            env=env,
            cwd=self.state_dir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise StartError(
                    f"jupyterhub exited with code {self.child.popen.returncode}; "
                    f"log {self.child.log_path}:\n{self.child.log_tail(40)}"
                )
            try:
                self.api("GET", "/")
                return
            except (OSError, urllib.error.URLError, HubAPIError):
                time.sleep(0.5)
        raise StartError(
            f"jupyterhub not answering at {self.url} after {timeout:.0f}s; "
            f"log {self.child.log_path}:\n{self.child.log_tail(40)}"
        )

    def stop(self) -> None:
        self.procs.stop_child(self.child, timeout=60)
        self.child = None

    def call(
        self, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, Any]:
        """Call the hub's REST API (through the proxy) with the test service's token.

        Returns ``(status, parsed body)``; an HTTP error status is returned, not raised.
        """
        return self.request(method, f"/hub/api{path}", body, timeout)

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, Any]:
        """``method`` on ``path`` under the hub's public URL (a server's API too) with the test
        service's token: ``(status, parsed body)``, an HTTP error status returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        req.add_header("Authorization", f"token {self.api_token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """``call``, raising ``HubAPIError`` for an error status."""
        status, parsed = self.call(method, path, body, timeout)
        if status >= 400:
            raise HubAPIError(status, parsed)
        return parsed

    def get_through_proxy(self, path: str, timeout: float = 30) -> Any:
        """GET a user-server URL through the proxy with the test service's token."""
        req = urllib.request.Request(
            self.url + path, headers={"Authorization": f"token {self.api_token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())


class HubAPIError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
