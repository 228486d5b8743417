"""Project kernels, the pure part: a project's path, slug and kernel name, the state of its
environment, the kernelspec and the build plan. Data in, decisions out; no file is read here.

A project is a folder under the notebook root holding a ``requirements.txt`` (built as a
virtualenv) or an ``environment.yml`` (built with conda or mamba, when the image has one). Its
environment lives in ``~/.mlteams/envs/<slug>/`` on the home volume, one build folder per build;
``state.json`` there names the build in use and the sha256 of the file it was built from.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from server_ext import contract

REQUIREMENTS = "requirements.txt"
ENVIRONMENT_YML = "environment.yml"
SPEC_FILES = (REQUIREMENTS, ENVIRONMENT_YML)
"""The files that make a folder a project, in order of preference."""

KERNEL_PREFIX = "mlteams-"
STATE_FILE = "state.json"
LOG_FILE = "build.log"
MAX_PATH = 1024
MAX_SLUG = 60
LOG_TAIL_LINES = 40

NOT_BUILT = "not-built"
READY = "ready"
STALE = "stale"
FAILED = "failed"
STATES = (NOT_BUILT, READY, STALE, FAILED)

_SEGMENT = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_UNSAFE = re.compile(r"[^a-z0-9]+")


class BadProjectPath(ValueError):
    """The project path is not a folder inside the notebook root; the message says why."""


def parse_project_path(raw: object) -> str:
    """A project folder as given by a request or the command line: relative to the notebook
    root, ``/``-separated, normalised; never absolute and never leaving the root."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadProjectPath("give the project folder as 'path', relative to the notebook root")
    text = raw.strip()
    if len(text) > MAX_PATH or not text.isprintable():
        raise BadProjectPath("the project path is too long or has control characters")
    if text.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", text):
        raise BadProjectPath(
            f"the project path must be relative to the notebook root, got {text[:80]!r}"
        )
    parts = text.replace("\\", "/").split("/")
    if ".." in parts:
        raise BadProjectPath(f"the project path must stay inside the notebook root: {text[:80]!r}")
    norm = posixpath.normpath("/".join(parts))
    if norm in ("", "."):
        raise BadProjectPath(
            "the notebook root itself is not a project: give a folder inside it, "
            "such as projects/churn"
        )
    return norm


def project_slug(path: str) -> str:
    """A name for ``path`` usable in file and kernel names: the path itself with ``--`` between
    folders when that is unambiguous (``projects/churn`` -> ``projects--churn``), otherwise a
    readable part and a short hash of the path."""
    segments = path.split("/")
    simple = "--".join(segments)
    if all(_SEGMENT.match(s) for s in segments) and len(simple) <= MAX_SLUG:
        return simple
    readable = _UNSAFE.sub("-", path.lower()).strip("-")[: MAX_SLUG - 9].rstrip("-")
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    return f"{readable}-{digest}" if readable else f"project-{digest}"


def kernel_name(slug: str) -> str:
    return KERNEL_PREFIX + slug


def display_name(path: str) -> str:
    return f"Python (project {path})"


def file_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class Failure:
    """The last build that failed: from which file, when, and the end of its log."""

    sha256: str
    at: str
    message: str
    log_tail: str = ""


@dataclass(frozen=True)
class Record:
    """``state.json`` of a project: the build in use and the last failure, if any."""

    path: str
    spec_file: str = ""
    sha256: str = ""
    build: str = ""
    python: str = ""
    built_at: str = ""
    failure: Failure | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def parse_record(text: str, path: str) -> Record:
    """The record in ``text``; an empty one for ``path`` when the text is not a record."""
    try:
        raw = json.loads(text)
    except ValueError:
        return Record(path=path)
    if not isinstance(raw, dict):
        return Record(path=path)
    failure = raw.get("failure")
    fields = {k: str(raw.get(k) or "") for k in ("spec_file", "sha256", "build", "python")}
    return Record(
        path=path,
        built_at=str(raw.get("built_at") or ""),
        failure=Failure(
            sha256=str(failure.get("sha256", "")),
            at=str(failure.get("at", "")),
            message=str(failure.get("message", "")),
            log_tail=str(failure.get("log_tail", "")),
        )
        if isinstance(failure, dict)
        else None,
        **fields,
    )


def project_state(file_sha: str, record: Record | None, build_present: bool) -> str:
    """``not-built`` (no working environment), ``ready`` (built from the file as it is now),
    ``stale`` (built from an earlier version of the file), ``failed`` (the last build of the
    file as it is now failed; a previous environment, if any, still runs the kernel)."""
    if record is not None and record.failure is not None and record.failure.sha256 == file_sha:
        return FAILED
    if record is None or not record.build or not build_present:
        return NOT_BUILT
    return READY if record.sha256 == file_sha else STALE


def needs_build(
    file_sha: str, record: Record | None, build_present: bool, kernelspec_present: bool
) -> bool:
    """Whether a build request must build: not when the working environment was built from this
    very file and its kernelspec is in place."""
    return not (
        kernelspec_present
        and build_present
        and record is not None
        and record.sha256 == file_sha
        and bool(record.build)
    )


def build_name(file_sha: str, stamp: str) -> str:
    """A new build folder's name: the file's digest and a time stamp, never reused."""
    return f"build-{file_sha[:12]}-{stamp}"


def kernelspec(python: str, path: str, file_sha: str) -> dict[str, Any]:
    """The kernel.json of a project's kernel, run by the environment's own interpreter; its
    environment names the kernel, so a tracked run records which project kernel made it."""
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name(path),
        "language": "python",
        "env": {contract.KERNEL_NAME: kernel_name(project_slug(path))},
        "metadata": {
            "debugger": True,
            "mlteams": {"project": path, "sha256": file_sha},
        },
    }


@dataclass(frozen=True)
class Step:
    """One step of a build: run ``argv`` (in the project folder), or write ``text`` to ``path``,
    or link ``path`` to ``target``. ``failure`` is what the user reads when the step fails."""

    action: str
    argv: tuple[str, ...] = ()
    path: str = ""
    text: str = ""
    target: str = ""
    failure: str = ""


@dataclass(frozen=True)
class BuildInputs:
    """What a plan depends on, gathered by the caller from the running image."""

    spec_file: str
    spec_path: str
    build_dir: str
    python: str
    site_dirs: Sequence[str] = ()
    ipython_dir: str = ""
    python_version: str = "3"
    conda: str = ""
    environ: Mapping[str, str] = field(default_factory=dict)


class CannotBuild(ValueError):
    """The project cannot be built in this image; the message says why and what to do."""


def env_python(build_dir: str) -> str:
    return posixpath.join(build_dir, "bin", "python")


def image_link_pth(site_dirs: Sequence[str]) -> str:
    """A ``.pth`` file that puts the image's site folders after the environment's own, with
    their own ``.pth`` files processed (``site.addsitedir``), so the image's packages (ipykernel
    among them) are importable while the environment's own versions come first."""
    dirs = ", ".join(repr(d) for d in site_dirs)
    return f"import site; list(map(site.addsitedir, ({dirs},)))\n"


def build_plan(inputs: BuildInputs) -> list[Step]:
    """The steps that build a project's environment into ``inputs.build_dir``."""
    python = env_python(inputs.build_dir)
    if inputs.spec_file == REQUIREMENTS:
        site_dir = posixpath.join(
            inputs.build_dir, "lib", f"python{inputs.python_version}", "site-packages"
        )
        steps = [
            Step(
                "run",
                argv=(inputs.python, "-m", "venv", "--without-pip", inputs.build_dir),
                failure="could not create the virtual environment",
            ),
            Step(
                "write",
                path=posixpath.join(site_dir, "mlteams-image.pth"),
                text=image_link_pth(inputs.site_dirs),
            ),
        ]
        if inputs.ipython_dir:
            steps.append(
                Step(
                    "link",
                    path=posixpath.join(inputs.build_dir, "etc", "ipython"),
                    target=inputs.ipython_dir,
                )
            )
        steps.append(
            Step(
                "run",
                argv=(
                    python,
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                    inputs.spec_path,
                ),
                failure=f"pip could not install {REQUIREMENTS}",
            )
        )
        return steps
    if inputs.spec_file == ENVIRONMENT_YML:
        if not inputs.conda:
            raise CannotBuild(
                f"this image has neither conda nor mamba, so {ENVIRONMENT_YML} cannot be built; "
                f"give the project a {REQUIREMENTS} instead, or ask your admin for an image "
                "with conda"
            )
        return [
            Step(
                "run",
                argv=(
                    inputs.conda,
                    "env",
                    "create",
                    "--quiet",
                    "--prefix",
                    inputs.build_dir,
                    "--file",
                    inputs.spec_path,
                ),
                failure=f"conda could not create the environment from {ENVIRONMENT_YML}",
            ),
            Step(
                "run",
                argv=(python, "-c", "import ipykernel"),
                failure=f"the environment has no ipykernel: add ipykernel to {ENVIRONMENT_YML}",
            ),
        ]
    raise CannotBuild(f"a project needs a {REQUIREMENTS} or an {ENVIRONMENT_YML}")


def build_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The build's environment: the server's, with pip never installing to the user site (the
    image's pip configuration asks for that; a project environment is not the user site)."""
    drop = ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in environ.items() if k not in drop}
    env["PIP_USER"] = "0"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
