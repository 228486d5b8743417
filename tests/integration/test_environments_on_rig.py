"""Environments that persist, on the rig: a package installed with ``%pip install`` in a spawned
server lands in ``~/.local`` on the home volume (never in the image's packages), survives a stop
and start with a hub restart in between, and the reset removes it; a project kernel built in the
server stays registered and runs after the restart.

The pods run from the rig's stand-in of the notebook image's Python (``devenv.notebook_image``),
whose pip installs to the user base as the image's does.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

from devenv.hub import LocalHub
from tests.integration.remote_kernel import CellResult, RemoteNotebook
from tests.integration.team_hub_helpers import call, restart_hub, spawn, stop
from tests.unit.environments.wheels import tiny_wheel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

USER = "env-alice"
SITE = f"/home/jovyan/.local/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
PROBE = "import mlteams_tiny; print(mlteams_tiny.VALUE, mlteams_tiny.__file__)"


def in_the_image(package: str) -> bool:
    """Whether ``package`` is in the pods' packages (the project's virtualenv)."""
    return any(Path(sys.prefix).glob(f"lib/python*/site-packages/{package}"))


async def run_cells(
    hub: LocalHub, path: str, *cells: str, kernel: str = "python3"
) -> list[CellResult]:
    """Save ``cells`` as the notebook ``path`` and run them in a new kernel of ``kernel``."""
    notebook = RemoteNotebook(hub, USER, path)
    await notebook.save(*cells)
    session = await notebook.request(
        "POST",
        "/api/sessions",
        {"path": path, "name": path, "type": "notebook", "kernel": {"name": kernel}},
    )
    notebook.session_id, notebook.kernel_id = session["id"], session["kernel"]["id"]
    try:
        return await notebook.run()
    finally:
        await notebook.close_session()


async def mlteams(hub: LocalHub, method: str, path: str, body: Any = None) -> Any:
    return await RemoteNotebook(hub, USER, "").request(method, f"/mlteams/{path}", body)


async def upload(hub: LocalHub, path: str, content: bytes) -> None:
    model = {"type": "file", "format": "base64", "content": base64.b64encode(content).decode()}
    await RemoteNotebook(hub, USER, "").request("PUT", f"/api/contents/{path}", model)


async def test_installed_packages_and_project_kernels_survive_a_restart(
    hub: LocalHub, tmp_path: Path
) -> None:
    wheel = tiny_wheel(tmp_path, value="7")
    status, body = await call(hub, "POST", f"/users/{USER}")
    assert status in (201, 409), body
    await spawn(hub, USER, {})
    try:
        await RemoteNotebook(hub, USER, "").request(
            "PUT", "/api/contents/wheels", {"type": "directory"}
        )
        await upload(hub, f"wheels/{wheel.name}", wheel.read_bytes())
        [install, probe] = await run_cells(
            hub, "install.ipynb", f"%pip install --no-index wheels/{wheel.name}", PROBE
        )
        assert install.status == "ok" and "Successfully installed" in install.stdout, install
        assert probe.status == "ok", probe.error
        assert probe.stdout.split() == ["7", f"{SITE}/mlteams_tiny/__init__.py"]
        assert not in_the_image("mlteams_tiny")
        listed = await mlteams(hub, "GET", "environment")
        assert {"name": "mlteams_tiny", "version": "0.1"} in listed["packages"]

        await RemoteNotebook(hub, USER, "").request(
            "PUT", "/api/contents/proj", {"type": "directory"}
        )
        await upload(hub, "proj/requirements.txt", f"--no-index\n../wheels/{wheel.name}\n".encode())
        built = await mlteams(hub, "POST", "projects/build", {"path": "proj"})
        assert (built["state"], built["kernel"]) == ("ready", "mlteams-proj"), built

        # the server stops and the hub restarts: the home, and what was installed there, stay
        await stop(hub, USER)
        await restart_hub(hub)
        await spawn(hub, USER, {})

        [after] = await run_cells(hub, "after.ipynb", PROBE)
        assert after.status == "ok", after.error
        assert after.stdout.split()[0] == "7"
        [project] = (await mlteams(hub, "GET", "projects"))["projects"]
        assert (project["path"], project["state"]) == ("proj", "ready")
        specs = await RemoteNotebook(hub, USER, "").request("GET", "/api/kernelspecs")
        assert specs["kernelspecs"]["mlteams-proj"]["spec"]["display_name"] == (
            "Python (project proj)"
        )
        again = await mlteams(hub, "POST", "projects/build", {"path": "proj"})
        assert (again["state"], again["rebuilt"]) == ("ready", False)

        reset = await mlteams(hub, "POST", "environment/reset", {})
        assert reset["removed"]["packages"] == [{"name": "mlteams_tiny", "version": "0.1"}]
        assert "restart your kernels" in reset["message"]
        [gone] = await run_cells(hub, "gone.ipynb", PROBE)
        assert "No module named 'mlteams_tiny'" in gone.error
        # the project's kernel has its own environment: the reset leaves it as it was
        [in_project] = await run_cells(hub, "proj/use.ipynb", PROBE, kernel="mlteams-proj")
        assert in_project.status == "ok", in_project.error
        assert in_project.stdout.split()[1].startswith("/home/jovyan/.mlteams/envs/proj/")
    finally:
        await stop(hub, USER)
