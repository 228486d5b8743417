"""Digests of what a notebook read: local files and folders, and object-store objects.

Local files up to ``hash_max_bytes`` are hashed (sha256 of the content; a file read again with
the same size and modification time is not hashed again); larger ones get a fingerprint of size
and modification time. A folder gets a fingerprint of its files' relative
names, sizes and modification times. On an object store, an object's ETag is its digest (its
version id, when the store keeps versions, goes with it), and a prefix gets a fingerprint of its
objects' keys and ETags. Folders and prefixes with more than ``max_entries`` files, like paths
that cannot be read, get no digest (``None``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from server_ext.kernel.lineage import Digest, listing_digest

HASH_MAX_BYTES = 128 * 1024 * 1024
MAX_ENTRIES = 10_000
_CHUNK = 1024 * 1024
_MAX_REMEMBERED = 1024
_file_hashes: dict[tuple[str, int, int], str] = {}


class ObjectStore(Protocol):
    """The part of an ``fsspec`` filesystem the object-store digest uses."""

    def info(self, path: str, **kwargs: Any) -> Mapping[str, Any]: ...

    def find(self, path: str, **kwargs: Any) -> Any: ...


def local_digest(
    path: str, *, hash_max_bytes: int = HASH_MAX_BYTES, max_entries: int = MAX_ENTRIES
) -> Digest | None:
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            return _folder_digest(path, max_entries)
        if info.st_size > hash_max_bytes:
            return Digest(listing_digest([(info.st_size, info.st_mtime_ns)]), "size-mtime")
        key = (os.path.realpath(path), info.st_size, info.st_mtime_ns)
        if key not in _file_hashes:
            if len(_file_hashes) >= _MAX_REMEMBERED:
                _file_hashes.clear()
            _file_hashes[key] = _file_sha256(path)
        return Digest(_file_hashes[key], "sha256")
    except OSError:
        return None


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:32]


def _walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            yield os.path.relpath(full, root), os.stat(full)


def _folder_digest(root: str, max_entries: int) -> Digest | None:
    rows: list[tuple[str, int, int]] = []
    for rel, info in _walk(root):
        if len(rows) == max_entries:
            return None
        rows.append((rel, info.st_size, info.st_mtime_ns))
    return Digest(listing_digest(rows), "listing")


def _etag(info: Mapping[str, Any]) -> str | None:
    value = info.get("ETag") or info.get("etag") or info.get("e_tag")
    return str(value).strip('"') if value else None


def _version(info: Mapping[str, Any]) -> str | None:
    value = info.get("VersionId") or info.get("version_id")
    return str(value) if value and value != "null" else None


def object_digest(fs: ObjectStore, path: str, *, max_entries: int = MAX_ENTRIES) -> Digest | None:
    """The digest of an object or prefix ``path`` (without scheme) on ``fs``."""
    info = fs.info(path)
    if info.get("type") == "directory":
        found = fs.find(path, detail=True)
        if len(found) > max_entries:
            return None
        base = path.rstrip("/") + "/"
        rows = [
            (name[len(base) :] if name.startswith(base) else name, _etag(i) or i.get("size"))
            for name, i in found.items()
        ]
        return Digest(listing_digest(rows), "listing")
    etag, version = _etag(info), _version(info)
    if etag:
        return Digest(etag, "etag", version)
    if version:
        return Digest(version, "version-id", version)
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    return Digest(listing_digest([(info.get("size"), modified)]), "size-mtime")


def remote_digest(
    url: str, storage_options: Mapping[str, Any] | None, *, max_entries: int = MAX_ENTRIES
) -> Digest | None:
    """The digest of ``url`` through ``fsspec`` with the reader's own storage options."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    return object_digest(fs, path, max_entries=max_entries)
