"""Build the Kubernetes control-plane binaries and etcd from Go modules, cached outside the repo.

The Go module in ``devenv/kube`` pins ``k8s.io/kubernetes`` (with each staging module replaced
by its published twin) and etcd's server module. The binaries land in
``<cache>/kube/<version>-<digest>/`` (see ``devenv.go_build``), so they are rebuilt only when
the pin changes.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import go_build
from .go_build import BuildError
from .paths import KUBE_MODULE_DIR

__all__ = ["BINARIES", "KUBE", "PACKAGES", "BuildError", "binaries_dir", "ensure_binaries"]

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
PACKAGES = (
    "./cmd/etcd",
    "k8s.io/kubernetes/cmd/kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager",
    "k8s.io/kubernetes/cmd/kube-scheduler",
)
KUBE = go_build.GoBuild(
    name="kube",
    title="the Kubernetes control plane and etcd",
    module_dir=KUBE_MODULE_DIR,
    pinned_module="k8s.io/kubernetes",
    packages=PACKAGES,
    binaries=BINARIES,
    digest_files=("go.mod", "go.sum", "tools.go", "cmd/etcd/main.go"),
)


def _build(module_dir: Path) -> go_build.GoBuild:
    return dataclasses.replace(KUBE, module_dir=module_dir)


def pinned_version(module_dir: Path = KUBE_MODULE_DIR) -> str:
    return _build(module_dir).pinned_version()


def binaries_dir(module_dir: Path = KUBE_MODULE_DIR) -> Path:
    return _build(module_dir).binaries_dir()


def ensure_binaries(module_dir: Path = KUBE_MODULE_DIR, log: TextIO = sys.stderr) -> Path:
    """Return the folder holding the four binaries, building them first if needed."""
    return _build(module_dir).ensure(log)


def main(argv: Sequence[str] | None = None) -> int:
    return go_build.main(KUBE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
