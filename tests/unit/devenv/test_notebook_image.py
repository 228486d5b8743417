"""The rig's notebook image environment: a Python with a user site whose pip installs to the
user base, over the project's virtualenv; and the kubelet's ``--pod-bin`` first on pods' PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devenv import notebook_image
from devenv.paths import REPO_ROOT
from tests.unit.devenv.test_kubelet_podspec import VENV_BIN, context, make_pod, plan
from tests.unit.environments.wheels import tiny_wheel

pytestmark = [pytest.mark.unit, pytest.mark.timeout(180)]


def test_pod_bin_comes_first_then_the_kubelets_virtualenv() -> None:
    ctx = context(pod_bin="/rig/notebook/bin")
    assert plan(make_pod(), ctx=ctx).env["PATH"] == f"/rig/notebook/bin:{VENV_BIN}:/usr/bin:/bin"
    pod = make_pod(env=[{"name": "PATH", "value": "/opt/conda/bin:/rig/notebook/bin:/bin"}])
    assert plan(pod, ctx=ctx).env["PATH"] == f"/rig/notebook/bin:{VENV_BIN}:/opt/conda/bin:/bin"
    assert plan(make_pod()).env["PATH"] == f"{VENV_BIN}:/usr/bin:/bin"


@pytest.fixture(scope="module")
def image_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    local = tmp_path_factory.mktemp("local")
    previous = os.environ.get("MLTEAMS_LOCAL_DIR")
    os.environ["MLTEAMS_LOCAL_DIR"] = str(local)
    try:
        built = notebook_image.ensure()
        assert built == notebook_image.ensure()  # the second call finds it built
        return built
    finally:
        if previous is None:
            del os.environ["MLTEAMS_LOCAL_DIR"]
        else:
            os.environ["MLTEAMS_LOCAL_DIR"] = previous


def run(image_bin: Path, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": f"{image_bin}:/usr/bin:/bin"}
    return subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True, timeout=120)


def test_console_scripts_run_the_image_interpreter(image_bin: Path) -> None:
    for name in ("jupyterhub-singleuser", "jupyter", "pip", "mlteams-env"):
        first = (image_bin / name).read_text().splitlines()[0]
        assert first.startswith(f"#!{image_bin}/python"), (name, first)
    root = image_bin.parent
    assert (root / "pip.conf").read_text() == notebook_image.PIP_CONF
    for rel in notebook_image.LINKED:
        assert (root / rel).resolve() == (Path(sys.prefix) / rel).resolve()


def test_pip_installs_to_the_user_base_and_the_image_is_untouched(
    image_bin: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    wheel = tiny_wheel(tmp_path / "wheels")
    probe = "import site, server_ext, jupyter_server; print(site.ENABLE_USER_SITE)"
    assert run(image_bin, home, "python", "-c", probe).stdout.strip() == "True"
    installed = run(image_bin, home, "pip", "install", "--no-index", str(wheel))
    assert installed.returncode == 0, installed.stderr
    user_site = home / ".local" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert (user_site / "site-packages" / "mlteams_tiny" / "__init__.py").is_file()
    assert not list(Path(sys.prefix).glob("lib/python*/site-packages/mlteams_tiny"))
    where = run(
        image_bin, home, "python", "-c", "import mlteams_tiny; print(mlteams_tiny.__file__)"
    )
    assert where.stdout.startswith(str(home / ".local")), where.stderr
    listed = run(image_bin, home, "mlteams-env", "list")
    assert "mlteams_tiny 0.1" in listed.stdout
    reset = run(image_bin, home, "mlteams-env", "reset", "--yes")
    assert reset.returncode == 0 and "restart your kernels" in reset.stdout
    gone = run(image_bin, home, "python", "-c", "import mlteams_tiny")
    assert "No module named 'mlteams_tiny'" in gone.stderr


def test_the_rigs_pip_configuration_is_the_notebook_images() -> None:
    dockerfile = (REPO_ROOT / "images" / "notebook" / "Dockerfile").read_text()
    [printed] = re.findall(r"printf '([^']*)' > \"\$\{CONDA_DIR\}/pip\.conf\"", dockerfile)
    assert printed.replace("\\n", "\n") == notebook_image.PIP_CONF
