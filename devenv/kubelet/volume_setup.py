"""Creating the local directories and files that back a pod's volumes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .volumes import VolumeError, VolumeFile, VolumeSource

_HOST_PATH_CHECKS = {
    "Directory": stat.S_ISDIR,
    "File": stat.S_ISREG,
    "Socket": stat.S_ISSOCK,
    "CharDevice": stat.S_ISCHR,
    "BlockDevice": stat.S_ISBLK,
}


def _write_files(root: Path, files: dict[str, VolumeFile]) -> None:
    """Make ``root`` hold exactly ``files``, rewriting only what changed (in place, so that bind
    mounts of ``root`` in running containers see the new content)."""
    root.mkdir(parents=True, exist_ok=True)
    wanted = {root / rel for rel in files}
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for filename in filenames:
            path = Path(dirpath) / filename
            if path not in wanted:
                path.unlink(missing_ok=True)
        if Path(dirpath) != root and not any(Path(dirpath).iterdir()):
            Path(dirpath).rmdir()
    for rel, item in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            unchanged = path.read_bytes() == item.data
        except (FileNotFoundError, IsADirectoryError):
            unchanged = False
        if not unchanged:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(item.data)
            os.replace(tmp, path)
        os.chmod(path, item.mode)


def _host_path(source: VolumeSource) -> None:
    path = source.path
    kind = source.host_type
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
        return
    if kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        return
    check = _HOST_PATH_CHECKS.get(kind)
    if check is None:
        return
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise VolumeError(f"hostPath type check failed: {path} does not exist") from None
    if not check(mode):
        raise VolumeError(f"hostPath type check failed: {path} is not a {kind}")


def materialise(sources: dict[str, VolumeSource]) -> None:
    for source in sources.values():
        if source.files is not None:
            _write_files(source.path, source.files)
        elif source.host_type or not source.create:
            _host_path(source)
        else:
            source.path.mkdir(parents=True, exist_ok=True)
