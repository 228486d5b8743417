"""Run context: the tags every run of a notebook carries, computed from the pod's environment.

Pure except ``git_commit``, which reads files under ``.git`` (no subprocess, no network).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from server_ext import contract as env
from server_ext.contract import experiment_name, relative_notebook_path

TAG_TEAM = "mlteams.team"
TAG_USER = "mlteams.user"
TAG_PROFILE = "mlteams.profile"
TAG_IMAGE = env.TAG_IMAGE
TAG_GPU_TYPE = "mlteams.gpu_type"
TAG_GPUS = "mlteams.gpus"
TAG_NOTEBOOK = "mlteams.notebook_path"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = env.MLFLOW_GIT_COMMIT
TAG_MLFLOW_USER = "mlflow.user"


@dataclass(frozen=True)
class RunContext:
    """Who and what a run belongs to."""

    team: str
    user: str
    profile: str = ""
    image: str = ""
    gpus: int = 0
    gpu_type: str = ""
    notebook_path: str = ""
    notebook_root: str = ""
    git_commit: str | None = None

    @property
    def relative_path(self) -> str:
        return relative_notebook_path(self.notebook_path, self.notebook_root)

    @property
    def experiment_name(self) -> str:
        return experiment_name(self.team, self.user, self.relative_path)

    def tags(self) -> dict[str, str]:
        tags = {
            TAG_TEAM: self.team,
            TAG_USER: self.user,
            TAG_MLFLOW_USER: self.user,
            TAG_PROFILE: self.profile,
            TAG_IMAGE: self.image,
            TAG_GPUS: str(self.gpus),
        }
        if self.gpu_type:
            tags[TAG_GPU_TYPE] = self.gpu_type
        if self.notebook_path:
            tags[TAG_NOTEBOOK] = self.notebook_path
            tags[TAG_SOURCE_NAME] = self.notebook_path
            tags[TAG_SOURCE_TYPE] = "NOTEBOOK"
        if self.git_commit:
            tags[TAG_GIT_COMMIT] = self.git_commit
        return {k: v for k, v in tags.items() if v != ""}


def _int(text: str | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0


def context_from_env(
    environ: Mapping[str, str], *, git_commit: str | None = None
) -> RunContext | None:
    """The context of this server's kernels; ``None`` outside a team server."""
    team = environ.get(env.TEAM, "")
    user = environ.get(env.USER, "")
    if not team or not user:
        return None
    return RunContext(
        team=team,
        user=user,
        profile=environ.get(env.PROFILE, ""),
        image=environ.get(env.IMAGE, ""),
        gpus=_int(environ.get(env.GPUS)),
        gpu_type=environ.get(env.GPU_TYPE, ""),
        notebook_path=environ.get(env.SESSION_NAME, ""),
        notebook_root=environ.get(env.NOTEBOOK_ROOT) or environ.get("HOME", ""),
        git_commit=git_commit,
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            text = _read(dot) or ""
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:") :].strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def _is_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def git_commit(path: str | os.PathLike[str]) -> str | None:
    """The commit checked out in the repository containing ``path``, or ``None``."""
    start = Path(path)
    git = _git_dir(start if start.is_dir() else start.parent)
    if git is None:
        return None
    head = _read(git / "HEAD")
    if not head:
        return None
    if _is_sha(head):
        return head
    if not head.startswith("ref:"):
        return None
    ref = head[4:].strip()
    common = git
    commondir = _read(git / "commondir")
    if commondir:
        common = (git / commondir).resolve()
    for base in (git, common):
        value = _read(base / ref)
        if value and _is_sha(value):
            return value
    packed = _read(common / "packed-refs") or ""
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and _is_sha(sha):
            return sha
    return None
