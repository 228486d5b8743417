"""Freezing a candidate: its files copied into the governed bucket, each with its sha256.

Under ``<prefix_uri>``: ``model/<relative path>`` for every file of the model and
``manifest.json``, ``{"files": {<path>: <sha256>, ...}, "sha256": <digest>}``. The digest is the
sha256 of the canonical JSON of the sorted path -> sha256 mapping (``manifest_digest``), so the
same files always give the same digest, wherever they are stored. ``verify`` reads every file
back and compares.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from .candidate import Candidate, safe_relative
from .object_store import ObjectMissing, ObjectStore, StoreUnavailable, join_uri

MODEL_FOLDER = "model"
MANIFEST = "manifest.json"


class DigestMismatch(Exception):
    """A frozen model's files are not the ones that were frozen."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Frozen:
    """A frozen model: ``uri`` is its folder (``model/`` and ``manifest.json`` inside),
    ``sha256`` the manifest digest, ``files`` each relative path's sha256."""

    uri: str
    sha256: str
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def model_uri(self) -> str:
        """The folder holding the model's files: what MLflow loads and a version's source."""
        return join_uri(self.uri, MODEL_FOLDER)

    @property
    def manifest_uri(self) -> str:
        return join_uri(self.uri, MANIFEST)

    def file_uri(self, path: str) -> str:
        return join_uri(self.model_uri, path)


def manifest_digest(files: Mapping[str, str]) -> str:
    """The sha256 of the canonical JSON (sorted keys, no spaces) of path -> sha256."""
    canonical = json.dumps(dict(sorted(files.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def manifest_json(frozen: Frozen) -> bytes:
    body = {"files": dict(sorted(frozen.files.items())), "sha256": frozen.sha256}
    return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"


async def freeze(candidate: Candidate, store: ObjectStore, prefix_uri: str) -> Frozen:
    """Copy every file of ``candidate`` under ``<prefix_uri>/model/`` and write the manifest.

    When a copy fails half-way, what was written under ``prefix_uri`` is deleted again.
    """
    if not candidate.files:
        raise DigestMismatch("the model has no files to freeze")
    uri = prefix_uri.rstrip("/")
    digests: dict[str, str] = {}
    try:
        for model_file in candidate.files:
            path = safe_relative(model_file.path)
            data = await candidate.read(path)
            digests[path] = hashlib.sha256(data).hexdigest()
            await store.put(join_uri(uri, MODEL_FOLDER, path), data)
        frozen = Frozen(uri=uri, sha256=manifest_digest(digests), files=digests)
        await store.put(frozen.manifest_uri, manifest_json(frozen), "application/json")
    except BaseException:
        with contextlib.suppress(StoreUnavailable):
            await store.delete_prefix(uri)
        raise
    return frozen


async def read_manifest(store: ObjectStore, uri: str) -> Frozen:
    """The ``Frozen`` recorded in ``<uri>/manifest.json``."""
    folder = uri.rstrip("/")
    try:
        body = json.loads(await store.get(join_uri(folder, MANIFEST)))
    except ObjectMissing:
        raise DigestMismatch(f"the frozen model at {folder} has no {MANIFEST}", MANIFEST) from None
    except ValueError:
        raise DigestMismatch(f"the manifest of {folder} is not JSON", MANIFEST) from None
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, dict):
        raise DigestMismatch(f"the manifest of {folder} lists no files", MANIFEST)
    return Frozen(uri=folder, sha256=str(body.get("sha256", "")), files=dict(files))


async def verify(
    store: ObjectStore, frozen: Frozen | str, expected_sha256: str | None = None
) -> Frozen:
    """Check that the frozen model's files are the frozen ones; the verified ``Frozen``.

    ``frozen`` is a ``Frozen`` or the URI of its folder (its manifest is read then).
    ``expected_sha256`` defaults to ``frozen.sha256``. Raises ``DigestMismatch`` naming the first
    file (in path order) that differs or is missing.
    """
    recorded = await read_manifest(store, frozen) if isinstance(frozen, str) else frozen
    expected = expected_sha256 or recorded.sha256
    if manifest_digest(recorded.files) != expected:
        raise DigestMismatch(
            f"the manifest of {recorded.uri} does not match the recorded digest {expected}",
            MANIFEST,
        )
    for path, sha in sorted(recorded.files.items()):
        try:
            data = await store.get(recorded.file_uri(path))
        except ObjectMissing:
            raise DigestMismatch(
                f"the frozen model at {recorded.uri} lost its file {path}", path
            ) from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise DigestMismatch(
                f"the frozen model's file {path} at {recorded.uri} changed after it was frozen",
                path,
            )
    present = {uri for uri in await store.list(recorded.model_uri + "/")}
    extra = sorted(present - {recorded.file_uri(p) for p in recorded.files})
    if extra:
        raise DigestMismatch(
            f"the frozen model at {recorded.uri} has a file it was not frozen with: {extra[0]}",
            extra[0],
        )
    return recorded
