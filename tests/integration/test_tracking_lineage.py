"""Dataset lineage in a real kernel against a real MLflow server.

The kernel gets the catalog the spawner computes for a team with a mounted dataset (the mount is
a local folder under the user's home). The notebook reads the dataset with plain pandas in one
cell and trains a scikit-learn model in a later one; it mentions MLflow nowhere. The run must
carry the dataset as an input: catalog name, the catalog URI of the file read, its digest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_iris

from devenv.mlflow_server import MLflowServer
from hub_ext.policy import load_config, validate_user_options
from hub_ext.policy.notebook_pod import TrackingSettings, notebook_pod_parts
from server_ext.contract import catalog_from_env, experiment_name
from server_ext.kernel.lineage_digest import local_digest
from server_ext.server.datasets import snippet
from tests.integration.test_tracking_kernel import (
    CONFIG,
    run_notebook,
    stderr_of,
    team_env,
    write_notebook,
)

# the rig's MLflow takes hub tokens or its admin's password: this module's clients are the admin
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("mlflow_admin"),
]

DATASET_URI = "s3://lake/iris/"

FIT = """\
from sklearn.linear_model import LogisticRegression

features = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
for c in {cs}:
    model = LogisticRegression(C=c, max_iter=300).fit(df[features], df["target"])
print("fitted", len(df))
"""


def lineage_env(
    tracking_uri: str, user: str, home: Path, notebook: Path, data_format: str
) -> dict[str, str]:
    """A team server's environment whose team lists the dataset ``iris``, mounted at
    ``~/datasets/iris``."""
    raw = json.loads(json.dumps(CONFIG))
    raw["datasets"] = {
        "iris": {
            "uri": DATASET_URI,
            "format": data_format,
            "volume": {"hostPath": {"path": "/srv/datasets/iris"}},
        }
    }
    raw["teams"]["vision"]["datasets"] = ["iris"]
    config = load_config(raw)
    options = validate_user_options(
        config, {"team": "vision", "profile": "gpu1"}, groups=["vision-engineers"]
    )
    settings = TrackingSettings(
        tracking_uri=tracking_uri,
        notebook_root=str(home),
        datasets_mount_root=str(home / "datasets"),
    )
    parts = notebook_pod_parts(config, options, settings)
    env = team_env(tracking_uri, user, home, notebook)
    env["MLTEAMS_DATASETS"] = parts.environment["MLTEAMS_DATASETS"]
    return env


def iris_folder(home: Path) -> Path:
    folder = home / "datasets" / "iris"
    folder.mkdir(parents=True)
    return folder


def notebook_runs(url: str, user: str, notebook: str) -> list[Run]:
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name(experiment_name("vision", user, notebook))
    assert experiment is not None
    return client.search_runs([experiment.experiment_id])


def stdout_of(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")


def catalog_inputs(run: Run) -> list[Any]:
    """The run's dataset inputs other than autologging's in-memory training matrix."""
    return [i for i in run.inputs.dataset_inputs if i.dataset.source_type != "code"]


def test_a_dataset_read_before_training_is_an_input_of_the_run(
    mlflow_server: MLflowServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    data = iris_folder(home) / "iris.csv"
    load_iris(as_frame=True).frame.to_csv(data, index=False)
    notebook = home / "proj" / "train.ipynb"
    write_notebook(
        notebook,
        "import sys\nprint('pandas' in sys.modules)",
        "import pandas as pd\n\ndf = pd.read_csv('~/datasets/iris/iris.csv')",
        FIT.format(cs="[1.0]"),
    )
    assert "mlflow" not in notebook.read_text().lower()
    nb = run_notebook(notebook, lineage_env(mlflow_server.url, "v-lin", home, notebook, "csv"))
    assert stdout_of(nb.cells[0]).strip() == "False"
    assert "fitted 150" in stdout_of(nb.cells[2])
    assert "mlteams warning" not in stderr_of(nb)

    runs = notebook_runs(mlflow_server.url, "v-lin", "proj/train.ipynb")
    assert len(runs) == 1
    assert runs[0].data.tags["mlteams.team"] == "vision"
    assert runs[0].data.tags["mlteams.notebook_path"] == str(notebook)
    inputs = catalog_inputs(runs[0])
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.name == "iris"
    assert dataset.source_type == "s3"
    assert json.loads(dataset.source) == {"uri": "s3://lake/iris/iris.csv"}
    assert dataset.digest == hashlib.sha256(data.read_bytes()).hexdigest()[:32]
    tags = {t.key: t.value for t in inputs[0].tags}
    assert tags["mlflow.data.context"] == "training"
    assert tags["mlteams.dataset.digest_kind"] == "sha256"
    assert tags["mlteams.dataset.path"] == str(data)


def test_the_snippet_read_of_a_mounted_folder_reaches_every_later_run(
    mlflow_server: MLflowServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    folder = iris_folder(home)
    frame = load_iris(as_frame=True).frame
    frame.iloc[:75].to_parquet(folder / "part-0.parquet")
    frame.iloc[75:].to_parquet(folder / "part-1.parquet")
    notebook = home / "sweep.ipynb"
    env = lineage_env(mlflow_server.url, "v-lin2", home, notebook, "parquet")
    (entry,) = catalog_from_env(env)
    code = snippet(entry)
    assert code == f"import pandas as pd\n\ndf = pd.read_parquet({str(folder)!r})\n"
    write_notebook(notebook, code, FIT.format(cs="[0.5, 2.0]"))
    nb = run_notebook(notebook, env)
    assert "fitted 150" in stdout_of(nb.cells[1])
    assert "mlteams warning" not in stderr_of(nb)

    expected = local_digest(str(folder))
    assert expected is not None
    runs = notebook_runs(mlflow_server.url, "v-lin2", "sweep.ipynb")
    assert len(runs) == 2
    for run in runs:
        (given,) = catalog_inputs(run)
        assert given.dataset.name == "iris"
        assert json.loads(given.dataset.source) == {"uri": DATASET_URI}
        assert given.dataset.digest == expected.value
        assert {t.key: t.value for t in given.tags}["mlteams.dataset.digest_kind"] == "listing"
