"""Record the environment of each MLflow run created in the kernel, once, when it is created.

``EnvironmentRecorder.record`` is a ``run_hooks`` callback: it logs the artifacts
``environment/requirements.txt`` and ``environment/environment.json`` and the environment tags
on the new run, with the client that created it. The distributions are read from the
``.dist-info`` folder names (their metadata only when a name does not say) and kept until a
folder on ``sys.path`` changes (``pip install`` in the kernel); ``git`` runs with a short
timeout. A failure prints one warning and the run goes on without its environment.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from server_ext import contract as env
from server_ext.kernel.environment import (
    Distribution,
    GitState,
    Interpreter,
    environment_document,
    environment_tags,
    name_from_dist_info,
    parse_remotes,
    parse_status,
    requirements_text,
)
from server_ext.kernel.run_context import git_commit

GIT_ENV = {"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def installed_distributions() -> list[Distribution]:
    """The distributions on ``sys.path``, in path order, with the folder each was found in."""
    from importlib.metadata import distributions

    found = []
    for dist in distributions():
        path = getattr(dist, "_path", None)
        location = str(path.parent) if isinstance(path, Path) else ""
        parsed = name_from_dist_info(path.name) if isinstance(path, Path) else None
        if parsed is None:
            name, version = dist.metadata["Name"], dist.version
            if not name or not version:
                continue
            parsed = (str(name), str(version))
        found.append(Distribution(parsed[0], parsed[1], location))
    return found


def path_fingerprint() -> tuple[tuple[str, int], ...]:
    """Modification times of the folders on ``sys.path``: installing a package changes one."""
    stamps = []
    for entry in sys.path:
        try:
            stamps.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(stamps)


def interpreter() -> Interpreter:
    return Interpreter(
        version=platform.python_version(),
        implementation=platform.python_implementation(),
        executable=sys.executable,
        prefix=sys.prefix,
        base_prefix=sys.base_prefix,
        platform=platform.platform(),
        system=platform.system(),
        machine=platform.machine(),
    )


class GitMissing(Exception):
    """No ``git`` executable."""


def _git(folder: str, timeout: float, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", folder, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **GIT_ENV},
        )
    except FileNotFoundError:
        raise GitMissing from None
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(folder: str, timeout: float) -> GitState | None:
    """The repository holding ``folder``; ``None`` when there is none or ``git`` cannot tell.

    Without a ``git`` executable the commit is still read from ``.git`` (nothing else)."""
    try:
        status = _git(folder, timeout, "status", "--porcelain=v2", "--branch", "-uno")
        state = parse_status(status) if status is not None else None
        if state is None or state.commit is None:
            return None
        root = (_git(folder, timeout, "rev-parse", "--show-toplevel") or "").strip() or None
        remotes = _git(folder, timeout, "remote", "-v")
    except GitMissing:
        commit = git_commit(folder)
        return GitState(commit=commit) if commit else None
    return GitState(
        commit=state.commit,
        branch=state.branch,
        dirty=state.dirty,
        changed_files=state.changed_files,
        remote_url=parse_remotes(remotes) if remotes else None,
        root=root,
    )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class EnvironmentRecorder:
    """Logs the environment of each new run; one warning for all failures."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        home: str,
        git_timeout: float = 2.0,
        warn: Callable[[str], None] | None = None,
        cwd: Callable[[], str] = os.getcwd,
        distributions: Callable[[], list[Distribution]] = installed_distributions,
        fingerprint: Callable[[], object] = path_fingerprint,
    ) -> None:
        self.environ = environ
        self.home = home
        self.git_timeout = git_timeout
        self.cwd = cwd
        self._distributions = distributions
        self._fingerprint = fingerprint
        self._cache: tuple[object, list[Distribution]] | None = None
        self._interpreter: Interpreter | None = None
        self._warn = warn
        self.warned = False
        self.recorded: set[str] = set()

    def warn(self, message: str) -> None:
        if self.warned:
            return
        self.warned = True
        if self._warn is not None:
            self._warn(message)
        else:
            print(f"mlteams warning: {message}", file=sys.stderr, flush=True)

    def distributions(self) -> list[Distribution]:
        stamp = self._fingerprint()
        if self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, self._distributions())
        return self._cache[1]

    def notebook_path(self) -> str:
        return self.environ.get(env.SESSION_NAME, "")

    def capture(self) -> tuple[dict[str, Any], str]:
        """The environment document and the requirements text, as they are now."""
        if self._interpreter is None:
            self._interpreter = interpreter()
        notebook = self.notebook_path()
        folder = os.path.dirname(notebook) if os.path.isabs(notebook) else self.cwd()
        dists = self.distributions()
        doc = environment_document(
            interpreter=self._interpreter,
            environ=self.environ,
            dists=dists,
            git=git_state(folder, self.git_timeout) if os.path.isdir(folder) else None,
            notebook_path=notebook,
            home=self.home,
            captured_at=_now(),
        )
        return doc, requirements_text(dists)

    def record(self, client: Any, run_id: str) -> None:
        """Log the environment on run ``run_id`` (once per run; never raises)."""
        if run_id in self.recorded:
            return
        self.recorded.add(run_id)
        try:
            doc, requirements = self.capture()
            log_environment(client, run_id, doc, requirements)
        except Exception as exc:
            self.warn(
                f"the environment of MLflow run {run_id} could not be recorded ({exc}); "
                "the run itself is tracked."
            )


def log_environment(client: Any, run_id: str, doc: dict[str, Any], requirements: str) -> None:
    """Tags and the two artifacts on ``run_id`` (a new ``MlflowClient`` when ``client`` is None)."""
    from mlflow.entities import RunTag

    if client is None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
    tags = [RunTag(k, v[:5000]) for k, v in environment_tags(doc).items()]
    client.log_batch(run_id, tags=tags)
    with tempfile.TemporaryDirectory(prefix="mlteams-env-") as tmp:
        folder = Path(tmp, env.ENVIRONMENT_DIR)
        folder.mkdir()
        (folder / Path(env.REQUIREMENTS_ARTIFACT).name).write_text(requirements)
        (folder / Path(env.ENVIRONMENT_ARTIFACT).name).write_text(
            json.dumps(doc, indent=2, sort_keys=True) + "\n"
        )
        client.log_artifacts(run_id, str(folder), env.ENVIRONMENT_DIR)
