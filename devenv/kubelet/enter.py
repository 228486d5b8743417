"""Container entry: ``python -I enter.py SPEC.json``, run by the kubelet as a container's
first process. Standard library only, so it runs as a plain script.

It enters a private mount namespace (when the container has mounts), bind-mounts each volume
directory at its mount path (read-only where asked, creating missing mount points), then starts
the container program in its own process group with the container's environment and working
directory, passes on the signals it receives to that group, and when the program ends records
its exit in the spec's ``exitFile`` and exits with the same code. Failing to mount or to start
the program is recorded as exit code 128 with reason ``StartError``.

The spec is a JSON object: ``argv``, ``env``, ``cwd``, ``mounts`` (``source``, ``target``,
``readOnly``) and ``exitFile``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
START_ERROR = 128
FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


class EntryError(Exception):
    pass


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise EntryError(f"{what}: {os.strerror(errno)}")


def _private_namespace(libc: Any) -> None:
    _check(libc.unshare(CLONE_NEWNS), "unshare mount namespace")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")


def _prepare(source: Path, target: Path) -> None:
    if not source.exists():
        source.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise EntryError(f"cannot mount directory {source} over non-directory {target}")
        target.mkdir(parents=True, exist_ok=True)
    else:
        if target.is_dir():
            raise EntryError(f"cannot mount file {source} over directory {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)


def _bind(libc: Any, source: Path, target: Path, read_only: bool) -> None:
    _prepare(source, target)
    src, dst = os.fsencode(source), os.fsencode(target)
    _check(libc.mount(src, dst, None, MS_BIND | MS_REC, None), f"bind {source} at {target}")
    if read_only:
        inherited = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | inherited
        _check(libc.mount(b"none", dst, None, flags, None), f"remount {target} read-only")


def apply_mounts(mounts: list[dict[str, Any]]) -> None:
    if not mounts:
        return
    libc = _libc()
    _private_namespace(libc)
    for mount in mounts:
        _bind(libc, Path(mount["source"]), Path(mount["target"]), bool(mount.get("readOnly")))


def _write_exit(path: str, record: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(record, fh)
    os.replace(tmp, path)


def _start_error(spec: dict[str, Any], started_at: str, message: str) -> int:
    print(f"process kubelet: {message}", file=sys.stderr, flush=True)
    _write_exit(
        spec["exitFile"],
        {
            "exitCode": START_ERROR,
            "reason": "StartError",
            "message": message,
            "startedAt": started_at,
            "finishedAt": _stamp(),
        },
    )
    return START_ERROR


def run(spec: dict[str, Any]) -> int:
    started_at = _stamp()
    try:
        apply_mounts(spec.get("mounts") or [])
        Path(spec["cwd"]).mkdir(parents=True, exist_ok=True)
    except (EntryError, OSError) as exc:
        return _start_error(spec, started_at, f"failed to set up container: {exc}")
    try:
        child = subprocess.Popen(
            spec["argv"],
            env=spec["env"],
            cwd=spec["cwd"],
            stdin=subprocess.DEVNULL,
            preexec_fn=os.setpgrp,
            close_fds=True,
        )
    except FileNotFoundError:
        program = spec["argv"][0]
        where = "in $PATH" if "/" not in program else ""
        return _start_error(
            spec, started_at, f'exec: "{program}": executable file not found {where}'.strip()
        )
    except OSError as exc:
        return _start_error(spec, started_at, f'exec: "{spec["argv"][0]}": {exc.strerror or exc}')

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.killpg(child.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    code = child.wait()
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    record: dict[str, Any] = {"startedAt": started_at, "finishedAt": _stamp()}
    if code < 0:
        record["signal"] = -code
        code = 128 - code
    record["exitCode"] = code
    record["reason"] = "Completed" if code == 0 else "Error"
    _write_exit(spec["exitFile"], record)
    return code & 0xFF


def main() -> None:
    if len(sys.argv) != 2:
        print("usage: enter.py SPEC.json", file=sys.stderr)
        sys.exit(2)
    spec = json.loads(Path(sys.argv[1]).read_text())
    sys.exit(run(spec))


if __name__ == "__main__":
    main()
