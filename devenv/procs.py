"""Child processes of the local platform: started with a marker, stopped by pid, never left behind.

Every process the platform starts carries ``MLTEAMS_RIG=<id>`` in its environment and inherits
it to its own children, so a leak check can find any survivor by reading ``/proc/*/environ``.
Children started from the main thread also get SIGTERM from the kernel if the process that
started them dies. Each child has its own session, so a Ctrl-C in the terminal reaches only the
launcher, which then stops the children in order (hub before kubelet before control plane).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "MLTEAMS_RIG"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _in_main_thread() -> bool:
    """The kernel sends the parent-death signal when the *thread* that forked the child ends, so
    it is only asked for children started from the main thread (which lives as long as the
    process); children started from worker threads rely on being stopped explicitly."""
    return threading.current_thread() is threading.main_thread()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Child:
    """One started process with its log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, then SIGKILL; then what is left of its process group (each child
        leads its own): helpers it started in its group, such as MLflow's job runner, which
        would otherwise outlive it for a while."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._end_group(timeout)

    def _end_group(self, timeout: float) -> None:
        if not group_members(self.pid):
            return
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not group_members(self.pid):
                return
            time.sleep(0.1)
        _signal_group(self.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass(frozen=True)
class ProcessStat:
    """A process as ``/proc/<pid>/stat`` shows it: its state letter, parent and group."""

    pid: int
    state: str
    ppid: int
    pgid: int

    @property
    def live(self) -> bool:
        return self.state != "Z"


def process_stats() -> Iterator[ProcessStat]:
    """Every process of this machine (as far as ``/proc`` lets us read it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            yield ProcessStat(int(entry.name), fields[0], int(fields[1]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            continue


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (zombies left out)."""
    return [p.pid for p in process_stats() if p.live and p.pgid == pgid]


@dataclass
class ProcessGroup:
    """The processes of one platform instance, stopped in reverse start order."""

    rig_id: str
    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        full_env = dict(os.environ if env is None else env)
        full_env[MARKER] = self.rig_id
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                list(argv),
                env=full_env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if _in_main_thread() else None,
                start_new_session=True,
            )
        child = Child(name, popen, log_path)
        self.children.append(child)
        return child

    def stop_child(self, child: Child | None, timeout: float = 15.0) -> None:
        """Stop one child (``None``: nothing to stop) and forget it."""
        if child is None:
            return
        child.stop(timeout=timeout)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


def processes_with_marker(rig_id: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries this rig's marker."""
    needle = f"{MARKER}={rig_id}".encode()
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in environ.split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry.name), cmdline.strip()))
    return found


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
