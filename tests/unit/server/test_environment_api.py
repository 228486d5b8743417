"""/mlteams/environment and /mlteams/projects through a real Jupyter server: the packages a user
installed and their reset, and a project kernel really built from a requirements.txt (a local
wheel, no package index), listed in /api/kernelspecs, started, and rebuilt only when the file
changes; bad requests get a clear 4xx and a failed build keeps the previous environment."""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking import BlockingKernelClient
from tornado.httpclient import HTTPClientError

from server_ext.environments import user_site
from tests.unit.environments.test_user_site import install
from tests.unit.environments.wheels import tiny_wheel
from tests.unit.server import test_api

pytestmark = [pytest.mark.unit, pytest.mark.timeout(240)]

# the same real server as the rest of the API tests (pytest-jupyter's fixtures, ``fetch``)
globals().update(
    {
        name: value
        for name, value in vars(test_api).items()
        if name.startswith(("jp_", "http_server", "io_loop", "echo_kernel")) or name == "fetch"
    }
)

KERNEL = "mlteams-projects--tiny"


@pytest.fixture(autouse=True)
def user_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> user_site.UserScheme:
    base = tmp_path / "userbase"
    monkeypatch.setenv("PYTHONUSERBASE", str(base))
    return user_site.user_scheme(base)


def post(fetch: Any, *parts: str, body: Any) -> Any:
    return fetch(*parts, method="POST", body=json.dumps(body) if body is not None else b"")


def error(fetch: Any, *parts: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    with pytest.raises(HTTPClientError) as info:
        fetch(*parts, method="POST", body=raw if raw is not None else json.dumps(body))
    assert info.value.response is not None
    return info.value.code, json.loads(info.value.response.body)


def test_installed_packages_are_listed_and_reset(
    fetch: Any, user_base: user_site.UserScheme
) -> None:
    data = json.loads(fetch("mlteams", "environment").body)
    assert data["user_base"] == str(user_base.base)
    assert data["site_packages"] == str(user_base.site_packages)
    assert data["packages"] == [] and data["persistent"] is None
    install(user_base, "alpha", "1.0")
    data = json.loads(fetch("mlteams", "environment").body)
    assert data["packages"] == [{"name": "alpha", "version": "1.0"}]
    done = json.loads(post(fetch, "mlteams", "environment", "reset", body=None).body)
    assert done["removed"]["packages"] == [{"name": "alpha", "version": "1.0"}]
    assert str(user_base.scripts / "alpha-cli") in done["removed"]["paths"]
    assert "restart your kernels" in done["message"]
    assert json.loads(fetch("mlteams", "environment").body)["packages"] == []
    assert not (user_base.scripts / "alpha-cli").exists()


def test_bad_build_requests_say_why(fetch: Any, jp_root_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "requirements.txt").write_text("numpy\n")
    (jp_root_dir / "escape").symlink_to(outside)
    (jp_root_dir / "empty").mkdir()
    cases = [
        ({"path": "../outside"}, 400, "inside the notebook root"),
        ({"path": str(outside)}, 400, "relative to the notebook root"),
        ({"path": "escape"}, 400, "outside the notebook root"),
        ({}, 400, "give the project folder"),
        (["projects/x"], 400, "give the project folder"),
        ({"path": "nowhere"}, 404, "no folder nowhere"),
        ({"path": "empty"}, 404, "has no requirements.txt"),
    ]
    for body, code, says in cases:
        got, answer = error(fetch, "mlteams", "projects", "build", body=body)
        assert (got, says in answer["message"]) == (code, True), (body, answer)
    got, answer = error(fetch, "mlteams", "projects", "build", raw=b"{not json")
    assert got == 400 and "JSON" in answer["message"]


def test_environment_yml_without_conda_is_refused_clearly(
    fetch: Any, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    (jp_root_dir / "condaproj").mkdir()
    (jp_root_dir / "condaproj" / "environment.yml").write_text("dependencies: [python]\n")
    got, answer = error(fetch, "mlteams", "projects", "build", body={"path": "condaproj"})
    assert got == 422
    assert "neither conda nor mamba" in answer["message"]


def run_in_kernel(jp_serverapp: Any, fetch: Any, name: str, expression: str) -> str:
    """Start a kernel of ``name`` through the server's REST API and evaluate ``expression`` in
    it (a user expression of an execute request: the answer comes on the shell channel)."""
    kernel = json.loads(post(fetch, "api", "kernels", body={"name": name}).body)
    manager = jp_serverapp.kernel_manager.get_kernel(kernel["id"])
    client = BlockingKernelClient()
    client.load_connection_info(manager.get_connection_info())
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    try:
        msg_id = client.execute("", silent=True, user_expressions={"value": expression})
        while True:
            reply = client.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        value = reply["content"]["user_expressions"]["value"]
        assert value["status"] == "ok", value
        return str(ast.literal_eval(value["data"]["text/plain"]))
    finally:
        client.stop_channels()
        fetch("api", "kernels", kernel["id"], method="DELETE")


def build(fetch: Any, path: str) -> dict[str, Any]:
    return json.loads(post(fetch, "mlteams", "projects", "build", body={"path": path}).body)


def projects(fetch: Any) -> dict[str, Any]:
    return {p["path"]: p for p in json.loads(fetch("mlteams", "projects").body)["projects"]}


def test_a_project_kernel_is_built_cached_rebuilt_and_kept_on_failure(
    fetch: Any, jp_serverapp: Any, jp_root_dir: Path, jp_home_dir: Path
) -> None:
    project = jp_root_dir / "projects" / "tiny"
    wheels = project / "wheels"
    first = tiny_wheel(wheels, version="0.1", value="1")
    requirements = project / "requirements.txt"
    requirements.write_text(f"--no-index\n{first.relative_to(project)}\n")
    assert projects(fetch)["projects/tiny"]["state"] == "not-built"

    built = build(fetch, "projects/tiny")
    assert (built["state"], built["rebuilt"], built["kernel"]) == ("ready", True, KERNEL)
    assert "mlteams_tiny" in built["log_tail"]
    listed = projects(fetch)["projects/tiny"]
    assert (listed["state"], listed["kernel"]) == ("ready", KERNEL)
    specs = json.loads(fetch("api", "kernelspecs").body)["kernelspecs"]
    assert specs[KERNEL]["spec"]["display_name"] == "Python (project projects/tiny)"
    code = 'f\'{__import__("mlteams_tiny").VALUE} {__import__("sys").prefix}\''
    printed = run_in_kernel(jp_serverapp, fetch, KERNEL, code)
    assert printed.split()[0] == "1"
    assert printed.split()[1].startswith(str(jp_home_dir / ".mlteams" / "envs" / "projects--tiny"))

    again = build(fetch, "projects/tiny")
    assert (again["state"], again["rebuilt"]) == ("ready", False)
    assert "up to date" in again["message"]

    second = tiny_wheel(wheels, version="0.2", value="2")
    requirements.write_text(f"--no-index\n{second.relative_to(project)}\n")
    assert projects(fetch)["projects/tiny"]["state"] == "stale"
    rebuilt = build(fetch, "projects/tiny")
    assert (rebuilt["state"], rebuilt["rebuilt"]) == ("ready", True)
    assert run_in_kernel(jp_serverapp, fetch, KERNEL, code).split()[0] == "2"
    builds = list((jp_home_dir / ".mlteams" / "envs" / "projects--tiny").glob("build-*"))
    assert len(builds) == 1

    requirements.write_text("--no-index\nmlteams-no-such-package==9\n")
    got, failed = error(fetch, "mlteams", "projects", "build", body={"path": "projects/tiny"})
    assert got == 422 and failed["state"] == "failed"
    assert "pip could not install requirements.txt" in failed["message"]
    assert "previous environment is kept" in failed["message"]
    assert "mlteams-no-such-package" in failed["log_tail"]
    listed = projects(fetch)["projects/tiny"]
    assert (listed["state"], listed["kernel"]) == ("failed", KERNEL)
    assert "pip could not install" in listed["error"]
    assert run_in_kernel(jp_serverapp, fetch, KERNEL, code).split()[0] == "2"
