"""The side panel ships prebuilt in the wheel: installed into a fresh environment with Node.js
nowhere on ``PATH``, JupyterLab lists the lab extension and the server lists the server
extension, both enabled and OK."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = "jupyterhub-mlteams"
SHARE = f"share/jupyter/labextensions/{LABEXTENSION}"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def without_node(prefix: Path) -> dict[str, str]:
    """An environment whose ``PATH`` is only the new environment's ``bin``: no Node.js (the
    ``jlpm`` JupyterLab installs there cannot build anything without it), nothing of the
    development machine; no source tree or Jupyter folders of the user."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"}
    home = prefix / "home"
    environ = {
        **{k: v for k, v in os.environ.items() if k not in drop},
        "PATH": str(prefix / "bin"),
        "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
        "IPYTHONDIR": str(home / "ipython"),
        "NO_COLOR": "1",
    }
    assert shutil.which("node", path=environ["PATH"]) is None
    return environ


def run(args: list[str], environ: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        args, capture_output=True, text=True, env=environ, cwd=cwd, timeout=1500, check=False
    )
    text = ANSI.sub("", out.stdout + out.stderr)
    assert out.returncode == 0, f"{' '.join(args)} failed:\n{text}"
    return text


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the source tree (``make setup`` has built the lab extension)."""
    out = tmp_path_factory.mktemp("labextension-wheel")
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        environ,
        REPO,
    )
    (built,) = out.glob("jupyterhub_mlteams-*.whl")
    return built


@pytest.fixture(scope="module")
def lab_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel's ``[notebook]`` extra and the JupyterLab of the
    notebook image (the version of this environment's), installed with Node.js off ``PATH``."""
    prefix = tmp_path_factory.mktemp("labextension-env")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(prefix)
    lab = f"jupyterlab=={importlib.metadata.version('jupyterlab')}"
    requirement = f"jupyterhub-mlteams[notebook] @ {wheel.as_uri()}"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--python",
            str(prefix / "bin" / "python"),
            "install",
            "-q",
            "--no-compile",
            requirement,
            lab,
        ],
        without_node(prefix),
        prefix,
    )
    return prefix


def test_the_wheel_carries_the_built_lab_extension(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
        meta = json.loads(
            archive.read(next(n for n in names if n.endswith(f"{SHARE}/package.json")))
        )
    assert meta["name"] == LABEXTENSION
    assert meta["version"] == importlib.metadata.version("jupyterhub-mlteams")
    # the federated build: its entry point and the chunks it loads, no TypeScript sources
    assert f"{SHARE}/{meta['jupyterlab']['_build']['load']}" in data
    assert any(n.startswith(f"{SHARE}/static/") and n.endswith(".js") for n in data)
    assert not any(n.endswith((".ts", ".tsx")) for n in data)
    assert f"{SHARE}/install.json" in data


def test_jupyterlab_lists_the_lab_extension_enabled_and_ok(lab_env: Path) -> None:
    text = run(
        [str(lab_env / "bin" / "jupyter"), "labextension", "list"], without_node(lab_env), lab_env
    )
    line = next((ln for ln in text.splitlines() if LABEXTENSION in ln), "")
    assert re.search(rf"{LABEXTENSION} v[\w.]+ enabled\s+OK", line), text
    # the extension is found where the wheel put it, in the environment's share/jupyter
    assert str(lab_env / "share" / "jupyter" / "labextensions") in text, text


def test_the_server_lists_the_server_extension_enabled_and_ok(lab_env: Path) -> None:
    text = run(
        [str(lab_env / "bin" / "jupyter"), "server", "extension", "list"],
        without_node(lab_env),
        lab_env,
    )
    assert re.search(r"server_ext\s+enabled", text), text
    assert re.search(r"server_ext [\w.]+ OK", text), text
