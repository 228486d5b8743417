"""Where the kubelet keeps its state.

``<state>/addresses.json``
    pod address allocations (survive restarts, so pods keep their addresses)
``<state>/pvc/<namespace>/<claim>/``
    one directory per PersistentVolumeClaim, outliving the pods that mount it
``<state>/pods/<namespace>_<name>_<uid>/``
    one directory per pod: ``record.json`` (processes, for adoption after a restart),
    ``<container>.log`` (stdout and stderr of each container, appended across restarts and kept
    after the pod is deleted), ``volumes/<volume>/`` (emptyDir, ConfigMap, Secret, projected
    contents), ``home/`` (HOME when no volume provides one) and ``run/`` (container specs and
    exit records)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PodPaths:
    root: Path

    @property
    def record(self) -> Path:
        return self.root / "record.json"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def log(self, container: str) -> Path:
        return self.root / f"{container}.log"

    def spec(self, container: str) -> Path:
        return self.run / f"{container}.json"

    def exit_record(self, container: str) -> Path:
        return self.run / f"{container}.exit.json"

    def remove_all_but_logs(self) -> None:
        """Remove everything of the pod except its container logs."""
        if not self.root.exists():
            return
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.suffix != ".log":
                entry.unlink(missing_ok=True)


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def addresses(self) -> Path:
        return self.root / "addresses.json"

    @property
    def pvc_root(self) -> Path:
        return self.root / "pvc"

    @property
    def pods_root(self) -> Path:
        return self.root / "pods"

    def pod(self, namespace: str, name: str, uid: str) -> PodPaths:
        return PodPaths(self.pods_root / f"{namespace}_{name}_{uid}")
