"""A notebook in a real kernel with the shipped kernel hook against a real MLflow server.

The kernel gets the environment the spawner computes for a team server; the notebook trains a
scikit-learn model and mentions MLflow nowhere.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from devenv.mlflow_server import MLflowServer
from devenv.procs import free_port
from hub_ext.policy import load_config, validate_user_options
from hub_ext.policy.notebook_pod import TrackingSettings, notebook_pod_parts
from hub_ext.policy.pod_settings import pod_settings
from server_ext.contract import experiment_name

# the rig's MLflow takes hub tokens or its admin's password: this module's clients are the admin
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("mlflow_admin"),
]

TRAIN = """\
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=300).fit(X, y)
print("score", round(model.score(X, y), 3))
"""

CONFIG = {
    "teams": {
        "vision": {
            "groups": ["vision-engineers"],
            "quota": {"gpus": 4, "gpus_per_user": 2},
            "profiles": ["gpu1"],
        }
    },
    "profiles": {
        "gpu1": {
            "image": "mlteams/pytorch:dev",
            "gpus": 1,
            "node_selector": {"nvidia.com/gpu.product": "H100"},
        }
    },
}


def team_env(tracking_uri: str, user: str, home: Path, notebook: Path) -> dict[str, str]:
    """The variables the spawner would put in this user's pod (no secrets in this config)."""
    config = load_config(CONFIG)
    options = validate_user_options(
        config, {"team": "vision", "profile": "gpu1"}, groups=["vision-engineers"]
    )
    env = dict(pod_settings(config, options, user=user)["environment"])
    settings = TrackingSettings(tracking_uri=tracking_uri, notebook_root=str(home))
    env.update(notebook_pod_parts(config, options, settings).environment)
    assert all(isinstance(v, str) for v in env.values())
    env.update({"JUPYTERHUB_USER": user, "JPY_SESSION_NAME": str(notebook), "HOME": str(home)})
    env["MLTEAMS_GPUS"] = "0"
    # what this test process chose with MLflow's fluent API is not the pod's
    chosen = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")
    inherited = {k: v for k, v in os.environ.items() if k not in chosen}
    return {**inherited, **env}


def write_notebook(path: Path, *sources: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def run_notebook(path: Path, env: dict[str, str], timeout: int = 120) -> Any:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": path.parent}}
    )
    client.execute(env=env, cwd=str(path.parent))
    return nb


def stderr_of(nb: Any) -> str:
    return "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.get("name") == "stderr"
    )


def git_repo(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    run = {"cwd": folder, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q"], **run)
    (folder / "README").write_text("x")
    subprocess.run(["git", "add", "README"], **run)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "x"], **run
    )
    return subprocess.run(["git", "rev-parse", "HEAD"], text=True, **run).stdout.strip()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_notebook_without_mlflow_code_is_tracked_in_its_team_experiment(
    mlflow_server: MLflowServer, home: Path
) -> None:
    commit = git_repo(home / "proj")
    notebook = home / "proj" / "train.ipynb"
    write_notebook(notebook, TRAIN)
    assert "mlflow" not in notebook.read_text().lower()
    nb = run_notebook(notebook, team_env(mlflow_server.url, "v-alice", home, notebook))
    assert "score" in "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "mlteams warning" not in stderr_of(nb)

    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(
        experiment_name("vision", "v-alice", "proj/train.ipynb")
    )
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    tags = runs[0].data.tags
    assert tags["mlteams.team"] == "vision"
    assert tags["mlteams.user"] == "v-alice"
    assert tags["mlteams.profile"] == "gpu1"
    assert tags["mlteams.image"] == "mlteams/pytorch:dev"
    assert tags["mlteams.gpu_type"] == "H100"
    assert tags["mlteams.notebook_path"] == str(notebook)
    assert tags["mlflow.source.git.commit"] == commit
    assert runs[0].data.params.get("max_iter") == "300"
    assert_environment(client, runs[0].info.run_id, commit)


def assert_environment(client: MlflowClient, run_id: str, commit: str | None) -> dict[str, Any]:
    """The run carries its environment artifacts and tags, logged once."""
    listed = [a.path for a in client.list_artifacts(run_id, "environment")]
    assert sorted(listed) == ["environment/environment.json", "environment/requirements.txt"]
    folder = Path(client.download_artifacts(run_id, "environment"))
    requirements = (folder / "requirements.txt").read_text().splitlines()
    names = [line.split("==")[0] for line in requirements]
    assert names == sorted(set(names))
    assert any(line.startswith("scikit-learn==") for line in requirements)
    assert any(line.startswith("mlflow==3.") for line in requirements)
    doc = json.loads((folder / "environment.json").read_text())
    assert doc["python"]["version"] == platform.python_version()
    assert doc["image"]["reference"] == "mlteams/pytorch:dev"
    assert doc["packages"]["count"] == len(requirements)
    tags = client.get_run(run_id).data.tags
    assert tags["mlteams.image"] == "mlteams/pytorch:dev"
    assert tags["mlteams.environment"] == "environment"
    if commit:
        assert doc["git"]["commit"] == commit and doc["git"]["dirty"] is False
        assert tags["mlteams.git_commit"] == commit
        assert tags["mlflow.source.git.branch"] == doc["git"]["branch"]
    else:
        assert "git" not in doc and "mlteams.git_commit" not in tags
    return dict(doc)


def test_every_run_of_the_kernel_gets_its_environment_once(
    mlflow_server: MLflowServer, home: Path
) -> None:
    notebook = home / "runs.ipynb"
    write_notebook(
        notebook,
        "import mlflow\nwith mlflow.start_run() as outer:\n"
        "    with mlflow.start_run(nested=True) as inner:\n        mlflow.log_param('p', 1)",
        "from mlflow.tracking import MlflowClient\n"
        "c = MlflowClient()\nother = c.create_run(outer.info.experiment_id)\n"
        "c.set_terminated(other.info.run_id)",
        TRAIN,
    )
    nb = run_notebook(notebook, team_env(mlflow_server.url, "v-gina", home, notebook))
    assert "mlteams warning" not in stderr_of(nb)
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(experiment_name("vision", "v-gina", "runs.ipynb"))
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4  # outer, nested, the client's and the autologged fit
    for run in runs:
        doc = assert_environment(client, run.info.run_id, None)
        assert doc["notebook_path"] == str(notebook)
        assert (doc["team"], doc["user"]) == ("vision", "v-gina")


def test_same_notebook_name_for_two_users_lands_in_two_experiments(
    mlflow_server: MLflowServer, tmp_path: Path
) -> None:
    ids = set()
    for user in ("v-bob", "v-dora"):
        home = tmp_path / user
        notebook = home / "train.ipynb"
        write_notebook(notebook, TRAIN)
        run_notebook(notebook, team_env(mlflow_server.url, user, home, notebook))
        exp = MlflowClient(mlflow_server.url).get_experiment_by_name(
            experiment_name("vision", user, "train.ipynb")
        )
        assert exp is not None
        assert len(MlflowClient(mlflow_server.url).search_runs([exp.experiment_id])) == 1
        ids.add(exp.experiment_id)
    assert len(ids) == 2


def test_run_left_open_is_reported_and_rerunning_its_cell_ends_it(
    mlflow_server: MLflowServer, home: Path
) -> None:
    notebook = home / "open.ipynb"
    write_notebook(
        notebook,
        "import sklearn\nimport mlflow\nrun = mlflow.start_run()\nfirst = run.info.run_id",
        "mlflow.log_metric('m', 1.0)",
        "%mlteams_end_run",
        "print(mlflow.get_run(first).info.status)",
    )
    nb = run_notebook(notebook, team_env(mlflow_server.url, "v-erin", home, notebook))
    err = stderr_of(nb)
    assert err.count("is still open after this cell") == 1
    out = "".join(
        o.get("text", "") for c in nb.cells for o in c.outputs if o.get("name") == "stdout"
    )
    assert "ended MLflow run" in out and "FINISHED" in out


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["stopped", "silent"])
def test_unreachable_mlflow_gives_one_warning_and_the_notebook_completes(
    kind: str, silent_port: int, home: Path
) -> None:
    port = free_port() if kind == "stopped" else silent_port
    notebook = home / "train.ipynb"
    write_notebook(notebook, TRAIN, TRAIN, "print('done')")
    nb = run_notebook(notebook, team_env(f"http://127.0.0.1:{port}", "v-frank", home, notebook), 90)
    err = stderr_of(nb)
    assert err.count("mlteams warning") == 1, err
    assert "unreachable" in err
    assert "done" in "".join(o.get("text", "") for o in nb.cells[2].outputs)


def test_kernel_start_does_not_import_mlflow(mlflow_server: MLflowServer, home: Path) -> None:
    notebook = home / "light.ipynb"
    write_notebook(
        notebook,
        "import sys\nprint('mlflow' in sys.modules, 'sklearn' in sys.modules)",
        "import sklearn\nimport sys\nprint('mlflow' in sys.modules)",
    )
    nb = run_notebook(notebook, team_env(mlflow_server.url, "v-gus", home, notebook))
    assert nb.cells[0].outputs[0]["text"].strip() == "False False"
    assert nb.cells[1].outputs[0]["text"].strip() == "True"
