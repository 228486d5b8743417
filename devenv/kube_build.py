"""Build the Kubernetes control-plane binaries and etcd from Go modules, cached outside the repo.

The Go module in ``devenv/kube`` pins ``k8s.io/kubernetes`` (with each staging module replaced
by its published twin) and etcd's server module. The binaries land in
``<cache>/kube/<version>-<digest>/`` where the digest covers the module files and the Go
version, so they are rebuilt only when the pin changes. The Go module and build caches live
in their usual places under the home directory and make a rebuild fast.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .paths import KUBE_MODULE_DIR, cache_dir

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
PACKAGES = (
    "./cmd/etcd",
    "k8s.io/kubernetes/cmd/kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager",
    "k8s.io/kubernetes/cmd/kube-scheduler",
)


class BuildError(RuntimeError):
    """The Go toolchain is missing or the build failed."""


def pinned_version(module_dir: Path = KUBE_MODULE_DIR) -> str:
    match = re.search(
        r"^require k8s\.io/kubernetes (v\S+)", (module_dir / "go.mod").read_text(), re.M
    )
    if not match:
        match = re.search(
            r"^\s*k8s\.io/kubernetes (v\S+)", (module_dir / "go.mod").read_text(), re.M
        )
    if not match:
        raise BuildError(f"no k8s.io/kubernetes requirement in {module_dir / 'go.mod'}")
    return match.group(1)


def _go() -> str:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if not go:
        raise BuildError("the Go toolchain is needed to build Kubernetes: install Go 1.25 or newer")
    return go


def _digest(module_dir: Path, go: str) -> str:
    h = hashlib.sha256()
    for rel in ("go.mod", "go.sum", "tools.go", "cmd/etcd/main.go"):
        h.update(rel.encode())
        h.update((module_dir / rel).read_bytes())
    h.update(
        subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout.encode()
    )
    return h.hexdigest()[:12]


def binaries_dir(module_dir: Path = KUBE_MODULE_DIR) -> Path:
    go = _go()
    return cache_dir() / "kube" / f"{pinned_version(module_dir)}-{_digest(module_dir, go)}"


def ensure_binaries(module_dir: Path = KUBE_MODULE_DIR, log=sys.stderr) -> Path:
    """Return the folder holding the four binaries, building them first if needed."""
    target = binaries_dir(module_dir)
    if all((target / b).is_file() for b in BINARIES):
        return target
    go = _go()
    target.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"building Kubernetes {pinned_version(module_dir)} control plane and etcd from Go modules "
        f"into {target} (first time only: several minutes)",
        file=log,
        flush=True,
    )
    env = dict(os.environ, GOFLAGS="-mod=readonly -buildvcs=false")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        proc = subprocess.run(
            [go, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp + "/", *PACKAGES],
            cwd=module_dir,
            env=env,
            stdout=log,
            stderr=log,
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"go build failed with exit code {proc.returncode} (output above)")
        missing = [b for b in BINARIES if not (Path(tmp) / b).is_file()]
        if missing:
            raise BuildError(f"go build did not produce {', '.join(missing)}")
        staged = Path(tmp) / "bin"
        staged.mkdir()
        for b in BINARIES:
            (Path(tmp) / b).rename(staged / b)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--print-dir", action="store_true", help="only print where the binaries are cached"
    )
    args = parser.parse_args(argv)
    try:
        path = binaries_dir() if args.print_dir else ensure_binaries()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
