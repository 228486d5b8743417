"""``mlteams-env``: list, reset, projects and build, in a temporary home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server_ext.environments import user_site
from server_ext.environments.cli import main
from tests.unit.environments.test_user_site import install
from tests.unit.environments.wheels import tiny_wheel

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PYTHONUSERBASE", raising=False)
    monkeypatch.delenv("MLTEAMS_NOTEBOOK_ROOT", raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(home / ".local" / "share" / "jupyter"))
    monkeypatch.chdir(home)
    return home


def test_list_and_reset(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scheme = user_site.user_scheme(home / ".local")
    assert main(["list"]) == 0
    assert "(none: only the image's packages are installed)" in capsys.readouterr().out
    install(scheme, "alpha", "1.0")
    assert main(["list"]) == 0
    assert "  alpha 1.0" in capsys.readouterr().out
    assert main(["reset"]) == 2  # not a terminal: asks for --yes
    captured = capsys.readouterr()
    assert f"remove {scheme.site_packages / 'alpha'}" in captured.out
    assert "--yes" in captured.err
    assert (scheme.site_packages / "alpha").is_dir()
    assert main(["reset", "--yes"]) == 0
    assert "removed 3 entries; restart your kernels" in capsys.readouterr().out
    assert user_site.installed(scheme) == []
    assert main(["reset", "--yes"]) == 0
    assert "nothing to reset" in capsys.readouterr().out


def test_build_and_projects(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = home / "churn"
    wheel = tiny_wheel(project / "wheels")
    (project / "requirements.txt").write_text(f"--no-index\nwheels/{wheel.name}\n")
    (home / "empty").mkdir()
    assert main(["projects"]) == 0
    assert "churn  not-built  kernel -" in capsys.readouterr().out
    assert main(["build", "churn"]) == 0
    assert "choose the kernel 'Python (project churn)'" in capsys.readouterr().out
    spec = home / ".local" / "share" / "jupyter" / "kernels" / "mlteams-churn" / "kernel.json"
    assert json.loads(spec.read_text())["display_name"] == "Python (project churn)"
    assert main(["build", str(project)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["projects"]) == 0
    assert "churn  ready  kernel mlteams-churn" in capsys.readouterr().out
    for folder, says in ((tmp_path, "is not inside the notebook root"), ("empty", "has no")):
        assert main(["build", str(folder)]) == 2
        assert says in capsys.readouterr().err
    (project / "requirements.txt").write_text("--no-index\nmlteams-no-such-package\n")
    assert main(["build", "churn"]) == 1
    err = capsys.readouterr().err
    assert "mlteams-no-such-package" in err and "previous environment is kept" in err
