"""The team's dataset catalog as the server sees it, and ready-to-paste code snippets.

The hub writes the catalog of the user's team into ``MLTEAMS_DATASETS`` (JSON). It names the
environment variables that hold object-store credentials, never their values: the values come
from Kubernetes secret references resolved by the kubelet. Snippets read those variables at run
time, so no snippet, API response or log contains a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

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


class CatalogError(ValueError):
    """The catalog in the environment is not what the hub writes."""


@dataclass(frozen=True)
class Credentials:
    """Names of the environment variables holding the object-store keys."""

    key_env: str
    secret_env: str


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset the user's team may use."""

    name: str
    uri: str
    format: str | None = None
    description: str = ""
    mount_path: str | None = None
    endpoint_url: str | None = None
    credentials: Credentials | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def dump_catalog(entries: list[CatalogEntry]) -> str:
    return json.dumps([e.to_json() for e in entries], sort_keys=True, separators=(",", ":"))


def parse_catalog(text: str | None) -> list[CatalogEntry]:
    """Entries from the ``MLTEAMS_DATASETS`` value; an empty catalog when unset."""
    if not text:
        return []
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"dataset catalog is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise CatalogError("dataset catalog must be a list")
    entries = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("name") or not item.get("uri"):
            raise CatalogError("each dataset needs a name and a uri")
        creds = item.get("credentials")
        entries.append(
            CatalogEntry(
                name=str(item["name"]),
                uri=str(item["uri"]),
                format=item.get("format"),
                description=str(item.get("description") or ""),
                mount_path=item.get("mount_path"),
                endpoint_url=item.get("endpoint_url"),
                credentials=Credentials(str(creds["key_env"]), str(creds["secret_env"]))
                if isinstance(creds, dict)
                else None,
            )
        )
    return entries


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


def snippet(entry: CatalogEntry) -> str:
    """Python code that reads the dataset: from its mount when mounted, else the object store."""
    reader = READERS.get((entry.format or "").lower())
    local = entry.mount_path is not None
    if local:
        target = entry.mount_path
        if reader:
            return f"import pandas as pd\n\ndf = pd.{reader}({target!r})\n"
        return f"from pathlib import Path\n\nfiles = sorted(Path({target!r}).rglob('*'))\n"
    if not _is_object_store(entry.uri):
        if reader:
            return f"import pandas as pd\n\ndf = pd.{reader}({entry.uri!r})\n"
        return f"import fsspec\n\nfs, path = fsspec.core.url_to_fs({entry.uri!r})\n"
    options = storage_options_code(entry, "")
    head = ["import os", ""]
    if reader:
        body = [
            "import pandas as pd",
            "",
            "storage_options = " + options[0],
            *options[1:],
            f"df = pd.{reader}({entry.uri!r}, storage_options=storage_options)",
        ]
    else:
        body = [
            "import fsspec",
            "",
            "storage_options = " + options[0],
            *options[1:],
            f"fs, path = fsspec.core.url_to_fs({entry.uri!r}, **storage_options)",
            "files = fs.ls(path)",
        ]
    return "\n".join(head + body) + "\n"


def catalog_from_env(environ: Mapping[str, str]) -> list[CatalogEntry]:
    from .env_contract import DATASETS

    return parse_catalog(environ.get(DATASETS))
