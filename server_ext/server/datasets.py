"""The team's dataset catalog as the server sees it, and ready-to-paste code snippets.

The hub writes the catalog of the user's team into ``MLTEAMS_DATASETS`` (JSON). It names the
environment variables that hold object-store credentials, never their values: the values come
from Kubernetes secret references resolved by the kubelet. Snippets read those variables at run
time, so no snippet, API response or log contains a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server_ext.contract import CatalogEntry

MOUNTED = "mounted"
MISSING = "missing"
NOT_MOUNTED = "not-mounted"

READERS = {
    "csv": "read_csv",
    "parquet": "read_parquet",
    "json": "read_json",
    "jsonl": "read_json",
    "feather": "read_feather",
    "orc": "read_orc",
}


def find(entries: list[CatalogEntry], name: str) -> CatalogEntry | None:
    return next((e for e in entries if e.name == name), None)


def mount_status(entry: CatalogEntry, is_mounted: Callable[[str], bool]) -> str:
    if entry.mount_path is None:
        return NOT_MOUNTED
    return MOUNTED if is_mounted(entry.mount_path) else MISSING


def describe(entry: CatalogEntry, status: str) -> dict[str, Any]:
    """The API view of a dataset: what it is and how to reach it, no credential values."""
    return {
        "name": entry.name,
        "uri": entry.uri,
        "format": entry.format,
        "description": entry.description,
        "mount_path": entry.mount_path,
        "mount_status": status,
        "read_only": entry.mount_path is not None,
        "credentials": "secret-reference" if entry.credentials else None,
    }


def _is_object_store(uri: str) -> bool:
    return bool(re.match(r"^(s3|s3a|gs|gcs|abfs|az)://", uri))


def storage_options_code(entry: CatalogEntry, indent: str) -> list[str]:
    """Lines of a ``storage_options`` dict literal reading keys from the environment."""
    lines = ["{"]
    if entry.credentials:
        lines.append(f'{indent}    "key": os.environ[{entry.credentials.key_env!r}],')
        lines.append(f'{indent}    "secret": os.environ[{entry.credentials.secret_env!r}],')
    if entry.endpoint_url:
        lines.append(f'{indent}    "client_kwargs": {{"endpoint_url": {entry.endpoint_url!r}}},')
    lines.append(f"{indent}}}")
    return lines


FOLDER_FORMATS = frozenset({"parquet"})
READER_OPTIONS = {"jsonl": "lines=True"}


@dataclass(frozen=True)
class _Reader:
    """How pandas reads one format: ``pd.<function>(<target>, <options>)``."""

    function: str
    options: str = ""
    reads_folders: bool = False

    def call(self, target: str, *extra: str) -> str:
        args = ", ".join(a for a in (target, self.options, *extra) if a)
        return f"pd.{self.function}({args})"


def _reader(entry: CatalogEntry) -> _Reader | None:
    fmt = (entry.format or "").lower()
    if fmt not in READERS:
        return None
    return _Reader(READERS[fmt], READER_OPTIONS.get(fmt, ""), fmt in FOLDER_FORMATS)


def _is_folder(uri: str) -> bool:
    return uri.endswith("/")


def _mounted_snippet(entry: CatalogEntry, reader: _Reader | None) -> str:
    target = repr(entry.mount_path)
    if reader and reader.reads_folders:
        return f"import pandas as pd\n\ndf = {reader.call(target)}\n"
    lines = [
        "from pathlib import Path",
        "",
        *(["import pandas as pd", ""] if reader else []),
        f"files = sorted(p for p in Path({target}).rglob('*') if p.is_file())",
    ]
    if reader:
        lines.append(f"df = pd.concat([{reader.call('f')} for f in files], ignore_index=True)")
    return "\n".join(lines) + "\n"


def _object_store_snippet(entry: CatalogEntry, reader: _Reader | None) -> str:
    options = storage_options_code(entry, "")
    lines = ["import os", "", "import fsspec", *(["import pandas as pd"] if reader else []), ""]
    lines += ["storage_options = " + options[0], *options[1:]]
    uri = entry.uri
    with_options = "storage_options=storage_options"
    if reader and (reader.reads_folders or not _is_folder(uri)):
        lines.remove("import fsspec")
        lines.append(f"df = {reader.call(repr(uri), with_options)}")
        return "\n".join(lines) + "\n"
    lines.append(f"fs, path = fsspec.core.url_to_fs({uri!r}, **storage_options)")
    if reader:
        scheme = uri.split("://", 1)[0]
        lines += [
            f"files = [f'{scheme}://{{key}}' for key in fs.find(path)]",
            "df = pd.concat(",
            f"    [{reader.call('f', with_options)} for f in files],",
            "    ignore_index=True,",
            ")",
        ]
    else:
        lines.append("files = fs.find(path)")
    return "\n".join(lines) + "\n"


def snippet(entry: CatalogEntry) -> str:
    """Python code that reads the dataset: from its mount when mounted, else from its URI.

    A mount is a folder, as is a URI ending in ``/``: formats that pandas reads only file by
    file (CSV, JSON, ...) are read file by file and concatenated; parquet reads a folder whole.
    Object-store keys come from the environment variables named in the catalog, never as values.
    """
    reader = _reader(entry)
    if entry.mount_path is not None:
        return _mounted_snippet(entry, reader)
    if _is_object_store(entry.uri):
        return _object_store_snippet(entry, reader)
    if reader and (reader.reads_folders or not _is_folder(entry.uri)):
        return f"import pandas as pd\n\ndf = {reader.call(repr(entry.uri))}\n"
    return (
        f"import fsspec\n\nfs, path = fsspec.core.url_to_fs({entry.uri!r})\nfiles = fs.find(path)\n"
    )
