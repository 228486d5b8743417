"""The rig's notebook image: a Python for the pods that behaves like the notebook image's.

The process kubelet runs a pod's program from the local environment, not from its image. The
project's ``.venv`` is a virtualenv without system site packages, and such an interpreter has no
user site: ``pip install --user`` refuses ("User site-packages are not visible in this
virtualenv") and nothing in ``~/.local`` is imported. The notebook image's interpreter (a conda
base) has one, and its pip installs there by default (``[install] user = true`` in
``$PREFIX/pip.conf``, see images/notebook/Dockerfile).

This module builds, next to the project's virtualenv and without a second install, a small
environment that behaves like that image:

* a virtualenv made ``--system-site-packages --without-pip`` (so the user site is on), whose
  site-packages holds a ``.pth`` that adds the project virtualenv's site-packages (with their own
  ``.pth`` files, so the editable install of this project works): every package comes from
  ``.venv``, the user site comes before them as in the image;
* ``pip.conf`` at its prefix with ``[install] user = true``, the image's;
* ``share/jupyter``, ``etc/jupyter`` and ``etc/ipython`` linked to the project virtualenv's (Jupyter
  and IPython look under ``sys.prefix``: JupyterLab's assets, the server extension's and the
  kernel hook's configuration);
* in ``bin``, a copy of each of the virtualenv's console scripts (``jupyterhub-singleuser``,
  ``jupyter``, ``pip``, ...) whose first line names this environment's interpreter instead.

``python -m devenv.cluster`` (and so ``make demo`` and the tests) passes its ``bin`` to the
kubelet as ``--pod-bin``: first on every pod's ``PATH``. ``make setup`` builds it too. It is
rebuilt when the project virtualenv's scripts or this module change, under a lock, into a new
folder that replaces the old one.

Usage: ``python -m devenv.notebook_image`` prints the ``bin`` folder (building it if needed).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from server_ext.environments.projects import image_link_pth

from .paths import local_dir

PIP_CONF = "[install]\nuser = true\n"
"""The notebook image's pip configuration: installs go to the user base on the home volume."""

LINKED = ("share/jupyter", "etc/jupyter", "etc/ipython")
STAMP = ".mlteams-notebook-image"


def env_dir(venv: Path) -> Path:
    """Where the environment for ``venv`` lives: one per virtualenv (``.venv``, ``.venv-jh5``)."""
    key = hashlib.sha256(str(venv).encode()).hexdigest()[:8]
    return local_dir() / "notebook-image" / f"{venv.name.lstrip('.')}-{key}"


def _scripts(venv: Path) -> dict[str, bytes]:
    """The virtualenv's console scripts: the files of its ``bin`` whose first line runs its
    interpreter (the interpreter itself and the activate scripts are not among them)."""
    python = str(venv / "bin" / "python").encode()
    found = {}
    for entry in sorted((venv / "bin").iterdir()):
        if entry.is_symlink() or not entry.is_file():
            continue
        with open(entry, "rb") as f:
            head = f.read(512)
        first_lines = b"\n".join(head.split(b"\n")[:3])
        if head.startswith(b"#!") and python in first_lines:
            found[entry.name] = entry.read_bytes()
    return found


def _digest(venv: Path, scripts: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(str(venv).encode() + sys.version.encode())
    for name, content in scripts.items():
        h.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return h.hexdigest()


def _rewrite(content: bytes, venv: Path, target: Path) -> bytes:
    """``content`` with the virtualenv's interpreter replaced by ``target``'s in its header."""
    lines = content.split(b"\n")
    old, new = str(venv / "bin" / "python").encode(), str(target / "bin" / "python").encode()
    return b"\n".join([line.replace(old, new) for line in lines[:3]] + lines[3:])


def _build(venv: Path, target: Path, scripts: dict[str, bytes], digest: str) -> None:
    work = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "venv",
            "--system-site-packages",
            "--without-pip",
            str(work),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    relative_site = Path(sysconfig.get_path("purelib", vars={"base": ""}).lstrip("/"))
    venv_site = venv / relative_site
    (work / relative_site / "mlteams-rig-image.pth").write_text(image_link_pth((str(venv_site),)))
    (work / "pip.conf").write_text(PIP_CONF)
    for rel in LINKED:
        if (venv / rel).is_dir():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).symlink_to(venv / rel, target_is_directory=True)
    for name, content in scripts.items():
        script = work / "bin" / name
        if script.exists() or script.is_symlink():
            continue
        script.write_bytes(_rewrite(content, venv, target))
        script.chmod(0o755)
    (work / STAMP).write_text(digest)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(work, target)


def ensure(venv: Path | None = None) -> Path:
    """The ``bin`` folder of the notebook image environment for ``venv`` (default: the running
    interpreter's virtualenv), built or rebuilt if needed."""
    venv = Path(venv or sys.prefix).absolute()
    target = env_dir(venv)
    scripts = _scripts(venv)
    digest = _digest(venv, scripts)
    stamp = target / STAMP
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.parent / f"{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text() == digest):
            _build(venv, target, scripts, digest)
    finally:
        os.close(fd)
    return target / "bin"


if __name__ == "__main__":
    print(ensure())
