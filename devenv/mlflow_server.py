"""A real MLflow tracking server (SQL backend: sqlite) on a free loopback port.

Started through ``ProcessGroup`` so it carries the rig marker and is stopped with the rig.
Artifacts are served by the tracking server itself (``--serve-artifacts``), so clients need
no storage credentials.

It runs the mlteams plugin (``--app-name mlteams``, ``mlflow_ext``): MLflow's basic-auth app
with ``default_permission = READ``, JupyterHub tokens as identities (checked with the hub at
``hub_api_url``) and governed registered models kept to the promotion service, whose MLflow
user is the auth app's admin (``admin_username``, ``admin_password``). Tests and the service
sign in as that admin with basic auth.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .controlplane import StartError
from .procs import Child, ProcessGroup, free_port

SERVICE_USER = "mlteams-service"
"""The promotion service's MLflow user (``MLTEAMS_REGISTRY_SERVICE_USER``'s default)."""


@dataclass
class MLflowServer:
    state_dir: Path
    procs: ProcessGroup
    port: int = 0
    hub_api_url: str = ""
    """The hub's REST API (``http://127.0.0.1:<port>/hub/api``) the plugin checks tokens with;
    empty: only basic auth."""
    app_name: str = "mlteams"
    """``mlteams`` (the plugin), or another ``mlflow.app`` (``basic-auth``) configured by the
    caller's environment."""
    admin_username: str = SERVICE_USER
    child: Child | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_password(self) -> str:
        """The admin's password: random, made once per state folder (the user store keeps the
        first one)."""
        return self._secret("admin_password")

    def _secret(self, name: str) -> str:
        path = self.state_dir / name
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def auth_config(self) -> Path:
        """The auth app's configuration file (``MLFLOW_AUTH_CONFIG_PATH``), written anew."""
        path = self.state_dir / "basic_auth.ini"
        text = (
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{self.state_dir / 'auth.db'}\n"
            f"admin_username = {self.admin_username}\n"
            f"admin_password = {self.admin_password}\n"
            "authorization_function = mlflow_ext.identity:authenticate\n"
        )
        path.touch(mode=0o600)
        path.write_text(text)
        return path

    def environment(self) -> dict[str, str]:
        """The server's environment: the plugin's settings on top of this process's."""
        env = dict(os.environ)
        if self.app_name != "mlteams":
            return env
        env.update(
            MLFLOW_AUTH_CONFIG_PATH=str(self.auth_config()),
            MLFLOW_FLASK_SERVER_SECRET_KEY=self._secret("flask_secret_key"),
            MLTEAMS_HUB_API_URL=self.hub_api_url,
            MLTEAMS_REGISTRY_SERVICE_USER=self.admin_username,
        )
        return env

    def argv(self) -> list[str]:
        return [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.state_dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.state_dir / "artifacts"),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--app-name",
            self.app_name,
        ]

    def start(self, timeout: float = 180) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.child = self.procs.start(
            f"mlflow-{self.port}", self.argv(), env=self.environment(), cwd=self.state_dir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise StartError(f"mlflow server exited:\n{self.child.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise StartError(
            f"mlflow server did not answer in {timeout:.0f}s:\n{self.child.log_tail()}"
        )

    def stop(self) -> None:
        self.procs.stop_child(self.child)
        self.child = None

    def restart(self, timeout: float = 180) -> None:
        self.stop()
        self.start(timeout)
