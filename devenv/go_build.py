"""Build programs from a pinned Go module into a cache folder outside the repository.

A ``GoBuild`` names a Go module folder of this repository (``devenv/kube``,
``devenv/objectstore``), the module whose version names the result, and the packages to build.
The binaries land in ``<cache>/<name>/<version>-<digest>/`` where the digest covers the listed
module files and the Go version, so they are rebuilt only when the pin changes. The Go module
and build caches live in their usual places under the home directory and make a rebuild fast.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .paths import cache_dir


class BuildError(RuntimeError):
    """The Go toolchain is missing or the build failed."""


def go_tool() -> str:
    """The ``go`` command: from ``PATH`` or the standard ``/usr/local/go`` install."""
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if not go:
        raise BuildError("the Go toolchain is needed: install Go 1.25 or newer")
    return go


def required_version(go_mod: Path, module: str) -> str:
    """The version of ``module`` that ``go_mod`` requires (single-line or block form)."""
    text = go_mod.read_text()
    match = re.search(rf"^(?:require\s+|\s+){re.escape(module)} (v\S+)", text, re.M)
    if not match:
        raise BuildError(f"no {module} requirement in {go_mod}")
    return match.group(1)


@dataclass(frozen=True)
class GoBuild:
    """Programs built from one Go module folder and cached under ``<cache>/<name>/``."""

    name: str
    title: str
    module_dir: Path
    pinned_module: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    digest_files: tuple[str, ...] = ("go.mod", "go.sum", "tools.go")
    ldflags: str = "-s -w"

    def pinned_version(self) -> str:
        return required_version(self.module_dir / "go.mod", self.pinned_module)

    def digest(self, go: str) -> str:
        """Hash of the digest files and ``go version``: a new value means a new build."""
        h = hashlib.sha256()
        for rel in self.digest_files:
            h.update(rel.encode())
            h.update((self.module_dir / rel).read_bytes())
        version = subprocess.run([go, "version"], capture_output=True, text=True, check=True)
        h.update(version.stdout.encode())
        return h.hexdigest()[:12]

    def binaries_dir(self) -> Path:
        digest = self.digest(go_tool())
        return cache_dir() / self.name / f"{self.pinned_version()}-{digest}"

    def ensure(self, log: TextIO = sys.stderr) -> Path:
        """Return the folder holding the binaries, building them first if needed."""
        target = self.binaries_dir()
        if all((target / b).is_file() for b in self.binaries):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        print(
            f"building {self.title} {self.pinned_version()} from Go modules into {target} "
            "(first time only: several minutes)",
            file=log,
            flush=True,
        )
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            staged = self._build(Path(tmp), log)
            if target.exists():
                shutil.rmtree(target)
            staged.rename(target)
        return target

    def _build(self, tmp: Path, log: TextIO) -> Path:
        """Run ``go build`` into ``tmp`` and gather the binaries in ``tmp/bin``."""
        env = dict(os.environ, GOFLAGS="-mod=readonly -buildvcs=false")
        argv = [go_tool(), "build", "-trimpath", f"-ldflags={self.ldflags}", "-o", f"{tmp}/"]
        proc = subprocess.run(
            [*argv, *self.packages],
            cwd=self.module_dir,
            env=env,
            stdout=log,
            stderr=log,
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"go build failed with exit code {proc.returncode} (output above)")
        missing = [b for b in self.binaries if not (tmp / b).is_file()]
        if missing:
            raise BuildError(f"go build did not produce {', '.join(missing)}")
        staged = tmp / "bin"
        staged.mkdir()
        for b in self.binaries:
            (tmp / b).rename(staged / b)
        return staged


def main(build: GoBuild, description: str, argv: Sequence[str] | None = None) -> int:
    """Command line of a build module: build (or with ``--print-dir`` locate) and print the dir."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--print-dir", action="store_true", help="only print where the binaries are cached"
    )
    args = parser.parse_args(argv)
    try:
        path = build.binaries_dir() if args.print_dir else build.ensure()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
