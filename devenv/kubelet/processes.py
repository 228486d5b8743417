"""Container processes on the host: starting them through the ``enter`` wrapper, recognising them
again after a kubelet restart, signalling and killing them.

A container is one wrapper process (the leader of its own session and process group; its pid is
the container id) and the container program, a child of the wrapper in a process group of its
own. Every process of the container, including any that later leave both groups, carries the
environment variable ``MLTEAMS_KUBELET_CONTAINER=<pod uid>/<container>``; that is how leftovers are
found and killed, the way a container runtime kills what remains in a container's cgroup.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .podspec import CONTAINER_MARKER

ENTER_SCRIPT = Path(__file__).with_name("enter.py")


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """State letter, session id and start time (clock ticks after boot) of ``pid``."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[3]), int(fields[19])


def start_time(pid: int) -> int | None:
    stat = proc_stat(pid)
    return stat[2] if stat else None


def is_alive(pid: int, started: int) -> bool:
    """True when ``pid`` is still the process that started at ``started`` and has not exited."""
    stat = proc_stat(pid)
    return stat is not None and stat[2] == started and stat[0] not in ("Z", "X")


def marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment carries the container marker ``marker``."""
    needle = f"{CONTAINER_MARKER}={marker}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class ContainerProcess:
    """A running container: the wrapper's pid and start time, and the Popen handle when the
    wrapper is this kubelet's own child (adopted ones are watched through /proc)."""

    pid: int
    started: int
    marker: str
    popen: subprocess.Popen[bytes] | None = None

    @property
    def container_id(self) -> str:
        return f"process://{self.pid}"

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return is_alive(self.pid, self.started)

    def return_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def terminate(self) -> None:
        """SIGTERM to the wrapper's process group; the wrapper passes it to the program's group."""
        if self.alive():
            _signal(self.pid, signal.SIGTERM, group=True)

    def kill(self) -> None:
        """SIGKILL the wrapper, the program's group and every other process of the container."""
        if self.alive():
            _signal(self.pid, signal.SIGKILL, group=True)
        kill_marked(self.marker)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def kill_marked(marker: str) -> int:
    """SIGKILL every process carrying ``marker``; the number signalled."""
    pids = marked_processes(marker)
    for pid in pids:
        _signal(pid, signal.SIGKILL, group=False)
    return len(pids)


def start_container(
    spec_file: Path, log_file: Path, marker: str, inherited: dict[str, str]
) -> ContainerProcess:
    """Start the wrapper for the container described by ``spec_file`` (see ``enter``)."""
    env = dict(inherited)
    env[CONTAINER_MARKER] = marker
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-I", str(ENTER_SCRIPT), str(spec_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
    started = start_time(popen.pid) or 0
    return ContainerProcess(pid=popen.pid, started=started, marker=marker, popen=popen)


def read_exit_file(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
