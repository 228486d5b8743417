"""Each process installs only its extra. The wheel, built once from the source tree, goes into
two fresh environments, ``[notebook]`` and ``[hub]``, from the package index through pip's cache
(a second run downloads again only what the index's answers do not let pip cache). Each side
must miss the other side's packages, declare every third-party module its code imports, and
load its own entry points from the installed wheel: the server extension, the kernel hook (in a
real kernel) and MLflow's plugins in the notebook's; JupyterHub's spawner and authenticator
names and the ``mlteams-manifests`` command in the hub's."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]

# the other process's packages, and the MLflow server, which neither side runs
NOT_IN_NOTEBOOK = {
    "jupyterhub",
    "jupyterhub-kubespawner",
    "oauthenticator",
    "kubernetes-asyncio",
    "mlflow",
    "flask",
    "gunicorn",
    "alembic",
}
# SQLAlchemy and alembic are JupyterHub's own (its database), so they are not listed here
NOT_IN_HUB = {
    "mlflow",
    "mlflow-skinny",
    "mlflow-tracing",
    "flask",
    "gunicorn",
    "jupyter-server",
    "ipykernel",
    "s3fs",
    "nvidia-ml-py",
}


@dataclass(frozen=True)
class Env:
    prefix: Path

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    @property
    def environ(self) -> dict[str, str]:
        """This process's environment without anything that would let the source tree, the
        development environment or the user's Jupyter files stand in for what is installed."""
        drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"}
        home = self.prefix / "home"
        return {
            **{k: v for k, v in os.environ.items() if k not in drop},
            "PATH": f"{self.prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
            "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
            "IPYTHONDIR": str(home / "ipython"),
            "NO_COLOR": "1",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, capture_output=True, text=True, cwd=self.prefix, env=self.environ, timeout=600
        )

    def facts(self, code: str) -> dict[str, Any]:
        out = self.run(str(self.python), "-c", code)
        assert out.returncode == 0, out.stdout + out.stderr
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def pip(*args: str) -> subprocess.Popen[str]:
    """pip of this environment, run without the source tree on ``PYTHONPATH``."""
    return subprocess.Popen(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )


def check(proc: subprocess.Popen[str], what: str) -> None:
    out, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 0, f"{what} failed:\n{out}"


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Env]:
    root = tmp_path_factory.mktemp("packaging")
    wheels = root / "wheels"
    check(pip("wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)), "building the wheel")
    (wheel,) = wheels.glob("jupyterhub_mlteams-*.whl")
    made = {extra: Env(root / extra) for extra in ("notebook", "hub")}
    installs = {}
    for extra, env in made.items():
        venv.EnvBuilder(with_pip=False, symlinks=True).create(env.prefix)
        requirement = f"jupyterhub-mlteams[{extra}] @ {wheel.as_uri()}"
        installs[extra] = pip(
            "--python", str(env.python), "install", "-q", "--no-compile", requirement
        )
    for extra, proc in installs.items():
        check(proc, f"installing [{extra}]")
    return made


# modules imported directly that come with a declared requirement rather than being one
THROUGH = {"pydantic_core": "pydantic"}


def is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def third_party_imports(package: str) -> list[str]:
    """Top-level modules imported at run time anywhere in ``package`` (imports inside
    functions included, ``if TYPE_CHECKING:`` blocks not), less the standard library and
    the project's own packages."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    for source in (REPO / package).rglob("*.py"):
        visit(ast.parse(source.read_text(), str(source)))
    return sorted(found - set(sys.stdlib_module_names) - {"hub_ext", "server_ext", "__future__"})


REQUIREMENTS = """
import importlib.metadata as md, importlib.util, json, re, sys
modules, extra = json.loads(sys.argv[1]), sys.argv[2]

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

declared = set()
for line in md.requires("jupyterhub-mlteams") or []:
    requirement, _, marker = line.partition(";")
    if re.search(r"extra\\s*==\\s*'" + extra + "'", marker.replace('"', "'")):
        declared.add(canonical(re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group()))
providers = md.packages_distributions()
print(json.dumps({
    "declared": sorted(declared),
    "modules": {
        m: {
            "importable": importlib.util.find_spec(m) is not None,
            "from": sorted(canonical(d) for d in providers.get(m, [])),
        }
        for m in modules
    },
}))
"""


@pytest.mark.parametrize(("package", "extra"), [("hub_ext", "hub"), ("server_ext", "notebook")])
def test_each_side_imports_only_what_its_extra_declares(
    envs: dict[str, Env], package: str, extra: str
) -> None:
    modules = third_party_imports(package)
    env = envs[extra]
    out = env.run(str(env.python), "-c", REQUIREMENTS, json.dumps(modules), extra)
    assert out.returncode == 0, out.stdout + out.stderr
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    declared = set(facts["declared"])
    missing = {m: f for m, f in facts["modules"].items() if not f["importable"]}
    assert missing == {}, f"{package} imports what [{extra}] does not install"
    undeclared = {
        m: f["from"]
        for m, f in facts["modules"].items()
        if not (set(f["from"]) & declared or THROUGH.get(m) in declared)
    }
    assert undeclared == {}, f"{package} imports these without [{extra}] requiring them"


DISTRIBUTIONS = """
import importlib.metadata as md, json, re
print(json.dumps({"dists": sorted(
    re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in md.distributions()
)}))
"""


def distributions(env: Env) -> set[str]:
    return set(env.facts(DISTRIBUTIONS)["dists"])


def test_notebook_extra_has_no_hub_packages_and_no_mlflow_server(envs: dict[str, Env]) -> None:
    dists = distributions(envs["notebook"])
    assert {"jupyterhub-mlteams", "jupyter-server", "mlflow-skinny", "ipykernel"} <= dists
    assert dists & NOT_IN_NOTEBOOK == set()


def test_hub_extra_has_no_mlflow_and_no_jupyter_server(envs: dict[str, Env]) -> None:
    dists = distributions(envs["hub"])
    assert {"jupyterhub-mlteams", "jupyterhub", "jupyterhub-kubespawner", "oauthenticator"} <= dists
    assert dists & NOT_IN_HUB == set()


NOTEBOOK_ENTRY_POINTS = """
import importlib, importlib.metadata as md, json, sys
from pathlib import Path
import server_ext
from jupyter_server.extension.application import ExtensionApp
from mlflow.tracking.context.abstract_context import RunContextProvider
from mlflow.tracking.default_experiment.abstract_context import DefaultExperimentProvider

def name(obj):
    return f"{obj.__module__}:{obj.__qualname__}"

points = server_ext._jupyter_server_extension_points()
hook = importlib.import_module("server_ext.kernel.hook")
bases = {
    "mlflow.run_context_provider": RunContextProvider,
    "mlflow.default_experiment_provider": DefaultExperimentProvider,
}
plugins = {}
for group, base in bases.items():
    for ep in md.entry_points(group=group):
        cls = ep.load()
        plugins[f"{group}:{ep.name}"] = [name(cls), issubclass(cls, base)]
etc = Path(sys.prefix, "etc")
print(json.dumps({
    "extension_points": [
        [p["module"], name(p["app"]), issubclass(p["app"], ExtensionApp)] for p in points
    ],
    "hook": callable(getattr(hook, "load_ipython_extension", None)),
    "plugins": plugins,
    "etc": sorted(
        str(p.relative_to(etc)) for p in etc.rglob("*")
        if p.is_file() and p.suffix in (".json", ".py")
    ),
}))
"""


def test_notebook_side_loads_its_entry_points(envs: dict[str, Env]) -> None:
    facts = envs["notebook"].facts(NOTEBOOK_ENTRY_POINTS)
    assert facts["extension_points"] == [
        ["server_ext", "server_ext.server.app:MLTeamsExtension", True]
    ]
    assert facts["hook"]
    plugins = "server_ext.kernel.mlflow_plugins"
    assert facts["plugins"] == {
        "mlflow.run_context_provider:mlteams": [f"{plugins}:TeamRunContextProvider", True],
        "mlflow.default_experiment_provider:mlteams": [f"{plugins}:TeamExperimentProvider", True],
    }
    # what the wheel puts in the environment's etc: folders that other packages share
    assert {
        "jupyter/jupyter_server_config.d/server_ext.json",
        "ipython/startup/50-mlteams-kernel-hook.py",
    } <= set(facts["etc"])
    assert not any(re.fullmatch(r"ipython/ipython\w*_config\.\w+", f) for f in facts["etc"])


def test_notebook_server_enables_the_extension(envs: dict[str, Env]) -> None:
    env = envs["notebook"]
    out = env.run(str(env.prefix / "bin" / "jupyter"), "server", "extension", "list")
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert out.returncode == 0, text
    assert re.search(r"server_ext\s+enabled", text), text
    assert re.search(r"server_ext [\w.]+ OK", text), text


KERNEL_START = """
import json, os, socket, sys
from jupyter_client.manager import KernelManager

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
env = {**os.environ, "MLTEAMS_TRACKING": "1", "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
km = KernelManager(kernel_name="python3")
km.start_kernel(env=env)
client = km.client()
client.start_channels()
try:
    client.wait_for_ready(timeout=120)
    out = []
    code = ("import sys; print(sys.prefix, 'server_ext.kernel.hook' in "
            "get_ipython().extension_manager.loaded, sys.modules['server_ext.kernel.hook']"
            "._tracker is not None, 'mlflow' in sys.modules)")
    client.execute_interactive(
        code, timeout=60, output_hook=lambda m: out.append(m["content"].get("text", ""))
    )
finally:
    client.stop_channels()
    km.shutdown_kernel(now=True)
prefix, loaded, tracking, mlflow = "".join(out).split()
print(json.dumps({"prefix": prefix, "hook": loaded, "tracker": tracking, "mlflow": mlflow}))
"""


def test_notebook_kernel_loads_the_hook_from_the_installed_wheel(envs: dict[str, Env]) -> None:
    env = envs["notebook"]
    facts = env.facts(KERNEL_START)
    assert facts == {
        "prefix": str(env.prefix),
        "hook": "True",
        "tracker": "True",
        "mlflow": "False",
    }


HUB_ENTRY_POINTS = """
import importlib.metadata as md, json
from jupyterhub.app import JupyterHub
from kubespawner import KubeSpawner
from oauthenticator.oauth2 import OAuthenticator

def name(obj):
    return f"{obj.__module__}:{obj.__qualname__}"

hub = JupyterHub(spawner_class="mlteams", authenticator_class="mlteams")
print(json.dumps({
    "spawner": [name(hub.spawner_class), issubclass(hub.spawner_class, KubeSpawner)],
    "authenticator": [
        name(hub.authenticator_class), issubclass(hub.authenticator_class, OAuthenticator)
    ],
    "groups": {
        g: {ep.name: ep.value for ep in md.entry_points(group=g) if ep.name == "mlteams"}
        for g in ("jupyterhub.spawners", "jupyterhub.authenticators")
    },
}))
"""


def test_hub_resolves_the_spawner_and_authenticator_names(envs: dict[str, Env]) -> None:
    facts = envs["hub"].facts(HUB_ENTRY_POINTS)
    assert facts["spawner"] == ["hub_ext.spawner.team_spawner:TeamKubeSpawner", True]
    assert facts["authenticator"] == ["hub_ext.auth.authenticator:TeamOAuthenticator", True]
    assert facts["groups"] == {
        "jupyterhub.spawners": {"mlteams": "hub_ext.spawner:TeamKubeSpawner"},
        "jupyterhub.authenticators": {"mlteams": "hub_ext.auth:TeamOAuthenticator"},
    }


def test_hub_has_the_manifests_command(envs: dict[str, Env]) -> None:
    env = envs["hub"]
    out = env.run(str(env.prefix / "bin" / "mlteams-manifests"), "--help")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("usage: mlteams-manifests"), out.stdout
