"""A model offered for promotion: its files, with a way to read each, and what its run recorded.

``Registry.candidate`` builds one from a run in MLflow; ``local_candidate`` from a folder on disk
(an MLflow model saved with ``save_model``). The MLmodel file is read as YAML here, without
MLflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MLMODEL = "MLmodel"
REQUIREMENTS = "requirements.txt"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
IMAGE_TAG = "mlteams.image"
TEAM_TAG = "mlteams.team"
USER_TAG = "mlteams.user"

FileReader = Callable[[str], Awaitable[bytes]]


class CandidateInvalid(Exception):
    """The model's files cannot be used: an unreadable MLmodel file, a path outside the model."""


@dataclass(frozen=True)
class ModelFile:
    """One file of the model: its path relative to the model's folder and its size if known."""

    path: str
    size: int | None = None


@dataclass(frozen=True)
class DatasetInput:
    """A dataset the run logged as an input: name, digest, source (a URI when MLflow gave one)."""

    name: str
    digest: str
    source: str
    source_type: str = ""
    context: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source,
            "source_type": self.source_type,
            "context": self.context,
        }


@dataclass(frozen=True)
class Candidate:
    """A logged model and the facts of its run.

    ``files`` are the model's files (relative paths, sorted); ``read(path)`` returns one file's
    bytes. ``signature`` is the MLmodel file's signature (``None`` when the model has none);
    ``metrics`` are the user's own logged metrics, advisory only.
    """

    run_id: str
    artifact_path: str
    model_id: str
    files: tuple[ModelFile, ...]
    reader: FileReader = field(repr=False, compare=False)
    flavors: Mapping[str, Any] = field(default_factory=dict)
    signature: Mapping[str, Any] | None = None
    requirements: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    datasets: tuple[DatasetInput, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    experiment_id: str = ""
    source_uri: str = ""

    async def read(self, path: str) -> bytes:
        """The bytes of the model file ``path``."""
        if path not in {f.path for f in self.files}:
            raise CandidateInvalid(f"{path!r} is not a file of the model")
        return await self.reader(path)

    @property
    def has_signature(self) -> bool:
        return bool(self.signature)

    @property
    def git_commit(self) -> str | None:
        return self.tags.get(GIT_COMMIT_TAG)

    @property
    def image(self) -> str | None:
        return self.tags.get(IMAGE_TAG)

    @property
    def team(self) -> str | None:
        return self.tags.get(TEAM_TAG)

    @property
    def user(self) -> str | None:
        return self.tags.get(USER_TAG)


def parse_mlmodel(text: bytes) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(flavors, signature)`` of an MLmodel file; ``CandidateInvalid`` when it is not one."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CandidateInvalid(f"the model's MLmodel file is not YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise CandidateInvalid("the model's MLmodel file is not a mapping")
    flavors = loaded.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise CandidateInvalid("the model's MLmodel file names no flavors")
    signature = loaded.get("signature")
    return dict(flavors), dict(signature) if isinstance(signature, dict) and signature else None


def safe_relative(path: str) -> str:
    """``path`` if it is a relative path inside the model's folder, else ``CandidateInvalid``."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise CandidateInvalid(f"model file path {path!r} is not a relative path inside the model")
    return path


def _walk(root: Path) -> tuple[ModelFile, ...]:
    return tuple(
        ModelFile(p.relative_to(root).as_posix(), p.stat().st_size)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    )


async def local_candidate(
    directory: Path,
    *,
    run_id: str = "",
    artifact_path: str = "model",
    params: Mapping[str, str] | None = None,
    metrics: Mapping[str, float] | None = None,
    datasets: tuple[DatasetInput, ...] = (),
    tags: Mapping[str, str] | None = None,
) -> Candidate:
    """A candidate from an MLflow model saved in ``directory`` (for example by ``save_model``)."""
    root = await asyncio.to_thread(directory.resolve)
    files = await asyncio.to_thread(_walk, root)

    async def reader(path: str) -> bytes:
        return await asyncio.to_thread((root / safe_relative(path)).read_bytes)

    names = {f.path for f in files}
    if MLMODEL not in names:
        raise CandidateInvalid(f"{directory} holds no MLmodel file: it is not an MLflow model")
    flavors, signature = parse_mlmodel(await reader(MLMODEL))
    requirements = (await reader(REQUIREMENTS)).decode() if REQUIREMENTS in names else None
    return Candidate(
        run_id=run_id,
        artifact_path=artifact_path,
        model_id="",
        files=files,
        reader=reader,
        flavors=flavors,
        signature=signature,
        requirements=requirements,
        params=dict(params or {}),
        metrics=dict(metrics or {}),
        datasets=datasets,
        tags=dict(tags or {}),
        source_uri=root.as_uri(),
    )
