"""Where the local platform keeps its state, its build cache and its sources."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
KUBE_MODULE_DIR = REPO_ROOT / "devenv" / "kube"


def local_dir() -> Path:
    """Per-checkout state (kubeconfig, logs, etcd data): `.local/` in the repository."""
    return Path(os.environ.get("MLTEAMS_LOCAL_DIR", REPO_ROOT / ".local"))


def cache_dir() -> Path:
    """Build cache shared by every checkout on the machine, outside the repository."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("MLTEAMS_CACHE_DIR", Path(base) / "mlteams"))
