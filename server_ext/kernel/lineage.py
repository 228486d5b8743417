"""Which catalog dataset a notebook read, and the lineage record of that read.

Pure: paths are normalized with the home and working directories given, never looked up on
disk (a ``resolve`` function may be passed to follow symlinks). A read is matched against each
catalog entry's read-only mount and its URI; the longest matching root wins, so a dataset nested
in another one is recognised as itself. The record's source URI is the catalog URI followed by
the part of the path below the matched root, so a file read through the mount and the same
object read from the store carry the same source.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from server_ext.contract import CatalogEntry

MAX_DIGEST_LENGTH = 36
"""The longest dataset digest MLflow stores."""

SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3", "gcs": "gs"}
"""Schemes that name the same store as another; URIs are compared in the canonical form."""

CONTEXT = "training"
TAG_CONTEXT = "mlflow.data.context"
TAG_READER = "mlteams.dataset.reader"
TAG_PATH = "mlteams.dataset.path"
TAG_DIGEST_KIND = "mlteams.dataset.digest_kind"
TAG_VERSION = "mlteams.dataset.version"

LOCAL: Literal["local"] = "local"
REMOTE: Literal["remote"] = "remote"


@dataclass(frozen=True)
class Location:
    """A path or URI as a reader got it: an absolute local path or ``scheme://rest``."""

    kind: Literal["local", "remote"]
    path: str


@dataclass(frozen=True)
class Digest:
    """A fingerprint of what was read and how it was obtained.

    ``kind`` is ``sha256`` (file content), ``size-mtime`` (a large local file, or an object
    without ETag), ``listing`` (a folder or prefix: names, sizes and times or ETags of its
    files), ``etag`` (the object store's ETag), ``version-id`` (the object's version id when it
    has no ETag) or ``uri`` (nothing could be read: a fingerprint of name and source only).
    """

    value: str
    kind: str
    version: str | None = None


@dataclass(frozen=True)
class CatalogMatch:
    """A read that falls inside a catalog dataset."""

    entry: CatalogEntry
    sub_path: str
    location: Location

    @property
    def source_uri(self) -> str:
        return join_uri(canonical_uri(self.entry.uri), self.sub_path)


@dataclass(frozen=True)
class DatasetRead:
    """One read of a catalog dataset, as it becomes a run's dataset input."""

    name: str
    source_uri: str
    digest: str
    digest_kind: str
    reader: str
    path: str
    version: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.source_uri, self.digest)

    def input_tags(self) -> dict[str, str]:
        tags = {
            TAG_CONTEXT: CONTEXT,
            TAG_READER: self.reader,
            TAG_PATH: self.path,
            TAG_DIGEST_KIND: self.digest_kind,
        }
        if self.version:
            tags[TAG_VERSION] = self.version
        return {k: v[:500] for k, v in tags.items()}


def hex_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def fit_digest(text: str) -> str:
    """``text`` when MLflow can store it as a digest, else a fingerprint of it."""
    return text if len(text) <= MAX_DIGEST_LENGTH else hex_digest(text.encode())


def listing_digest(rows: Iterable[Sequence[object]]) -> str:
    """A fingerprint of rows such as (name, size, mtime), independent of their order."""
    lines = sorted(json.dumps([str(v) for v in row]) for row in rows)
    return hex_digest("\n".join(lines).encode())


def uri_digest(name: str, source_uri: str) -> Digest:
    return Digest(listing_digest([(name, source_uri)]), "uri")


def canonical_uri(uri: str) -> str:
    """``uri`` with its scheme lower-cased and aliases such as ``s3a`` replaced."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    scheme = scheme.lower()
    return f"{SCHEME_ALIASES.get(scheme, scheme)}://{rest}"


def join_uri(uri: str, sub_path: str) -> str:
    return uri if not sub_path else uri.rstrip("/") + "/" + sub_path


def source_type(uri: str) -> str:
    """MLflow's dataset source type for ``uri``: its scheme, ``local`` for paths."""
    scheme, sep, _ = canonical_uri(uri).partition("://")
    return "local" if not sep or scheme == "file" else scheme


def source_json(uri: str) -> str:
    """The source of a dataset input, as MLflow's file and object-store sources write it."""
    return json.dumps({"uri": uri})


def local_path(text: str, *, home: str, cwd: str) -> str:
    """``text`` as an absolute, normalized POSIX path (``~`` is ``home``)."""
    if text == "~" or text.startswith("~/"):
        text = home + text[1:]
    return posixpath.normpath(posixpath.join(cwd, text))


def location_of(target: object, *, home: str, cwd: str) -> Location | None:
    """Where a reader's first argument points; ``None`` for buffers and other objects."""
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if isinstance(target, bytes) or not isinstance(target, str) or not target.strip():
        return None
    if "://" not in target:
        return Location(LOCAL, local_path(target, home=home, cwd=cwd))
    uri = canonical_uri(target.strip())
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            return None
        return Location(LOCAL, local_path(unquote(parts.path), home=home, cwd=cwd))
    return Location(REMOTE, uri.split("?", 1)[0].split("#", 1)[0])


def roots_of(entry: CatalogEntry, *, home: str, cwd: str) -> list[Location]:
    """The places a dataset can be read from: its mount and its URI."""
    roots = []
    if entry.mount_path:
        roots.append(Location(LOCAL, local_path(entry.mount_path, home=home, cwd=cwd)))
    uri = location_of(entry.uri, home=home, cwd=cwd)
    if uri is not None:
        roots.append(uri)
    return roots


def relative_to(root: Location, location: Location) -> str | None:
    """The part of ``location`` below ``root`` (``""`` for the root itself), or ``None``."""
    if root.kind != location.kind:
        return None
    base = root.path.rstrip("/") or "/"
    path = location.path.rstrip("/") or "/"
    if path == base:
        return ""
    prefix = base if base.endswith("/") else base + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def match(
    location: Location,
    catalog: Iterable[CatalogEntry],
    *,
    home: str,
    cwd: str,
    resolve: Callable[[str], str] | None = None,
) -> CatalogMatch | None:
    """The catalog dataset ``location`` lies in, by the longest root containing it.

    With ``resolve`` (such as ``os.path.realpath``), local paths are compared once more with
    symlinks followed on both sides when the plain comparison finds nothing.
    """
    entries = list(catalog)
    found = _longest(location, entries, home=home, cwd=cwd, resolve=None)
    if found is None and resolve is not None and location.kind == LOCAL:
        resolved = Location(LOCAL, resolve(location.path))
        found = _longest(resolved, entries, home=home, cwd=cwd, resolve=resolve)
    return found


def _longest(
    location: Location,
    entries: list[CatalogEntry],
    *,
    home: str,
    cwd: str,
    resolve: Callable[[str], str] | None,
) -> CatalogMatch | None:
    best: tuple[int, CatalogMatch] | None = None
    for entry in entries:
        for root in roots_of(entry, home=home, cwd=cwd):
            if resolve is not None and root.kind == LOCAL:
                root = Location(LOCAL, resolve(root.path))
            sub = relative_to(root, location)
            if sub is not None and (best is None or len(root.path) > best[0]):
                best = (len(root.path), CatalogMatch(entry, sub, location))
    return best[1] if best else None


def dataset_read(found: CatalogMatch, digest: Digest | None, reader: str) -> DatasetRead:
    """The lineage record of a read; without a digest, one made from name and source."""
    source = found.source_uri
    digest = digest or uri_digest(found.entry.name, source)
    return DatasetRead(
        name=found.entry.name,
        source_uri=source,
        digest=fit_digest(digest.value),
        digest_kind=digest.kind,
        reader=reader,
        path=found.location.path,
        version=digest.version,
    )
