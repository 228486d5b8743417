"""Pure tracking core: experiment names, run-context tags, the spawner/server env contract,
dataset catalog per team and code snippets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub_ext.policy import load_config, validate_user_options
from hub_ext.policy.dataset_mounts import (
    dataset_pod_parts,
    team_datasets,
    volume_name,
)
from hub_ext.policy.notebook_pod import TrackingSettings, merge_volumes, notebook_pod_parts
from hub_ext.settings import MLTeamsTracking
from server_ext import contract as env
from server_ext.contract import CatalogError, experiment_name, parse_catalog, relative_notebook_path
from server_ext.kernel.run_context import context_from_env, git_commit
from server_ext.server.datasets import (
    MISSING,
    MOUNTED,
    NOT_MOUNTED,
    describe,
    mount_status,
    snippet,
)
from tests.unit.policy.sample import sample_raw

pytestmark = pytest.mark.unit

SECRET_VALUE = "s3cr3t-value-never-shown"


def config_with_datasets() -> Any:
    raw = sample_raw()
    raw["datasets"]["coco"] = {
        "uri": "s3://lake/coco/",
        "format": "csv",
        "volume": {"persistentVolumeClaim": {"claimName": "coco"}},
        "credentials_secret": "lake-readonly",
    }
    raw["datasets"]["nlp-corpus"] = {
        "uri": "s3://nlp/corpus/",
        "credentials_secret": "nlp-readonly",
    }
    raw["teams"]["vision"]["datasets"] = ["imagenet", "coco"]
    raw["teams"]["nlp"]["datasets"] = ["nlp-corpus"]
    return load_config(raw)


# -- experiment names ---------------------------------------------------------------------------


def test_two_users_same_notebook_get_different_experiments() -> None:
    assert experiment_name("vision", "alice", "train.ipynb") != experiment_name(
        "vision", "bob", "train.ipynb"
    )


def test_two_folders_same_notebook_get_different_experiments() -> None:
    a = experiment_name("vision", "alice", "proj-a/train.ipynb")
    b = experiment_name("vision", "alice", "proj-b/train.ipynb")
    assert a != b
    assert a == "teams/vision/alice/proj-a/train.ipynb"


def test_names_cannot_be_confused_by_slashes_in_team_or_user() -> None:
    assert experiment_name("a/b", "c", "x.ipynb") != experiment_name("a", "b/c", "x.ipynb")
    assert experiment_name("vision", "a%2Fb", "x") != experiment_name("vision", "a/b", "x")


def test_paths_are_normalised_and_may_not_escape() -> None:
    assert experiment_name("t", "u", "./a//b/../c.ipynb") == "teams/t/u/a/c.ipynb"
    assert experiment_name("t", "u", "") == "teams/t/u/(no notebook)"
    with pytest.raises(ValueError, match="inside the server root"):
        experiment_name("t", "u", "../other/x.ipynb")


def test_relative_path_from_full_path_and_root() -> None:
    assert relative_notebook_path("/home/jovyan/p/train.ipynb", "/home/jovyan") == "p/train.ipynb"
    assert relative_notebook_path("/home/jovyan/p/train.ipynb", "/home/jovyan/") == "p/train.ipynb"
    assert relative_notebook_path("/elsewhere/t.ipynb", "/home/jovyan") == "elsewhere/t.ipynb"
    assert relative_notebook_path("/home/jovyanx/t.ipynb", "/home/jovyan") == "home/jovyanx/t.ipynb"


# -- run context --------------------------------------------------------------------------------

ENV = {
    env.TEAM: "vision",
    env.USER: "alice",
    env.PROFILE: "pytorch-1gpu",
    env.IMAGE: "mlteams/pytorch:1",
    env.GPUS: "1",
    env.GPU_TYPE: "A100",
    env.SESSION_NAME: "/home/jovyan/proj/train.ipynb",
    env.NOTEBOOK_ROOT: "/home/jovyan",
}


def test_run_context_tags_carry_team_user_profile_image_gpu_notebook_and_commit() -> None:
    ctx = context_from_env(ENV, git_commit="a" * 40)
    assert ctx is not None
    tags = ctx.tags()
    assert tags["mlteams.team"] == "vision"
    assert tags["mlteams.user"] == tags["mlflow.user"] == "alice"
    assert tags["mlteams.profile"] == "pytorch-1gpu"
    assert tags["mlteams.image"] == "mlteams/pytorch:1"
    assert tags["mlteams.gpu_type"] == "A100"
    assert tags["mlteams.gpus"] == "1"
    assert tags["mlteams.notebook_path"] == "/home/jovyan/proj/train.ipynb"
    assert tags["mlflow.source.name"] == "/home/jovyan/proj/train.ipynb"
    assert tags["mlflow.source.git.commit"] == "a" * 40
    assert ctx.experiment_name == "teams/vision/alice/proj/train.ipynb"


def test_no_context_outside_a_team_server_and_no_empty_tags() -> None:
    assert context_from_env({env.USER: "alice"}) is None
    ctx = context_from_env({env.TEAM: "t", env.USER: "u"})
    assert ctx is not None
    tags = ctx.tags()
    assert "mlteams.gpu_type" not in tags and "mlflow.source.git.commit" not in tags
    assert all(v for v in tags.values())


def test_git_commit_from_loose_ref_packed_ref_detached_and_no_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / "sub").mkdir()
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text("b" * 40 + "\n")
    assert git_commit(repo / "sub" / "train.ipynb") == "b" * 40
    (repo / ".git" / "refs" / "heads" / "main").unlink()
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs\n{'c' * 40} refs/heads/main\n")
    assert git_commit(repo / "sub" / "train.ipynb") == "c" * 40
    (repo / ".git" / "HEAD").write_text("d" * 40)
    assert git_commit(repo / "train.ipynb") == "d" * 40
    assert git_commit(tmp_path / "nowhere" / "t.ipynb") is None


# -- the env contract -------------------------------------------------------------------------


def options_for(config: Any, team: str, profile: str) -> Any:
    groups = {"vision": ["vision-engineers"], "nlp": ["/ml/nlp"]}[team]
    return validate_user_options(config, {"team": team, "profile": profile}, groups=groups)


def test_tracking_uri_comes_from_hub_config_and_credentials_only_as_secret_refs() -> None:
    config = config_with_datasets()
    settings = TrackingSettings(
        tracking_uri="http://mlflow.mlflow.svc:5000", credentials_secret="mlflow-token"
    )
    parts = notebook_pod_parts(config, options_for(config, "vision", "pytorch-1gpu"), settings)
    e = parts.environment
    assert e[env.TRACKING_URI] == "http://mlflow.mlflow.svc:5000"
    assert e[env.TRACKING_TOKEN] == {
        "valueFrom": {"secretKeyRef": {"name": "mlflow-token", "key": "token"}}
    }
    assert e[env.HTTP_TIMEOUT] == "10" and e[env.HTTP_MAX_RETRIES] == "1"
    assert e[env.GPU_TYPE] == "A100"
    for name in env.SECRET_ENV_NAMES:
        assert name not in e or isinstance(e[name], dict)
    basic = notebook_pod_parts(
        config,
        options_for(config, "vision", "cpu"),
        TrackingSettings(tracking_uri="http://m", credentials_secret="s", credentials_kind="basic"),
    ).environment
    assert basic[env.TRACKING_USERNAME]["valueFrom"]["secretKeyRef"]["key"] == "username"
    assert env.TRACKING_TOKEN not in basic
    assert env.TRACKING_PUBLIC_URL not in e


def test_public_url_reaches_the_server_for_run_links() -> None:
    config = config_with_datasets()
    settings = MLTeamsTracking(
        tracking_uri="http://mlflow.mlflow.svc:5000", public_url="https://mlflow.example.com"
    ).settings()
    parts = notebook_pod_parts(config, options_for(config, "vision", "cpu"), settings)
    assert parts.environment[env.TRACKING_PUBLIC_URL] == "https://mlflow.example.com"


def test_no_tracking_uri_means_no_tracking_variables_and_disabled_means_nothing() -> None:
    config = config_with_datasets()
    opts = options_for(config, "vision", "cpu")
    e = notebook_pod_parts(config, opts, TrackingSettings()).environment
    assert env.TRACKING_URI not in e and env.TRACKING_ENABLED not in e
    off = notebook_pod_parts(config, opts, TrackingSettings(enabled=False, tracking_uri="http://m"))
    assert off.environment == {} and off.volumes == [] and off.volume_mounts == []


def test_traitlets_have_help_and_become_settings() -> None:
    traits = MLTeamsTracking.class_traits(config=True)
    assert traits and all(t.help for t in traits.values())
    settings = MLTeamsTracking(tracking_uri="http://m", object_store_endpoint="").settings()
    assert settings.tracking_uri == "http://m" and settings.object_store_endpoint is None


# -- datasets -----------------------------------------------------------------------------------


def test_team_sees_only_its_datasets() -> None:
    config = config_with_datasets()
    assert [d.name for d in team_datasets(config, "vision")] == ["imagenet", "coco"]
    assert [d.name for d in team_datasets(config, "nlp")] == ["nlp-corpus"]


def test_dataset_volumes_are_read_only_at_home_datasets_and_secrets_are_references() -> None:
    config = config_with_datasets()
    parts = dataset_pod_parts(
        config,
        "vision",
        mount_root="/home/jovyan/datasets/",
        endpoint_url="http://minio:9000",
        key_id_key="AWS_ACCESS_KEY_ID",
        secret_key_key="AWS_SECRET_ACCESS_KEY",
    )
    assert parts.volumes == [
        {
            "name": "mlteams-ds-coco",
            "persistentVolumeClaim": {"claimName": "coco", "readOnly": True},
        }
    ]
    assert parts.volume_mounts == [
        {"name": "mlteams-ds-coco", "mountPath": "/home/jovyan/datasets/coco", "readOnly": True}
    ]
    refs = [v["valueFrom"]["secretKeyRef"] for v in parts.environment.values()]
    assert {r["name"] for r in refs} == {"lake-readonly"}
    assert {r["key"] for r in refs} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    nlp = dataset_pod_parts(
        config, "nlp", mount_root="/d", endpoint_url=None, key_id_key="k", secret_key_key="s"
    )
    assert "lake-readonly" not in json.dumps(nlp.environment)


def test_volume_names_are_dns_labels_and_unique() -> None:
    assert volume_name("coco") == "mlteams-ds-coco"
    odd = volume_name("Big_Set.v2")
    assert odd != volume_name("big-set-v2") and len(odd) <= 63
    assert len(volume_name("x" * 200)) <= 63


def test_catalog_env_round_trip_and_no_secret_values() -> None:
    config = config_with_datasets()
    settings = TrackingSettings(tracking_uri="http://m", object_store_endpoint="http://minio:9000")
    parts = notebook_pod_parts(config, options_for(config, "vision", "cpu"), settings)
    entries = parse_catalog(parts.environment[env.DATASETS])
    assert [e.name for e in entries] == ["imagenet", "coco"]
    coco = entries[1]
    assert coco.mount_path == "/home/jovyan/datasets/coco"
    assert coco.endpoint_url == "http://minio:9000"
    assert coco.credentials is not None
    assert coco.credentials.key_env in parts.environment


def test_merge_volumes_replaces_dataset_volumes_of_an_earlier_spawn() -> None:
    home = {"name": "home", "persistentVolumeClaim": {"claimName": "h"}}
    old = {"name": "mlteams-ds-old", "emptyDir": {}}
    new = {"name": "mlteams-ds-new", "emptyDir": {}}
    assert merge_volumes([home, old], [new]) == [home, new]


def test_catalog_parse_errors_are_clear() -> None:
    assert parse_catalog(None) == []
    with pytest.raises(CatalogError, match="JSON"):
        parse_catalog("{")
    with pytest.raises(CatalogError, match="list"):
        parse_catalog("{}")
    with pytest.raises(CatalogError, match="name and a uri"):
        parse_catalog('[{"name": "x"}]')


def test_snippets_read_credentials_from_env_and_contain_no_values() -> None:
    entries = parse_catalog(
        json.dumps(
            [
                {
                    "name": "imagenet",
                    "uri": "s3://lake/imagenet/",
                    "format": "parquet",
                    "endpoint_url": "http://minio:9000",
                    "credentials": {"key_env": "K_ENV", "secret_env": "S_ENV"},
                },
                {"name": "raw", "uri": "s3://lake/raw/"},
                {"name": "coco", "uri": "s3://lake/coco/", "format": "csv", "mount_path": "/d/c"},
            ]
        )
    )
    code = snippet(entries[0])
    assert "pd.read_parquet('s3://lake/imagenet/', storage_options=storage_options)" in code
    assert "os.environ['K_ENV']" in code and "os.environ['S_ENV']" in code
    assert "'endpoint_url': 'http://minio:9000'" in code.replace('"', "'")
    compile(code, "<snippet>", "exec")
    raw = snippet(entries[1])
    assert "fsspec.core.url_to_fs('s3://lake/raw/'" in raw
    compile(raw, "<snippet>", "exec")
    assert "pd.read_csv(f) for f in files" in snippet(entries[2])
    assert SECRET_VALUE not in code + raw


def test_mount_status_and_api_view() -> None:
    mounted, remote = parse_catalog(
        '[{"name": "a", "uri": "s3://x/", "mount_path": "/d/a"}, {"name": "b", "uri": "s3://y/"}]'
    )
    assert mount_status(mounted, lambda p: True) == MOUNTED
    assert mount_status(mounted, lambda p: False) == MISSING
    assert mount_status(remote, lambda p: True) == NOT_MOUNTED
    view = describe(mounted, MOUNTED)
    assert view["read_only"] is True and view["mount_status"] == "mounted"


@pytest.mark.parametrize(
    ("fmt", "layout", "rows"),
    [
        ("csv", {"a.csv": "x,y\n1,2\n", "sub/b.csv": "x,y\n3,4\n5,6\n"}, 3),
        ("jsonl", {"part-0.jsonl": '{"x": 1}\n{"x": 2}\n'}, 2),
        ("parquet", None, 4),
        (None, {"a.bin": "", "b/c.bin": ""}, None),
    ],
)
def test_snippet_for_a_mounted_folder_runs_and_reads_every_file(
    tmp_path: Path, fmt: str | None, layout: dict[str, str] | None, rows: int | None
) -> None:
    mount = tmp_path / "datasets" / "ds"
    mount.mkdir(parents=True)
    if layout is None:
        import pandas as pd

        pd.DataFrame({"x": range(4)}).to_parquet(mount / "part-0.parquet")
    for name, text in (layout or {}).items():
        (mount / name).parent.mkdir(parents=True, exist_ok=True)
        (mount / name).write_text(text)
    [entry] = parse_catalog(
        json.dumps(
            [{"name": "ds", "uri": "s3://lake/ds/", "format": fmt, "mount_path": str(mount)}]
        )
    )
    scope: dict[str, Any] = {}
    exec(snippet(entry), scope)
    if rows is None:
        assert [p.name for p in scope["files"]] == ["a.bin", "c.bin"]
    else:
        assert len(scope["df"]) == rows


class FakeNVML:
    """An NVML binding whose calls can fail on demand; records shutdowns."""

    def __init__(self, name: object = b"NVIDIA H200", fail: str = "") -> None:
        self.name, self.fail, self.shutdowns = name, fail, 0

    def _maybe_fail(self, step: str) -> None:
        if self.fail == step:
            raise RuntimeError(f"NVML {step} failed")

    def nvmlInit(self) -> None:
        self._maybe_fail("init")

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._maybe_fail("handle")
        return index

    def nvmlDeviceGetName(self, handle: int) -> object:
        return self.name

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1


@pytest.mark.parametrize(
    ("nvml", "expected", "shutdowns"),
    [
        (FakeNVML(b"NVIDIA H200"), "NVIDIA H200", 1),
        (FakeNVML("NVIDIA A100-SXM4-80GB "), "NVIDIA A100-SXM4-80GB", 1),
        (FakeNVML(fail="init"), "", 0),
        (FakeNVML(fail="handle"), "", 1),
    ],
)
def test_gpu_name_from_nvml(nvml: FakeNVML, expected: str, shutdowns: int) -> None:
    from server_ext.kernel.gpu_info import nvml_gpu_name

    assert nvml_gpu_name(nvml) == expected
    assert nvml.shutdowns == shutdowns


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"MLTEAMS_GPUS": "1"}, "NVIDIA H200"),
        ({"MLTEAMS_GPUS": "1", "MLTEAMS_GPU_TYPE": "H100"}, "H100"),
        ({"MLTEAMS_GPUS": "0"}, None),
    ],
)
def test_run_gpu_type_from_the_profile_else_from_the_driver(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: str | None
) -> None:
    import mlflow.tracking  # noqa: F401  (as in a kernel: MLflow first, which loads the plugins)

    from server_ext.kernel import mlflow_plugins

    base = {"MLTEAMS_TEAM": "vision", "JUPYTERHUB_USER": "v-alice", "JPY_SESSION_NAME": ""}
    monkeypatch.setattr(mlflow_plugins.os, "environ", {**base, **environ})
    monkeypatch.setattr(mlflow_plugins, "detected_gpu_type", lambda: "NVIDIA H200")
    ctx = mlflow_plugins.current_context()
    assert ctx is not None
    assert ctx.tags().get("mlteams.gpu_type") == expected


def test_the_service_url_reaches_the_server_for_promotion() -> None:
    config = config_with_datasets()
    opts = options_for(config, "vision", "cpu")
    url = "http://hub:10101/services/mlteams/"
    settings = MLTeamsTracking(tracking_uri="http://m", service_url=url).settings()
    assert notebook_pod_parts(config, opts, settings).environment[env.SERVICE_URL] == url
    assert env.SERVICE_URL not in notebook_pod_parts(config, opts, TrackingSettings()).environment
