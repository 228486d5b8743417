"""The reproduce answer and run links from recorded runs (pure): full, partial, tags only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server_ext.server.api import run_link
from server_ext.server.reproduce import (
    DatasetInput,
    RunRecord,
    dataset_view,
    parse_environment,
    reproduce_view,
    valid_run_id,
)

pytestmark = pytest.mark.unit

SHA = "sha256:" + "b" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"
ENVIRONMENT = {
    "schema": 1,
    "captured_at": "2026-01-01T00:00:00+00:00",
    "python": {"version": "3.11.9", "implementation": "CPython", "prefix": "/opt/conda"},
    "platform": {"system": "Linux", "machine": "x86_64", "platform": "Linux-6"},
    "kernel": {"name": "proj-a"},
    "image": {"reference": f"r.io/img:v1@{SHA}", "digest": SHA, "pinned": f"r.io/img@{SHA}"},
    "git": {
        "commit": COMMIT,
        "branch": "main",
        "dirty": True,
        "changed_files": 2,
        "remote_url": "https://git.example/team/proj.git",
        "root": "/home/jovyan/proj",
        "notebook_path": "nb/train.ipynb",
    },
    "packages": {"count": 2, "installed_in_home": ["rich==13.0"]},
    "notebook_path": "/home/jovyan/proj/nb/train.ipynb",
    "team": "vision",
    "user": "alice",
}
DATASET = DatasetInput(
    name="iris",
    digest="abc123",
    source_type="s3",
    source=json.dumps({"uri": "s3://lake/iris/x.csv"}),
    tags={"mlflow.data.context": "training", "mlteams.dataset.reader": "pandas.read_csv"},
)


def record(**kw: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": "abc",
        "experiment_id": "3",
        "run_name": "r",
        "status": "FINISHED",
        "params": {"C": "1.0"},
        "tags": {"mlteams.team": "vision", "mlteams.user": "alice"},
        "datasets": [DATASET],
        "requirements": "numpy==2.1.0\nrich==13.0\n",
        "environment": ENVIRONMENT,
    }
    values.update(kw)
    return RunRecord(**values)


def test_a_fully_recorded_run() -> None:
    view = reproduce_view(record(), "https://mlflow.example/#/experiments/3/runs/abc")
    assert view["missing"] == []
    assert view["link"] == "https://mlflow.example/#/experiments/3/runs/abc"
    assert view["image"] == {"reference": f"r.io/img:v1@{SHA}", "digest": SHA,
                             "pinned": f"r.io/img@{SHA}"}  # fmt: skip
    assert view["python"]["version"] == "3.11.9"
    assert view["kernel"] == {"name": "proj-a"}
    assert view["packages"] == {
        "artifact": "environment/requirements.txt",
        "count": 2,
        "requirements": ["numpy==2.1.0", "rich==13.0"],
        "installed_in_home": ["rich==13.0"],
    }
    assert view["git"]["commit"] == COMMIT and view["git"]["notebook_path"] == "nb/train.ipynb"
    assert view["params"] == {"C": "1.0"}
    assert view["datasets"] == [
        {
            "name": "iris",
            "digest": "abc123",
            "source_type": "s3",
            "source_uri": "s3://lake/iris/x.csv",
            "source": None,
            "context": "training",
            "tags": {"mlteams.dataset.reader": "pandas.read_csv"},
        }
    ]
    steps = {s["step"]: s["command"] for s in view["instructions"]}
    commands = "\n".join(steps.values())
    assert f"image: r.io/img@{SHA}" in commands
    assert f"git clone https://git.example/team/proj.git && cd proj && git checkout {COMMIT}" in (
        commands
    )
    assert any("2 uncommitted changes" in s for s in steps)
    assert "pip install --user rich==13.0" in commands
    assert (
        "mlflow artifacts download --run-id abc --artifact-path environment/requirements.txt "
        "--dst-path . && pip install -r requirements.txt"
    ) in commands
    assert any("Python 3.11.9" in s for s in steps)
    assert "nb/train.ipynb" in commands


def test_a_run_recorded_before_environments_has_its_tags_and_a_missing_list() -> None:
    old = record(
        requirements=None,
        environment=None,
        datasets=[],
        tags={
            "mlteams.image": "r.io/img:v1",
            "mlflow.source.git.commit": COMMIT,
            "mlteams.notebook_path": "/home/jovyan/a.ipynb",
        },
    )
    view = reproduce_view(old, None)
    parts = [m["part"] for m in view["missing"]]
    assert parts == ["image_digest", "environment", "packages"]
    assert all(m["reason"] for m in view["missing"])
    assert "before runs recorded their environment" in view["missing"][1]["reason"]
    assert view["image"] == {"reference": "r.io/img:v1", "digest": None, "pinned": None}
    assert view["git"]["commit"] == COMMIT and view["git"]["dirty"] is None
    assert view["packages"] is None and view["python"] is None
    assert view["notebook_path"] == "/home/jovyan/a.ipynb"
    commands = "\n".join(s["command"] for s in view["instructions"])
    assert "image: r.io/img:v1" in commands and f"git checkout {COMMIT}" in commands
    assert "pip install" not in commands and "git clone" not in commands


def test_a_run_with_nothing_recorded() -> None:
    view = reproduce_view(record(requirements=None, environment=None, tags={}, datasets=[]), None)
    assert [m["part"] for m in view["missing"]] == [
        "image",
        "environment",
        "packages",
        "git",
        "notebook_path",
    ]
    assert view["instructions"] == []
    assert view["params"] == {"C": "1.0"}


def test_an_image_pinned_in_the_tags_and_a_notebook_outside_git() -> None:
    doc = {k: v for k, v in ENVIRONMENT.items() if k not in ("git", "image")}
    view = reproduce_view(record(environment=doc, tags={"mlteams.image": f"img@{SHA}"}), None)
    assert view["image"] == {"reference": f"img@{SHA}", "digest": SHA, "pinned": f"img@{SHA}"}
    assert [m["part"] for m in view["missing"]] == ["git"]
    assert "not in a git repository" in view["missing"][0]["reason"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, None), ("", None), ("not json", None), ("[1]", None), ('{"a": 1}', {"a": 1})],
)
def test_environment_documents(text: str | None, expected: Any) -> None:
    assert parse_environment(text) == expected


def test_a_dataset_source_without_uri_is_kept_as_is() -> None:
    view = dataset_view(DatasetInput("d", "x", "code", '{"tags": {}}', {}))
    assert view["source_uri"] is None and view["source"] == '{"tags": {}}'
    assert view["context"] is None


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://mlflow.example.org", "https://mlflow.example.org/#/experiments/7/runs/r1"),
        ("https://h/mlflow/", "https://h/mlflow/#/experiments/7/runs/r1"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/#/experiments/7/runs/r1"),
        ("", None),
        ("file:///tmp/mlruns", None),
        ("databricks", None),
    ],
)
def test_run_links(base: str, expected: str | None) -> None:
    assert run_link(base, "7", "r1") == expected


@pytest.mark.parametrize(
    ("run_id", "ok"),
    [
        ("0f1e2d3c4b5a69788796a5b4c3d2e1f0", True),
        ("run-1_b", True),
        ("", False),
        ("..", False),
        ("a b", False),
        ("a" * 65, False),
        ("%2e%2e", False),
    ],
)
def test_run_ids(run_id: str, ok: bool) -> None:
    assert valid_run_id(run_id) is ok
