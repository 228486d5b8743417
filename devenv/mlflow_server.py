"""A real MLflow tracking server (SQL backend: sqlite) on a free loopback port.

Started through ``ProcessGroup`` so it carries the rig marker and is stopped with the rig.
Artifacts are served by the tracking server itself (``--serve-artifacts``), so clients need
no storage credentials.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .controlplane import StartError
from .procs import Child, ProcessGroup, free_port


@dataclass
class MLflowServer:
    state_dir: Path
    procs: ProcessGroup
    port: int = 0
    child: Child | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        ]

    def start(self, timeout: float = 180) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.child = self.procs.start(f"mlflow-{self.port}", self.argv(), cwd=self.state_dir)
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
