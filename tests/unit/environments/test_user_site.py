"""The user base: where pip's user installs go, what is installed, what a reset removes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from server_ext import contract
from server_ext.environments import user_site

pytestmark = pytest.mark.unit

PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


def install(scheme: user_site.UserScheme, name: str, version: str) -> None:
    """What ``pip install --user`` leaves: the package, its dist-info with a RECORD that lists
    the console script in the user base's bin."""
    site = scheme.site_packages
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text("VALUE = 1\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    scheme.scripts.mkdir(parents=True, exist_ok=True)
    (scheme.scripts / f"{name}-cli").write_text("#!/bin/sh\n")
    (info / "RECORD").write_text(
        f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n"
        f"../../../bin/{name}-cli,,\n"
    )


def test_the_user_scheme_is_pythons(tmp_path: Path) -> None:
    scheme = user_site.user_scheme(tmp_path / ".local")
    assert scheme.site_packages == tmp_path / ".local" / "lib" / PY / "site-packages"
    assert scheme.scripts == tmp_path / ".local" / "bin"


@pytest.mark.parametrize(
    ("environ", "base"),
    [
        ({"HOME": "/home/jovyan"}, "/home/jovyan/.local"),
        ({"HOME": "/home/jovyan", "PYTHONUSERBASE": "/data/py"}, "/data/py"),
    ],
)
def test_default_user_base(environ: dict[str, str], base: str) -> None:
    assert user_site.default_user_base(environ) == base


@pytest.mark.parametrize(
    ("value", "persistent"),
    [("true", True), ("1", True), ("False", False), ("no", False), ("", None), ("maybe", None)],
)
def test_home_persistence_comes_from_the_hub(value: str, persistent: bool | None) -> None:
    assert user_site.home_persistent({contract.HOME_PERSISTENT: value}) is persistent
    assert user_site.home_persistent({}) is None


def test_the_user_site_is_created_once(tmp_path: Path) -> None:
    scheme = user_site.user_scheme(tmp_path)
    assert user_site.ensure_user_site(scheme) is True
    assert scheme.site_packages.is_dir()
    assert user_site.ensure_user_site(scheme) is False


def test_installed_packages_are_listed(tmp_path: Path) -> None:
    scheme = user_site.user_scheme(tmp_path)
    assert user_site.installed(scheme) == []
    install(scheme, "zeta", "2.0")
    install(scheme, "alpha", "1.0")
    found = user_site.installed(scheme)
    assert [(d.name, d.version) for d in found] == [("alpha", "1.0"), ("zeta", "2.0")]
    assert scheme.scripts / "alpha-cli" in found[0].files


def test_reset_removes_the_user_site_and_its_scripts_only(tmp_path: Path) -> None:
    scheme = user_site.user_scheme(tmp_path / ".local")
    install(scheme, "alpha", "1.0")
    mine = scheme.scripts / "my-own-tool"
    mine.write_text("#!/bin/sh\n")
    outside = tmp_path / "image-site-packages"
    outside.mkdir()
    (outside / "keep.py").write_text("")
    (scheme.site_packages / "linked").symlink_to(outside)
    plan = user_site.reset_plan(scheme)
    assert [p.name for p in plan.packages] == ["alpha"]
    assert plan.describe()["packages"] == [{"name": "alpha", "version": "1.0"}]
    assert set(plan.paths) == {
        scheme.site_packages / "alpha",
        scheme.site_packages / "alpha-1.0.dist-info",
        scheme.site_packages / "linked",
        scheme.scripts / "alpha-cli",
    }
    removed = user_site.apply_reset(plan, scheme)
    assert set(removed) == set(plan.paths)
    assert scheme.site_packages.is_dir() and not any(scheme.site_packages.iterdir())
    assert mine.is_file() and (outside / "keep.py").is_file()
    assert user_site.installed(scheme) == []
    assert user_site.reset_plan(scheme).paths == ()


def test_reset_refuses_paths_outside_the_user_base(tmp_path: Path) -> None:
    scheme = user_site.user_scheme(tmp_path / ".local")
    target = tmp_path / "elsewhere"
    target.write_text("")
    plan = user_site.ResetPlan(packages=(), paths=(target,))
    with pytest.raises(ValueError, match="outside"):
        user_site.apply_reset(plan, scheme)
    assert target.exists()


def test_the_server_start_creates_the_user_site_where_python_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(user_site.site, "ENABLE_USER_SITE", True)
    monkeypatch.setenv("PYTHONUSERBASE", str(tmp_path / "base"))
    scheme = user_site.prepare_user_site()
    assert scheme is not None and scheme.site_packages.is_dir()
    assert scheme.base == tmp_path / "base"
    (tmp_path / "a-file").write_text("")  # the home cannot hold the folder: no failure
    monkeypatch.setenv("PYTHONUSERBASE", str(tmp_path / "a-file" / "base"))
    assert user_site.prepare_user_site() is None
    monkeypatch.setattr(user_site.site, "ENABLE_USER_SITE", False)
    assert user_site.prepare_user_site() is None
