"""The kernel hook's parts that need no kernel: the import watcher, the health probe, the
one-warning rule, and the packaged IPython configuration."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def test_kernel_config_ships_with_the_package_and_loads_the_hook() -> None:
    shipped = REPO / "jupyter-config" / "ipython" / "ipython_kernel_config.json"
    config = json.loads(shipped.read_text())
    assert config["InteractiveShellApp"]["extra_extensions"] == ["server_ext.kernel.hook"]
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"jupyter-config/ipython" = "etc/ipython"' in pyproject
    assert "server_ext.kernel.mlflow_plugins:TeamRunContextProvider" in pyproject
    assert "server_ext.kernel.mlflow_plugins:TeamExperimentProvider" in pyproject


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

    def find_spec(name: str, *args: object) -> object:
        if name == "pynvml":
            return object() if pynvml else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    tracker = kernel_hook.KernelTracking(environ={"MLTEAMS_GPUS": gpus})
    tracker.system_metrics_on_gpu = option
    tracker._autolog()
    assert fake.calls == expected
