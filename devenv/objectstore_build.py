"""Build the MinIO object store server from its Go module, cached outside the repo.

The Go module in ``devenv/objectstore`` pins ``github.com/minio/minio`` (a pseudo-version of
its main branch from the Go module proxy). The ``minio`` binary lands in
``<cache>/objectstore/<version>-<digest>/`` (see ``devenv.go_build``), so it is rebuilt only
when the pin changes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import go_build
from .paths import REPO_ROOT

OBJECTSTORE_MODULE_DIR = REPO_ROOT / "devenv" / "objectstore"
OBJECTSTORE = go_build.GoBuild(
    name="objectstore",
    title="the MinIO object store",
    module_dir=OBJECTSTORE_MODULE_DIR,
    pinned_module="github.com/minio/minio",
    packages=("github.com/minio/minio",),
    binaries=("minio",),
)


def ensure_minio(log: TextIO = sys.stderr) -> Path:
    """Path of the ``minio`` binary, built first if needed."""
    return OBJECTSTORE.ensure(log) / "minio"


def main(argv: Sequence[str] | None = None) -> int:
    return go_build.main(OBJECTSTORE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
