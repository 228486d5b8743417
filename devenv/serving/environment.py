"""The MLServer environment the predictor pods run: ``.venv-mlserver``, apart from ``.venv``.

MLServer's own pins may clash with the bundle's, so it gets its own virtualenv (``make setup``
builds it, see ``devenv/setup.sh``). What a saved scikit-learn MLflow model needs to load is
pinned to the versions installed in ``.venv``, so a model saved by the bundle's MLflow loads there
as it was saved. ``python -m devenv.serving.environment`` prints the requirements, one a line.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from ..paths import REPO_ROOT

MLSERVER_VENV = REPO_ROOT / ".venv-mlserver"

# uvloop 0.22 makes asyncio.get_event_loop() raise outside a running loop, which MLServer 1.7.1's
# inference workers call as they start: every worker dies and no model loads.
MLSERVER_REQUIREMENTS = ("mlserver==1.7.1", "mlserver-mlflow==1.7.1", "uvloop==0.21.0")

# what a model saved with mlflow.sklearn needs to load and predict the same way
SHARED_WITH_BUNDLE = ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "cloudpickle", "skops")


def requirements() -> list[str]:
    """MLServer's pins, then each shared package at the version this Python has installed."""
    pins = list(MLSERVER_REQUIREMENTS)
    for name in SHARED_WITH_BUNDLE:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def mlserver_program(venv: Path = MLSERVER_VENV) -> Path:
    """The ``mlserver`` command of the environment."""
    return venv / "bin" / "mlserver"


if __name__ == "__main__":
    sys.stdout.write("".join(f"{line}\n" for line in requirements()))
