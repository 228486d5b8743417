"""Start and drive the local OpenID Connect provider (``devenv/oidc/server.mjs``).

It runs under ``node`` on a free loopback port as a child of a ``ProcessGroup`` (so it carries
the rig marker and is stopped with the platform). Its users, passwords and groups are given at
start; tests change a user's groups and inject bad ID tokens through its loopback admin API.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..controlplane import StartError
from ..paths import REPO_ROOT, local_dir
from ..procs import Child, ProcessGroup, free_port

SERVER_SCRIPT = REPO_ROOT / "devenv" / "oidc" / "server.mjs"
DEMO_PASSWORD = "mlteams"
CLIENT_ID = "jupyterhub"
SCOPES = ("openid", "profile", "email", "groups")


@dataclass
class OIDCUser:
    """A user of the provider: password and identity-provider groups."""

    name: str
    groups: list[str]
    password: str = DEMO_PASSWORD
    description: str = ""


DEMO_USERS = [
    OIDCUser("alice", ["vision"], description="team vision"),
    OIDCUser("bob", ["nlp"], description="team nlp"),
    OIDCUser("carol", ["vision", "nlp"], description="teams vision and nlp"),
    OIDCUser("lena", ["vision-leads"], description="lead of team vision"),
    OIDCUser("dave", ["staff"], description="no team (refused, told whom to ask)"),
    OIDCUser("admin", ["platform-admins"], description="hub admin"),
]


def node_modules() -> Path:
    return local_dir() / "oidc" / "node_modules"


@dataclass
class LocalOIDC:
    """One provider process; ``start`` returns once its discovery document answers."""

    state_dir: Path
    procs: ProcessGroup
    redirect_uris: list[str]
    users: list[OIDCUser] = field(default_factory=lambda: list(DEMO_USERS))
    port: int = 0
    client_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    child: Child | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        modules = node_modules()
        if not (modules / "oidc-provider" / "package.json").exists():
            raise StartError(f"oidc-provider is not installed in {modules}: run `make setup`")
        node = shutil.which("node")
        if not node:
            raise StartError("node is not installed: run `make setup`")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.state_dir / "oidc-config.json"
        config.write_text(json.dumps(self._settings(), indent=1))
        config.chmod(0o600)
        self.child = self.procs.start(
            f"oidc-{self.state_dir.name}",
            [node, str(SERVER_SCRIPT), str(config)],
            env={"PATH": str(Path(node).parent), "MLTEAMS_OIDC_MODULES": str(modules)},
            cwd=self.state_dir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise StartError(
                    f"the OIDC provider exited with code {self.child.popen.returncode}; "
                    f"log {self.child.log_path}:\n{self.child.log_tail(40)}"
                )
            try:
                self.discovery()
                return
            except (OSError, ValueError):
                time.sleep(0.3)
        raise StartError(
            f"the OIDC provider is not answering at {self.issuer} after {timeout:.0f}s; "
            f"log {self.child.log_path}:\n{self.child.log_tail(40)}"
        )

    def stop(self) -> None:
        self.procs.stop_child(self.child, timeout=15)
        self.child = None

    def _settings(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "host": "127.0.0.1",
            "port": self.port,
            "admin_token": self.admin_token,
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": self.client_secret,
                    "redirect_uris": self.redirect_uris,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            ],
            "users": {
                user.name: {"password": user.password, "groups": user.groups} for user in self.users
            },
        }

    def discovery(self) -> dict[str, Any]:
        url = f"{self.issuer}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())

    def hub_env(self) -> dict[str, str]:
        """What ``devenv/jupyterhub_config.py`` needs for ``MLTEAMS_HUB_AUTH=oidc``."""
        found = self.discovery()
        return {
            "MLTEAMS_HUB_AUTH": "oidc",
            "MLTEAMS_OIDC_ISSUER": found["issuer"],
            "MLTEAMS_OIDC_AUTHORIZE_URL": found["authorization_endpoint"],
            "MLTEAMS_OIDC_TOKEN_URL": found["token_endpoint"],
            "MLTEAMS_OIDC_USERINFO_URL": found["userinfo_endpoint"],
            "MLTEAMS_OIDC_JWKS_URL": found["jwks_uri"],
            "MLTEAMS_OIDC_CLIENT_ID": CLIENT_ID,
            "MLTEAMS_OIDC_CLIENT_SECRET": self.client_secret,
            "MLTEAMS_OIDC_SCOPES": " ".join(SCOPES),
        }

    def _admin(self, method: str, path: str, body: Any) -> Any:
        req = urllib.request.Request(
            f"{self.issuer}/_dev{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {self.admin_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def set_groups(self, user: str, groups: list[str]) -> None:
        """Change a user's groups at the provider; the hub sees them at its next refresh."""
        self._admin("PUT", f"/users/{user}/groups", groups)

    def spoil_next_id_token(self, kind: str | None) -> None:
        """Make the next token response carry a ``forged`` or ``expired`` ID token."""
        self._admin("PUT", "/faults", {"id_token": kind})
