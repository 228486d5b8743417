"""A real PostgreSQL server (Debian's ``postgresql`` package) on a free loopback port.

For the tests of the ``mlteams`` service's database. PostgreSQL refuses to run as root, and the
rig runs as root: the data folder belongs to the package's ``postgres`` user, and ``initdb`` and
``postgres`` run as that user (``setpriv``). Started through ``ProcessGroup``, so it carries the
rig marker and is stopped with the rig.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .controlplane import StartError
from .procs import Child, ProcessGroup, free_port

SYSTEM_USER = "postgres"
DATABASE_USER = "mlteams"


def server_bin() -> Path:
    """The folder of ``initdb`` and ``postgres`` (``/usr/lib/postgresql/<version>/bin``)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not versions:
        raise StartError("PostgreSQL is not installed: run `make setup` (Debian's postgresql)")
    return versions[0].parent


def _as_postgres() -> list[str]:
    """The command prefix that runs as the ``postgres`` user when this process is root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--init-groups", "--"]


@dataclass
class LocalPostgres:
    state_dir: Path
    procs: ProcessGroup
    port: int = 0
    child: Child | None = field(default=None, init=False)

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def url(self) -> str:
        """A SQLAlchemy URL of the database ``mlteams`` (psycopg 3)."""
        return f"postgresql+psycopg://{DATABASE_USER}@127.0.0.1:{self.port}/{DATABASE_USER}"

    def _own(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SYSTEM_USER)
            for path in (self.state_dir, self.data_dir):
                os.chown(path, user.pw_uid, user.pw_gid)

    def start(self, timeout: float = 60) -> None:
        bin_dir = server_bin()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    *_as_postgres(),
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    DATABASE_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        self.port = self.port or free_port()
        self.child = self.procs.start(
            f"postgres-{self.port}",
            [
                *_as_postgres(),
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.data_dir),
                "-c",
                "fsync=off",
            ],
            cwd=self.state_dir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise StartError(f"postgres exited:\n{self.child.log_tail()}")
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise StartError(f"postgres did not answer in {timeout:.0f}s")

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user=DATABASE_USER,
                dbname="postgres",
                connect_timeout=2,
                autocommit=True,
            ) as connection:
                exists = connection.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_USER,)
                ).fetchone()
                if not exists:
                    connection.execute(f"CREATE DATABASE {DATABASE_USER}")
            return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        self.procs.stop_child(self.child)
        self.child = None
