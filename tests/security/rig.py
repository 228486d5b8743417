"""What an operator of the rig can read: the processes' environments (``/proc/<pid>/environ`` of
every process carrying the suite's marker) and tokens asked for with chosen scopes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from devenv.hub import LocalHub
from devenv.procs import MARKER
from tests.integration.sharing_helpers import signed_in
from tests.kube_helpers import poll
from tests.security.scanner import MIN_SECRET_LENGTH

SECRET_VARIABLE = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|_KEY$")
"""Environment variables that carry a secret value (an access key's id does not)."""
WHERE_VARIABLE = re.compile(r"_(URL|URI|ENDPOINT|FILE|PATH|DIR)$")
"""Variables that say where a secret is or is asked for (a token endpoint, a key file), which
the rig publishes: not secrets themselves."""
NAMES_NOT_SECRET = frozenset({"_MLFLOW_HUEY_INSTANCE_KEY"})
"""Secret-looking names that hold no secret: MLflow names each job runner's queue with
``_MLFLOW_HUEY_INSTANCE_KEY`` and lists it in its public ``server-info`` answer."""


@dataclass(frozen=True)
class RigProcess:
    pid: int
    command: str
    environment: dict[str, str]

    def secrets(self) -> dict[str, str]:
        """Its secret-named variables; short values are settings (a cache size, a period), not
        secrets: every secret the rig generates is longer."""
        return {
            name: value
            for name, value in self.environment.items()
            if SECRET_VARIABLE.search(name)
            and not WHERE_VARIABLE.search(name)
            and name not in NAMES_NOT_SECRET
            and len(value) >= MIN_SECRET_LENGTH
        }


def rig_processes(rig_id: str | None = None) -> list[RigProcess]:
    """Every live process started by this test session, with its environment."""
    wanted = rig_id or os.environ[MARKER]
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            raw = (proc / "environ").read_bytes().split(b"\0")
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        environment = dict(
            item.decode(errors="replace").partition("=")[::2] for item in raw if b"=" in item
        )
        if environment.get(MARKER) == wanted:
            found.append(RigProcess(int(proc.name), command.strip(), environment))
    return found


def server_environment(hub: LocalHub, user: str, timeout: float = 60) -> dict[str, str]:
    """The environment of ``user``'s single-user server on ``hub`` (the pod's process)."""
    hub_api = f"127.0.0.1:{hub.hub_port}/hub"
    seen: list[str] = []

    def found() -> dict[str, str] | None:
        seen.clear()
        for process in rig_processes():
            env = process.environment
            if "JUPYTERHUB_USER" in env:
                seen.append(f"{env['JUPYTERHUB_USER']} at {env.get('JUPYTERHUB_API_URL')}")
            if env.get("JUPYTERHUB_USER") == user and hub_api in env.get("JUPYTERHUB_API_URL", ""):
                if env.get("JUPYTERHUB_API_TOKEN"):
                    return env
        return None

    environment = poll(found, lambda env: env is not None, timeout=timeout, interval=1)
    if environment is None:
        raise AssertionError(
            f"{user}'s server process on the hub at {hub_api} was not found; servers seen: {seen}"
        )
    return environment


def scoped_token(hub: LocalHub, user: str, scopes: list[str], note: str) -> str:
    """A new token of ``user`` limited to ``scopes``, asked for as the user does (signed in)."""
    with signed_in(hub, user) as session:
        made = session.post(
            f"{hub.url}/hub/api/users/{user}/tokens",
            json={"note": note, "scopes": scopes},
            headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        token: str = made.json()["token"]
        return token
