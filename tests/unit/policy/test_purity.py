"""The policy core stays plain Python: importing it pulls in no cluster, web or hub library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

FORBIDDEN = (
    "kubernetes",
    "kubernetes_asyncio",
    "kubespawner",
    "tornado",
    "jupyterhub",
    "traitlets",
    "mlflow",
)


def test_importing_the_policy_core_loads_no_framework() -> None:
    code = (
        "import json, sys\n"
        "import hub_ext.policy\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    loaded = set(json.loads(result.stdout))
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded.intersection(FORBIDDEN))
