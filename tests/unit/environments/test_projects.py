"""The pure part of project kernels: paths, slugs, states, kernelspecs and build plans."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from server_ext import contract
from server_ext.environments import projects as p

pytestmark = pytest.mark.unit

SHA = "a" * 64
OTHER = "b" * 64


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("projects/churn", "projects/churn"),
        ("projects/churn/", "projects/churn"),
        ("./projects//churn", "projects/churn"),
        ("  churn ", "churn"),
        ("Projects/Churn Model", "Projects/Churn Model"),
    ],
)
def test_project_paths_are_normalised(raw: str, expected: str) -> None:
    assert p.parse_project_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "relative to the notebook root"),
        (None, "relative to the notebook root"),
        (42, "relative to the notebook root"),
        ("/etc", "must be relative"),
        ("~/x", "must be relative"),
        ("C:/x", "must be relative"),
        ("../x", "inside the notebook root"),
        ("a/../../x", "inside the notebook root"),
        ("a/..", "inside the notebook root"),
        (".", "not a project"),
        ("a\x00b", "control characters"),
        ("a" * 2000, "too long"),
    ],
)
def test_bad_project_paths_say_why(raw: object, says: str) -> None:
    with pytest.raises(p.BadProjectPath, match=says):
        p.parse_project_path(raw)


@pytest.mark.parametrize(
    ("path", "slug"),
    [
        ("churn", "churn"),
        ("projects/churn", "projects--churn"),
        ("projects/churn-model", "projects--churn-model"),
        ("2024/q1", "2024--q1"),
    ],
)
def test_simple_paths_give_readable_slugs(path: str, slug: str) -> None:
    assert p.project_slug(path) == slug
    assert p.kernel_name(slug) == f"mlteams-{slug}"


@pytest.mark.parametrize(
    "path", ["Churn", "projects/churn model", "projects--churn", "a-/b", "é", "x" * 80, "_"]
)
def test_other_paths_get_a_hash_and_stay_kernel_names(path: str) -> None:
    slug = p.project_slug(path)
    assert len(slug) <= p.MAX_SLUG
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in slug)
    assert slug != p.project_slug(path + "x")


def test_slugs_do_not_collide() -> None:
    paths = [
        "projects/churn",
        "projects--churn",
        "projects-churn",
        "Projects/churn",
        "projects/Churn",
    ]
    assert len({p.project_slug(x) for x in paths}) == len(paths)


def record(sha: str = SHA, build: str = "build-1", failure: str = "") -> p.Record:
    failed = p.Failure(failure, "t", "pip failed") if failure else None
    return p.Record(path="x", sha256=sha, build=build, failure=failed)


@pytest.mark.parametrize(
    ("rec", "present", "state"),
    [
        (None, False, p.NOT_BUILT),
        (record(build=""), False, p.NOT_BUILT),
        (record(), False, p.NOT_BUILT),
        (record(), True, p.READY),
        (record(sha=OTHER), True, p.STALE),
        (record(failure=SHA), True, p.FAILED),
        (record(build="", failure=SHA), False, p.FAILED),
        (record(sha=OTHER, failure=OTHER), True, p.STALE),
        (record(failure=OTHER), True, p.READY),
    ],
)
def test_states(rec: p.Record | None, present: bool, state: str) -> None:
    assert p.project_state(SHA, rec, present) == state


@pytest.mark.parametrize(
    ("rec", "present", "kernelspec", "build"),
    [
        (None, False, False, True),
        (record(), True, True, False),
        (record(), True, False, True),
        (record(), False, True, True),
        (record(sha=OTHER), True, True, True),
        (record(failure=SHA), True, True, False),
    ],
)
def test_a_build_with_the_same_file_does_nothing(
    rec: p.Record | None, present: bool, kernelspec: bool, build: bool
) -> None:
    assert p.needs_build(SHA, rec, present, kernelspec) is build


def test_records_round_trip_and_garbage_is_an_empty_record() -> None:
    rec = p.Record(
        "x",
        "requirements.txt",
        SHA,
        "build-1",
        "/e/bin/python",
        "now",
        p.Failure(OTHER, "then", "pip failed", "tail"),
    )
    assert p.parse_record(rec.to_json(), "x") == rec
    for text in ("", "not json", "[1]", "null"):
        assert p.parse_record(text, "x") == p.Record("x")


def test_kernelspec_runs_the_environment_and_names_the_kernel() -> None:
    spec = p.kernelspec("/home/jovyan/.mlteams/envs/churn/build-1/bin/python", "churn", SHA)
    assert spec["argv"] == [
        "/home/jovyan/.mlteams/envs/churn/build-1/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec["display_name"] == "Python (project churn)"
    assert spec["language"] == "python"
    assert spec["env"] == {contract.KERNEL_NAME: "mlteams-churn"}
    assert spec["metadata"]["mlteams"] == {"project": "churn", "sha256": SHA}


def inputs(
    spec_file: str, conda: str = "", ipython_dir: str = "/opt/conda/etc/ipython"
) -> p.BuildInputs:
    return p.BuildInputs(
        spec_file=spec_file,
        spec_path=f"/home/jovyan/churn/{spec_file}",
        build_dir="/e/b",
        python="/opt/conda/bin/python",
        site_dirs=("/opt/conda/lib/python3.11/site-packages",),
        ipython_dir=ipython_dir,
        python_version="3.11",
        conda=conda,
    )


def test_requirements_plan_is_a_venv_over_the_image() -> None:
    steps = p.build_plan(inputs(p.REQUIREMENTS))
    assert [s.action for s in steps] == ["run", "write", "link", "run"]
    assert steps[0].argv == ("/opt/conda/bin/python", "-m", "venv", "--without-pip", "/e/b")
    assert steps[1].path == "/e/b/lib/python3.11/site-packages/mlteams-image.pth"
    assert "site.addsitedir" in steps[1].text
    assert "'/opt/conda/lib/python3.11/site-packages'" in steps[1].text
    assert (steps[2].path, steps[2].target) == ("/e/b/etc/ipython", "/opt/conda/etc/ipython")
    assert steps[3].argv[:3] == ("/e/b/bin/python", "-m", "pip")
    assert steps[3].argv[-2:] == ("-r", "/home/jovyan/churn/requirements.txt")
    assert all(s.failure for s in steps if s.action == "run")
    without_hook = p.build_plan(inputs(p.REQUIREMENTS, ipython_dir=""))
    assert [s.action for s in without_hook] == ["run", "write", "run"]


def test_the_image_link_adds_the_image_site_folders_with_their_pth_files(
    tmp_path: Path,
) -> None:
    image, env = tmp_path / "it's image", tmp_path / "env"
    nested = tmp_path / "nested"
    for folder in (image, env, nested):
        folder.mkdir()
    (image / "nested.pth").write_text(f"{nested}\n")
    (env / "mlteams-image.pth").write_text(p.image_link_pth((str(image),)))
    code = f"import site, sys; site.addsitedir({str(env)!r}); print(repr(sys.path))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stderr == ""
    path = ast.literal_eval(done.stdout)
    assert path.index(str(env)) < path.index(str(image)) < path.index(str(nested))


def test_environment_yml_plan_needs_conda_and_checks_ipykernel() -> None:
    steps = p.build_plan(inputs(p.ENVIRONMENT_YML, conda="/opt/conda/bin/mamba"))
    assert steps[0].argv == (
        "/opt/conda/bin/mamba",
        "env",
        "create",
        "--quiet",
        "--prefix",
        "/e/b",
        "--file",
        "/home/jovyan/churn/environment.yml",
    )
    assert steps[1].argv == ("/e/b/bin/python", "-c", "import ipykernel")
    assert "add ipykernel" in steps[1].failure
    with pytest.raises(p.CannotBuild, match=r"neither conda nor mamba.*requirements\.txt"):
        p.build_plan(inputs(p.ENVIRONMENT_YML))


def test_builds_never_install_to_the_user_site() -> None:
    env = p.build_environ({"PIP_USER": "1", "PYTHONPATH": "/x", "VIRTUAL_ENV": "/v", "HOME": "/h"})
    assert env == {"PIP_USER": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HOME": "/h"}


def test_build_names_and_log_tail() -> None:
    assert p.build_name(SHA, "20260101T000000Z") == "build-aaaaaaaaaaaa-20260101T000000Z"
    assert p.log_tail("\n".join(str(i) for i in range(100)) + "\n", 3) == "97\n98\n99"
