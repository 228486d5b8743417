"""Project kernels, the part that acts: finds projects under the notebook root, builds their
environments from the plans of ``projects`` and registers their kernelspecs.

Layout on the home volume, per project (``<slug>`` from ``projects.project_slug``)::

    ~/.mlteams/envs/<slug>/state.json          the build in use, its file's sha256, last failure
    ~/.mlteams/envs/<slug>/build.log           the last build's output
    ~/.mlteams/envs/<slug>/build-<sha>-<time>/ one folder per build (the one in use is kept)
    <jupyter data dir>/kernels/mlteams-<slug>/kernel.json

A build goes into a new folder; only when every step succeeded do the kernelspec and
``state.json`` switch to it, and the older folders are removed. A failed build removes its own
folder and leaves the working environment and its kernel as they were. A build with the same
file as the working environment does nothing. Builds of one project are serialised by a lock
file, across the server and the ``mlteams-env`` command.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from server_ext.environments import projects as p

ENVS_DIR = Path(".mlteams") / "envs"
"""Under the home folder: the project environments."""

SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages"})
MAX_DEPTH = 4
MAX_PROJECTS = 200
MAX_FOLDERS = 5000
DEFAULT_TIMEOUT = 1800.0


class NoProject(LookupError):
    """The folder is missing or has neither a requirements.txt nor an environment.yml."""


class BuildBusy(RuntimeError):
    """Another build of the same project is running."""


@dataclass(frozen=True)
class Project:
    path: str
    folder: Path
    spec_file: str

    @property
    def spec_path(self) -> Path:
        return self.folder / self.spec_file

    @property
    def slug(self) -> str:
        return p.project_slug(self.path)

    @property
    def kernel(self) -> str:
        return p.kernel_name(self.slug)


@dataclass(frozen=True)
class BuildResult:
    project: str
    state: str
    kernel: str | None
    rebuilt: bool
    message: str
    log_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.project,
            "state": self.state,
            "kernel": self.kernel,
            "rebuilt": self.rebuilt,
            "message": self.message,
            "log_tail": self.log_tail,
        }


def _inside_or_same(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _now() -> datetime:
    return datetime.now(timezone.utc)


def find_conda() -> str:
    """The image's mamba or conda, if it has one."""
    return shutil.which("mamba") or shutil.which("conda") or os.environ.get("CONDA_EXE", "")


@dataclass
class ProjectStore:
    """The projects under ``root`` with environments in ``envs`` and kernelspecs in ``kernels``.

    ``python`` creates the virtualenvs, which see its site folders (``site_dirs``) after their
    own; ``ipython_dir`` (its prefix's ``etc/ipython``, with the tracking hook's startup file) is
    linked into each, so project kernels are tracked like the image's."""

    root: Path
    envs: Path
    kernels: Path
    python: str = sys.executable
    site_dirs: tuple[str, ...] = field(default_factory=lambda: tuple(site.getsitepackages()))
    ipython_dir: str = ""
    conda: str = field(default_factory=find_conda)
    timeout: float = DEFAULT_TIMEOUT
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def __post_init__(self) -> None:
        if not self.ipython_dir:
            candidate = Path(sys.prefix) / "etc" / "ipython"
            self.ipython_dir = str(candidate) if candidate.is_dir() else ""

    # -- finding projects ---------------------------------------------------------------------

    def locate(self, raw_path: object) -> Project:
        """The project at ``raw_path`` (relative to the root); ``BadProjectPath`` when it leaves
        the root, ``NoProject`` when there is no project there."""
        rel = p.parse_project_path(raw_path)
        root = self.root.resolve()
        folder = (root / rel).resolve()
        if not _inside_or_same(folder, root) or folder == root:
            raise p.BadProjectPath(f"{rel} leads outside the notebook root (through a link)")
        if not folder.is_dir():
            raise NoProject(f"there is no folder {rel} in your notebook root")
        for name in p.SPEC_FILES:
            spec = folder / name
            if spec.is_file():
                if not _inside_or_same(spec.resolve(), root):
                    raise p.BadProjectPath(f"{rel}/{name} is a link to outside the notebook root")
                return Project(path=rel, folder=folder, spec_file=name)
        raise NoProject(f"{rel} has no {p.REQUIREMENTS} (or {p.ENVIRONMENT_YML}) to build from")

    def discover(self) -> list[Project]:
        """Every folder under the root (not hidden, at most ``MAX_DEPTH`` deep, among the first
        ``MAX_FOLDERS`` visited) with a requirements.txt or an environment.yml, sorted by path."""
        root = self.root.resolve()
        found: list[Project] = []
        for visited, (current, dirs, files) in enumerate(os.walk(root)):
            if visited >= MAX_FOLDERS:
                break
            here = Path(current)
            depth = len(here.relative_to(root).parts)
            dirs[:] = (
                sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
                if depth < MAX_DEPTH
                else []
            )
            if here == root:
                continue
            spec = next((n for n in p.SPEC_FILES if n in files), None)
            if spec is not None:
                found.append(Project(here.relative_to(root).as_posix(), here, spec))
                if len(found) >= MAX_PROJECTS:
                    break
        return sorted(found, key=lambda x: x.path)

    # -- state --------------------------------------------------------------------------------

    def _dir(self, project: Project) -> Path:
        return self.envs / project.slug

    def _kernel_file(self, project: Project) -> Path:
        return self.kernels / project.kernel / "kernel.json"

    def record(self, project: Project) -> p.Record | None:
        try:
            text = (self._dir(project) / p.STATE_FILE).read_text()
        except OSError:
            return None
        return p.parse_record(text, project.path)

    def _build_present(self, project: Project, record: p.Record | None) -> bool:
        return bool(record and record.build and (self._dir(project) / record.build).is_dir())

    def status(self, project: Project) -> dict[str, Any]:
        sha = p.file_digest(project.spec_path.read_bytes())
        record = self.record(project)
        present = self._build_present(project, record)
        state = p.project_state(sha, record, present)
        runs = present and self._kernel_file(project).is_file()
        return {
            "path": project.path,
            "file": project.spec_file,
            "state": state,
            "kernel": project.kernel if runs else None,
            "display_name": p.display_name(project.path),
            "sha256": sha,
            "built_sha256": record.sha256 if record and present else None,
            "built_at": record.built_at if record and present else None,
            "error": record.failure.message
            if record and record.failure and state == p.FAILED
            else None,
        }

    # -- building -----------------------------------------------------------------------------

    @contextmanager
    def _lock(self, project: Project) -> Iterator[None]:
        folder = self._dir(project)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BuildBusy(
                    f"{project.path} is being built right now; wait for that build to finish"
                ) from None
            yield
        finally:
            os.close(fd)

    def build(self, project: Project, force: bool = False) -> BuildResult:
        """Build ``project`` unless its environment was built from the file as it is now."""
        with self._lock(project):
            content = project.spec_path.read_bytes()
            sha = p.file_digest(content)
            record = self.record(project)
            present = self._build_present(project, record)
            if not force and not p.needs_build(
                sha, record, present, self._kernel_file(project).is_file()
            ):
                return BuildResult(
                    project.path,
                    p.READY,
                    project.kernel,
                    False,
                    f"{project.path} is up to date: {project.spec_file} has not changed",
                )
            return self._build(project, sha, record if record else p.Record(project.path))

    def _build(self, project: Project, sha: str, record: p.Record) -> BuildResult:
        folder = self._dir(project)
        started = _now()
        name = p.build_name(sha, started.strftime("%Y%m%dT%H%M%S%fZ"))
        build_dir = folder / name
        inputs = p.BuildInputs(
            spec_file=project.spec_file,
            spec_path=str(project.spec_path),
            build_dir=str(build_dir),
            python=self.python,
            site_dirs=self.site_dirs,
            ipython_dir=self.ipython_dir,
            python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
            conda=self.conda,
        )
        steps = p.build_plan(inputs)
        log_path = folder / p.LOG_FILE
        with open(log_path, "w") as log:
            print(f"# building {project.path} from {project.spec_file} (sha256 {sha})", file=log)
            failure = self._run(steps, project, log)
        log_text = log_path.read_text(errors="replace")
        tail = p.log_tail(log_text)
        previous = self._build_present(project, record)
        if failure:
            shutil.rmtree(build_dir, ignore_errors=True)
            kept = (
                "; the previous environment is kept and its kernel still runs" if previous else ""
            )
            message = f"the build of {project.path} failed: {failure}{kept}"
            failed = replace(record, failure=p.Failure(sha, started.isoformat(), message, tail))
            self._write_record(folder, failed)
            return BuildResult(
                project.path, p.FAILED, project.kernel if previous else None, True, message, tail
            )
        python = p.env_python(str(build_dir))
        self._write_kernelspec(project, p.kernelspec(python, project.path, sha))
        done = p.Record(
            path=project.path,
            spec_file=project.spec_file,
            sha256=sha,
            build=name,
            python=python,
            built_at=_now().isoformat(),
        )
        self._write_record(folder, done)
        for old in folder.glob("build-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return BuildResult(
            project.path,
            p.READY,
            project.kernel,
            True,
            f"built {project.path}: choose the kernel '{p.display_name(project.path)}'",
            tail,
        )

    def _run(self, steps: list[p.Step], project: Project, log: Any) -> str:
        """Run ``steps``; the failure message of the first that fails, or ''."""
        env = p.build_environ(self.environ)
        for step in steps:
            try:
                if step.action == "run":
                    print("$ " + " ".join(step.argv), file=log, flush=True)
                    done = subprocess.run(
                        step.argv,
                        cwd=project.folder,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        timeout=self.timeout,
                        check=False,
                    )
                    if done.returncode != 0:
                        return f"{step.failure} (exit code {done.returncode}; see the log)"
                elif step.action == "write":
                    Path(step.path).parent.mkdir(parents=True, exist_ok=True)
                    Path(step.path).write_text(step.text)
                elif step.action == "link":
                    Path(step.path).parent.mkdir(parents=True, exist_ok=True)
                    Path(step.path).symlink_to(step.target, target_is_directory=True)
            except subprocess.TimeoutExpired:
                return f"{step.failure}: it took longer than {self.timeout:.0f} seconds"
            except OSError as exc:
                print(f"error: {exc}", file=log, flush=True)
                reason = exc.strerror or type(exc).__name__
                return f"{step.failure or 'could not prepare the environment'}: {reason}"
        return ""

    def _write_kernelspec(self, project: Project, spec: dict[str, Any]) -> None:
        target = self._kernel_file(project)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(spec, indent=1))
        os.replace(tmp, target)

    def _write_record(self, folder: Path, record: p.Record) -> None:
        tmp = folder / (p.STATE_FILE + ".tmp")
        tmp.write_text(record.to_json())
        os.replace(tmp, folder / p.STATE_FILE)


def default_store(
    root: Path, home: Path | None = None, kernels: Path | None = None
) -> ProjectStore:
    """The store of the running image: environments under ``~/.mlteams/envs``, kernelspecs in the
    user's Jupyter data folder."""
    if kernels is None:
        from jupyter_core.paths import jupyter_data_dir

        kernels = Path(jupyter_data_dir()) / "kernels"
    return ProjectStore(root=root, envs=(home or Path.home()) / ENVS_DIR, kernels=kernels)
