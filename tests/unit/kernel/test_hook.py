"""The kernel hook: the import watcher, the health probe and the one-warning rule without a
kernel; the shipped IPython startup file in real kernels beside an admin's own kernel
configuration; and MLflow's plugin entry points."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from devenv.procs import free_port
from server_ext.kernel import hook as kernel_hook
from server_ext.kernel.import_watch import ImportWatcher
from server_ext.kernel.reachability import health_url, probe

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def fake_package(tmp_path: Path) -> Iterator[str]:
    name = "mlteams_fake_ml_lib"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 42\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_watcher_calls_back_after_the_module_ran_and_leaves_it_intact(fake_package: str) -> None:
    seen: list[tuple[str, int]] = []
    watcher = ImportWatcher([fake_package], lambda n: seen.append((n, sys.modules[n].VALUE)))
    watcher.install()
    try:
        module = __import__(fake_package)
    finally:
        watcher.uninstall()
    assert seen == [(fake_package, 42)]
    assert type(module.__loader__).__name__ != "_NotifyingLoader"
    assert watcher not in sys.meta_path


def test_watcher_survives_a_failing_callback(
    fake_package: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(name: str) -> None:
        raise RuntimeError("nope")

    watcher = ImportWatcher([fake_package], boom)
    watcher.install()
    try:
        assert __import__(fake_package).VALUE == 42
    finally:
        watcher.uninstall()
    assert "tracking hook failed" in capsys.readouterr().err


def test_watcher_ignores_other_and_missing_modules() -> None:
    watcher = ImportWatcher(["definitely_not_installed_pkg"], lambda n: None)
    assert watcher.find_spec("json") is None
    assert watcher.find_spec("definitely_not_installed_pkg") is None


def test_probe_is_bounded_and_explains() -> None:
    assert health_url("http://h:5000/base/") == "http://h:5000/base/health"
    assert health_url("sqlite:///x.db") is None
    assert probe("file:///tmp/x", 1) is None
    assert "did not answer" in (probe(f"http://127.0.0.1:{free_port()}", 1) or "")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port = sock.getsockname()[1]
        assert "within 0.5s" in (probe(f"http://127.0.0.1:{port}", 0.5) or "")


def test_unreachable_server_gives_exactly_one_warning(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", "MLTEAMS_TRACKING": "1"}
    tracker = kernel_hook.KernelTracking(environ=environ, probe_timeout=0.5)
    tracker.on_library_imported("sklearn")
    tracker.on_library_imported("torch")
    tracker.warn("again")
    assert tracker.state == "unreachable"
    assert capsys.readouterr().err.count("mlteams warning") == 1


def test_hook_is_inert_without_tracking_config() -> None:
    assert not kernel_hook.tracking_configured({})
    assert not kernel_hook.tracking_configured({"MLTEAMS_TRACKING": "1"})
    assert kernel_hook.tracking_configured(
        {"MLTEAMS_TRACKING": "1", "MLFLOW_TRACKING_URI": "http://m"}
    )
    traits = kernel_hook.KernelTracking.class_traits(config=True)
    assert all(t.help for t in traits.values())


SHIPPED_STARTUP = REPO / "jupyter-config" / "ipython" / "startup"
KERNEL = "mlteams-test-env"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An environment prefix as a notebook image has it: the package's startup file in
    ``etc/ipython/startup`` (where the wheel installs it) and, beside it, an admin's own
    ``ipython_kernel_config.json`` and startup file, and an extension of the admin's. Its Python
    sees this environment's packages; ``IPYTHONDIR`` is empty."""
    root = tmp_path_factory.mktemp("kernel-env")
    prefix = root / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(prefix)
    admin_lib = root / "admin-lib"
    admin_lib.mkdir()
    (admin_lib / "mlteams_admin_ext.py").write_text(
        "def load_ipython_extension(ip):\n    ip.user_ns['admin_extension_loaded'] = True\n"
    )
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (prefix / "lib" / version / "site-packages" / "mlteams_test_overlay.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n{REPO}\n{admin_lib}\n"
    )
    etc = prefix / "etc" / "ipython"
    (etc / "startup").mkdir(parents=True)
    for shipped in SHIPPED_STARTUP.glob("*.py"):
        shutil.copy(shipped, etc / "startup" / shipped.name)
    (etc / "startup" / "00-admin.py").write_text("admin_startup_ran = True\n")
    (etc / "ipython_kernel_config.json").write_text(
        json.dumps(
            {
                "InteractiveShellApp": {"extra_extensions": ["mlteams_admin_ext"]},
                "KernelTracking": {"probe_timeout": 1.5},
            }
        )
    )
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    str(prefix / "bin" / "python"),
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "mlteams test",
                "language": "python",
            }
        )
    )
    (root / "ipython").mkdir()
    return root


def env_for(root: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {
        **environ,
        "IPYTHONDIR": str(root / "ipython"),
        "MLTEAMS_TRACKING": "1",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
    }


KERNEL_FACTS = """
import json, sys
ip = get_ipython()
hook = sys.modules.get("server_ext.kernel.hook")
tracker = getattr(hook, "_tracker", None)
print(json.dumps({
    "prefix": sys.prefix,
    "extensions": sorted(ip.extension_manager.loaded),
    "tracker": tracker is not None,
    "probe_timeout": getattr(tracker, "probe_timeout", None),
    "admin_startup_ran": ip.user_ns.get("admin_startup_ran", False),
    "admin_extension_loaded": ip.user_ns.get("admin_extension_loaded", False),
    "startup_names": sorted(n for n in ip.user_ns if "mlteams" in n),
    "heavy": sorted(m for m in ("mlflow", "pandas") if m in sys.modules),
}))
"""


def kernel_facts(root: Path) -> dict[str, Any]:
    km = KernelManager(
        kernel_name=KERNEL,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(root / "kernels")]),
    )
    km.start_kernel(env=env_for(root), cwd=str(root))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        out: list[str] = []
        reply = client.execute_interactive(
            KERNEL_FACTS,
            timeout=60,
            output_hook=lambda m: out.append(m["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        facts: dict[str, Any] = json.loads("".join(out))
        return facts
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def test_startup_file_loads_the_hook_beside_an_admins_kernel_config(kernel_env: Path) -> None:
    facts = kernel_facts(kernel_env)
    assert facts["prefix"] == str(kernel_env / "env")
    assert {"server_ext.kernel.hook", "mlteams_admin_ext"} <= set(facts["extensions"])
    assert facts["admin_extension_loaded"] and facts["admin_startup_ran"]
    # the hook runs with the admin's configuration of it, and loads nothing heavy at start
    assert facts["tracker"] and facts["probe_timeout"] == 1.5
    assert facts["heavy"] == []
    # the startup file leaves no name in the user's namespace
    assert facts["startup_names"] == []


def test_terminal_ipython_does_not_load_the_hook(kernel_env: Path) -> None:
    code = "import sys; print('server_ext.kernel.hook' in sys.modules, admin_startup_ran)"
    out = subprocess.run(
        [str(kernel_env / "env" / "bin" / "python"), "-m", "IPython", "--no-banner", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=kernel_env,
        env=env_for(kernel_env),
        timeout=120,
    )
    assert out.stdout.split()[-2:] == ["False", "True"], out.stdout + out.stderr


def test_mlflow_loads_the_plugins_from_the_entry_points() -> None:
    code = """
import importlib.metadata as md, json
from mlflow.tracking.context import registry as run_context
from mlflow.tracking.default_experiment import registry as default_experiment
from server_ext.kernel import mlflow_plugins as plugins
groups = ("mlflow.run_context_provider", "mlflow.default_experiment_provider")
loaded = {g: {ep.name: ep.load() for ep in md.entry_points(group=g)} for g in groups}
print(json.dumps({
    "run_context": loaded[groups[0]].get("mlteams") is plugins.TeamRunContextProvider,
    "default_experiment": loaded[groups[1]].get("mlteams") is plugins.TeamExperimentProvider,
    "registered": [
        any(isinstance(p, plugins.TeamRunContextProvider)
            for p in run_context._run_context_provider_registry),
        any(isinstance(p, plugins.TeamExperimentProvider)
            for p in default_experiment._default_experiment_provider_registry),
    ],
}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "run_context": True,
        "default_experiment": True,
        "registered": [True, True],
    }


def test_hook_module_imports_nothing_heavy() -> None:
    import subprocess

    code = (
        "import sys, server_ext.kernel.hook; "
        "print(sorted(m for m in ('mlflow', 'sklearn', 'jupyter_server', 'tornado') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


class FakeMLflow:
    """Records what the hook switches on."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def autolog(self, **kwargs: object) -> None:
        self.calls.append("autolog")

    def enable_system_metrics_logging(self) -> None:
        self.calls.append("system-metrics")


@pytest.mark.parametrize(
    ("gpus", "pynvml", "option", "expected"),
    [
        ("1", True, True, ["autolog", "system-metrics"]),
        ("4", True, True, ["autolog", "system-metrics"]),
        ("0", True, True, ["autolog"]),
        ("", True, True, ["autolog"]),
        ("2", False, True, ["autolog"]),
        ("2", True, False, ["autolog"]),
    ],
)
def test_gpu_system_metrics_only_on_gpu_profiles_with_nvidia_ml_py(
    monkeypatch: pytest.MonkeyPatch, gpus: str, pynvml: bool, option: bool, expected: list[str]
) -> None:
    import importlib.util

    fake = FakeMLflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> object:
        if name == "pynvml":
            return object() if pynvml else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    tracker = kernel_hook.KernelTracking(environ={"MLTEAMS_GPUS": gpus})
    tracker.system_metrics_on_gpu = option
    tracker._autolog()
    assert fake.calls == expected


@pytest.mark.parametrize("record", [True, False])
def test_runs_get_their_environment_from_mlflows_import_unless_switched_off(record: bool) -> None:
    import mlflow  # noqa: F401  (imported before the hook, as after a restart of the extension)
    from mlflow.tracking import MlflowClient

    before = MlflowClient.create_run
    tracker = kernel_hook.KernelTracking(environ={"HOME": "/home/x"}, record_environment=record)
    tracker._install_environment()
    try:
        assert (tracker.environment is not None) is record
        assert (MlflowClient.create_run is not before) is record
        assert tracker.mlflow_watcher is None or tracker.mlflow_watcher not in sys.meta_path
    finally:
        tracker.uninstall_environment()
    assert MlflowClient.create_run is before


def test_object_store_reads_get_bounded_timeouts_unless_the_user_set_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel's s3 filesystems time out and retry a bounded number of times; a user's own
    ``FSSPEC_S3`` and a reader's ``storage_options`` win."""
    from fsspec.config import apply_config, set_conf_env
    from s3fs import S3FileSystem

    monkeypatch.setenv("FSSPEC_S3", "")
    monkeypatch.delenv("FSSPEC_S3")
    tracker = kernel_hook.KernelTracking(environ={}, libraries=["mlteams_not_imported_lib"])
    tracker.install()
    tracker.watcher.uninstall()
    tracker.uninstall_environment()
    conf: dict[str, dict[str, Any]] = {}
    set_conf_env(conf, {"FSSPEC_S3": os.environ["FSSPEC_S3"]})
    kwargs = apply_config(S3FileSystem, {"key": "k", "client_kwargs": {"region_name": "x"}}, conf)
    assert kwargs["key"] == "k" and kwargs["client_kwargs"] == {"region_name": "x"}
    client = kwargs["config_kwargs"]
    assert (client["connect_timeout"], client["read_timeout"]) == (5, 10)
    assert client["retries"] == {"mode": "standard", "max_attempts": 1}
    # the settings are ones s3fs and botocore accept: making the client (no request is sent)
    # passes every one of them on
    kwargs["client_kwargs"]["endpoint_url"] = "http://127.0.0.1:9"
    S3FileSystem(**kwargs, secret="s", skip_instance_cache=True).connect()

    monkeypatch.setenv("FSSPEC_S3", '{"retries": 7}')
    tracker.install()
    tracker.watcher.uninstall()
    tracker.uninstall_environment()
    assert os.environ["FSSPEC_S3"] == '{"retries": 7}'
