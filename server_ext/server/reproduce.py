"""What it takes to recreate a run, from what the run recorded (pure: no tornado, no MLflow).

``tracking_queries.run_record`` reads the run, its dataset inputs and its environment artifacts;
``reproduce_view`` turns them into the API answer: image, Python, packages, git state, notebook,
params, datasets, the link to the run, instructions, and the parts that are not known with the
reason (runs recorded before environments were captured have only their tags).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from server_ext import contract as env
from server_ext.contract import parse_image

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

DATASET_CONTEXT = "mlflow.data.context"

NO_ENVIRONMENT = (
    "the run has no {artifact} artifact: it was recorded before runs recorded their environment, "
    "outside a team notebook, or with environment recording off"
)


@dataclass(frozen=True)
class DatasetInput:
    name: str
    digest: str
    source_type: str
    source: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """A run as MLflow returns it, with its environment artifacts when present."""

    run_id: str
    experiment_id: str
    run_name: str | None
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    datasets: list[DatasetInput]
    requirements: str | None = None
    environment: dict[str, Any] | None = None


def valid_run_id(run_id: str) -> bool:
    return bool(RUN_ID.fullmatch(run_id))


def parse_environment(text: str | None) -> dict[str, Any] | None:
    """The environment document, or ``None`` when absent or unreadable."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def dataset_view(dataset: DatasetInput) -> dict[str, Any]:
    try:
        source = json.loads(dataset.source)
    except json.JSONDecodeError:
        source = None
    uri = source.get("uri") if isinstance(source, dict) else None
    return {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source_uri": uri if isinstance(uri, str) else None,
        "source": None if isinstance(uri, str) else dataset.source,
        "context": dataset.tags.get(DATASET_CONTEXT),
        "tags": {k: v for k, v in dataset.tags.items() if k.startswith("mlteams.")},
    }


def _image(record: RunRecord, doc: dict[str, Any]) -> dict[str, Any] | None:
    recorded = doc.get("image")
    if isinstance(recorded, dict) and recorded.get("reference"):
        return {k: recorded.get(k) for k in ("reference", "digest", "pinned")}
    parsed = parse_image(record.tags.get(env.TAG_IMAGE, ""))
    if parsed is None:
        return None
    digest = record.tags.get(env.TAG_IMAGE_DIGEST) or parsed.digest
    return {
        "reference": parsed.reference,
        "digest": digest,
        "pinned": f"{parsed.name}@{digest}" if digest else None,
    }


def _git(record: RunRecord, doc: dict[str, Any]) -> dict[str, Any] | None:
    recorded = doc.get("git")
    if isinstance(recorded, dict) and recorded.get("commit"):
        keys = ("commit", "branch", "remote_url", "dirty", "changed_files", "notebook_path")
        return {k: recorded.get(k) for k in keys}
    commit = record.tags.get(env.TAG_GIT_COMMIT) or record.tags.get(env.MLFLOW_GIT_COMMIT)
    if not commit:
        return None
    return {
        "commit": commit,
        "branch": record.tags.get(env.MLFLOW_GIT_BRANCH),
        "remote_url": record.tags.get(env.MLFLOW_GIT_REPO_URL),
        "dirty": None,
        "changed_files": None,
        "notebook_path": None,
    }


def _packages(record: RunRecord, doc: dict[str, Any]) -> dict[str, Any] | None:
    if record.requirements is None:
        return None
    lines = [x for x in record.requirements.splitlines() if x.strip() and not x.startswith("#")]
    recorded = doc.get("packages") if isinstance(doc.get("packages"), dict) else {}
    in_home = recorded.get("installed_in_home") if recorded else None
    return {
        "artifact": env.REQUIREMENTS_ARTIFACT,
        "count": len(lines),
        "requirements": lines,
        "installed_in_home": in_home if isinstance(in_home, list) else None,
    }


def _instructions(
    record: RunRecord,
    image: dict[str, Any] | None,
    python: dict[str, Any] | None,
    packages: dict[str, Any] | None,
    git: dict[str, Any] | None,
    notebook: str | None,
) -> list[dict[str, str]]:
    steps = []
    if image:
        ref = image.get("pinned") or image["reference"]
        how = "pinned by digest" if image.get("pinned") else "by tag: it may now name a newer build"
        steps.append(
            {"step": f"Start a server with the run's image ({how})", "command": f"image: {ref}"}
        )
    if git:
        commit = shlex.quote(str(git["commit"]))
        remote = git.get("remote_url")
        clone = (
            f"git clone {shlex.quote(remote)} && cd {shlex.quote(_repo_folder(remote))} && "
            if remote
            else ""
        )
        step = "Check out the code at the run's commit"
        if git.get("dirty"):
            step += f" (the run had {git.get('changed_files') or 'some'} uncommitted changes)"
        steps.append({"step": step, "command": f"{clone}git checkout {commit}"})
    if packages:
        run = shlex.quote(record.run_id)
        download = (
            f"mlflow artifacts download --run-id {run} --artifact-path "
            f"{env.REQUIREMENTS_ARTIFACT} --dst-path ."
        )
        in_home = packages.get("installed_in_home")
        if image and in_home:
            steps.append(
                {
                    "step": "In the same image, install what the run had added to it",
                    "command": "pip install --user " + " ".join(shlex.quote(p) for p in in_home),
                }
            )
        version = f" (Python {python['version']})" if python and python.get("version") else ""
        steps.append(
            {
                "step": f"In a fresh environment{version}, install every package of the run",
                "command": f"{download} && pip install -r requirements.txt",
            }
        )
    if notebook:
        steps.append({"step": "Open the notebook and run it", "command": notebook})
    return steps


def _repo_folder(remote: str) -> str:
    tail = remote.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]
    return tail.removesuffix(".git") or "repository"


def reproduce_view(record: RunRecord, link: str | None) -> dict[str, Any]:
    """The answer of ``GET /mlteams/runs/<run_id>/reproduce``."""
    doc = record.environment or {}
    missing: list[dict[str, str]] = []
    image = _image(record, doc)
    if image is None:
        missing.append({"part": "image", "reason": "the run has no mlteams.image tag"})
    elif not image.get("digest"):
        missing.append(
            {
                "part": "image_digest",
                "reason": "the image was not pinned by digest (name@sha256:...) in the profile",
            }
        )
    python = doc.get("python") if isinstance(doc.get("python"), dict) else None
    if record.environment is None:
        missing.append(
            {
                "part": "environment",
                "reason": NO_ENVIRONMENT.format(artifact=env.ENVIRONMENT_ARTIFACT),
            }
        )
    packages = _packages(record, doc)
    if packages is None:
        missing.append(
            {
                "part": "packages",
                "reason": NO_ENVIRONMENT.format(artifact=env.REQUIREMENTS_ARTIFACT),
            }
        )
    git = _git(record, doc)
    if git is None:
        reason = (
            "the notebook was not in a git repository with a commit"
            if record.environment is not None
            else "the run has no git commit tag"
        )
        missing.append({"part": "git", "reason": reason})
    notebook = doc.get("notebook_path") or record.tags.get("mlteams.notebook_path")
    if not notebook:
        missing.append({"part": "notebook_path", "reason": "the run was not made in a notebook"})
    in_repo = git.get("notebook_path") if git else None
    return {
        "run_id": record.run_id,
        "run_name": record.run_name,
        "experiment_id": record.experiment_id,
        "status": record.status,
        "link": link,
        "team": doc.get("team") or record.tags.get("mlteams.team"),
        "user": doc.get("user") or record.tags.get("mlteams.user"),
        "image": image,
        "python": python,
        "platform": doc.get("platform") if isinstance(doc.get("platform"), dict) else None,
        "kernel": doc.get("kernel") if isinstance(doc.get("kernel"), dict) else None,
        "captured_at": doc.get("captured_at"),
        "packages": packages,
        "git": git,
        "notebook_path": notebook or None,
        "params": dict(record.params),
        "datasets": [dataset_view(d) for d in record.datasets],
        "instructions": _instructions(record, image, python, packages, git, in_repo or notebook),
        "missing": missing,
    }
