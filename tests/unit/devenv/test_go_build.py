"""The shared Go build machinery: reading the pin, the cache folder, staging the binaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv import go_build

pytestmark = pytest.mark.unit

HELLO = """package main

import "fmt"

func main() { fmt.Println("hello") }
"""


def test_required_version_reads_single_line_and_block_requires(tmp_path: Path) -> None:
    go_mod = tmp_path / "go.mod"
    go_mod.write_text("module x\n\nrequire example.com/a v1.2.3\n")
    assert go_build.required_version(go_mod, "example.com/a") == "v1.2.3"
    go_mod.write_text("module x\n\nrequire (\n\texample.com/ab v0.1.0\n\texample.com/a v2.0.0\n)\n")
    assert go_build.required_version(go_mod, "example.com/a") == "v2.0.0"
    with pytest.raises(go_build.BuildError, match=r"no example\.com/c requirement"):
        go_build.required_version(go_mod, "example.com/c")


def _hello_module(root: Path) -> go_build.GoBuild:
    (root / "hello").mkdir(parents=True)
    (root / "pin").mkdir()
    (root / "pin" / "go.mod").write_text("module example.com/pin\n\ngo 1.22\n")
    (root / "go.mod").write_text(
        "module example.com/hello\n\ngo 1.22\n\nrequire example.com/pin v1.0.0\n\n"
        "replace example.com/pin => ./pin\n"
    )
    (root / "hello" / "main.go").write_text(HELLO)
    return go_build.GoBuild(
        name="hello",
        title="a test program",
        module_dir=root,
        pinned_module="example.com/pin",
        packages=("./hello",),
        binaries=("hello",),
        digest_files=("go.mod", "hello/main.go"),
    )


def test_ensure_builds_once_into_a_folder_named_by_pin_and_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTEAMS_CACHE_DIR", str(tmp_path / "cache"))
    build = _hello_module(tmp_path / "mod")
    with open(tmp_path / "first.log", "w+") as log:
        target = build.ensure(log)
    assert target.parent == tmp_path / "cache" / "hello"
    assert target.name.startswith("v1.0.0-")
    assert (target / "hello").is_file()
    assert "building a test program v1.0.0" in (tmp_path / "first.log").read_text()
    assert [p.name for p in target.parent.iterdir()] == [target.name], "no staging folder left"
    with open(tmp_path / "again.log", "w+") as again:
        assert build.ensure(again) == target
    assert (tmp_path / "again.log").read_text() == "", "a cached build is reused"
    (build.module_dir / "hello" / "main.go").write_text(HELLO + "\n// changed\n")
    assert build.binaries_dir() != target


def test_failed_build_raises_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTEAMS_CACHE_DIR", str(tmp_path / "cache"))
    build = _hello_module(tmp_path / "mod")
    (build.module_dir / "hello" / "main.go").write_text("package main\n\nfunc main() { x }\n")
    with (
        open(tmp_path / "build.log", "w+") as log,
        pytest.raises(go_build.BuildError, match="go build failed"),
    ):
        build.ensure(log)
    assert list((tmp_path / "cache" / "hello").iterdir()) == []
