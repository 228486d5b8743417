"""The contract is the only code both sides of the pod boundary import: stdlib only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def test_importing_the_contract_loads_only_the_standard_library() -> None:
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import server_ext.contract\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in set(sys.modules) - before})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=REPO,
    )
    loaded = set(json.loads(result.stdout)) - {"server_ext"}
    outside = sorted(name for name in loaded if name not in sys.stdlib_module_names)
    assert loaded, "the import loaded nothing: the check would pass vacuously"
    assert outside == [], f"server_ext.contract pulls in {outside}"
