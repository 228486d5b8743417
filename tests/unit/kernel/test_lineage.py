"""Dataset lineage without a kernel: which catalog dataset a read hits, its digest, the reader
wrappers, and how reads become dataset inputs of runs."""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from server_ext.contract import CatalogEntry, dump_catalog
from server_ext.kernel import hook as kernel_hook
from server_ext.kernel import run_hooks
from server_ext.kernel.lineage import (
    CatalogMatch,
    Digest,
    Location,
    dataset_read,
    fit_digest,
    location_of,
    match,
    source_type,
)
from server_ext.kernel.lineage_digest import local_digest, object_digest, remote_digest
from server_ext.kernel.lineage_runs import LineageRecorder, dataset_inputs, hook_run_creation
from server_ext.kernel.read_hooks import READERS, ReadHooks

pytestmark = pytest.mark.unit

HOME = "/home/jovyan"
CATALOG = [
    CatalogEntry("coco", "s3://lake/coco/", "csv", mount_path="/home/jovyan/datasets/coco"),
    CatalogEntry("coco-labels", "s3://lake/coco/labels/", "parquet"),
    CatalogEntry("imagenet", "s3a://lake/imagenet", "parquet"),
    CatalogEntry("iris", "/data/shared/iris", "csv"),
    CatalogEntry("iris2", "file:///data/shared/iris2/", "csv"),
    CatalogEntry("scans", "nfs://filer/scans/", None, mount_path="~/datasets/scans"),
]

# -- which dataset a read hits ------------------------------------------------------------------

MATCHES: list[tuple[object, str, str | None, str | None]] = [
    # target, cwd, dataset, source URI
    ("~/datasets/coco/labels.csv", "/tmp", "coco", "s3://lake/coco/labels.csv"),
    ("/home/jovyan/datasets/coco", "/", "coco", "s3://lake/coco/"),
    ("/home/jovyan/datasets/coco/", "/", "coco", "s3://lake/coco/"),
    (Path("/home/jovyan/datasets/coco/a/b.parquet"), "/", "coco", "s3://lake/coco/a/b.parquet"),
    ("datasets/coco/x.csv", HOME, "coco", "s3://lake/coco/x.csv"),
    ("../datasets/coco/./x.csv", f"{HOME}/proj", "coco", "s3://lake/coco/x.csv"),
    ("s3://lake/coco/x.csv", "/", "coco", "s3://lake/coco/x.csv"),
    ("S3A://lake/coco/x.csv", "/", "coco", "s3://lake/coco/x.csv"),
    ("s3://lake/coco/x.csv?versionId=7", "/", "coco", "s3://lake/coco/x.csv"),
    (
        "s3://lake/coco/labels/part-0.parquet",
        "/",
        "coco-labels",
        "s3://lake/coco/labels/part-0.parquet",
    ),
    ("s3://lake/imagenet/train/", "/", "imagenet", "s3://lake/imagenet/train"),
    ("s3a://lake/imagenet", "/", "imagenet", "s3://lake/imagenet"),
    ("/data/shared/iris/x.csv", "/", "iris", "/data/shared/iris/x.csv"),
    ("file:///data/shared/iris/x.csv", "/", "iris", "/data/shared/iris/x.csv"),
    ("/data/shared/iris2/x.csv", "/", "iris2", "file:///data/shared/iris2/x.csv"),
    ("/home/jovyan/datasets/scans/2024/a.dcm", "/", "scans", "nfs://filer/scans/2024/a.dcm"),
    ("/data/shared/iris3/x.csv", "/", None, None),
    ("s3://lake/cocoa/x.csv", "/", None, None),
    ("/home/jovyan/datasets/cocoa.csv", "/", None, None),
    ("/home/jovyan/datasets", "/", None, None),
    ("https://example.org/coco/x.csv", "/", None, None),
    ("file://otherhost/data/shared/iris/x.csv", "/", None, None),
    (io.StringIO("a,b\n1,2\n"), "/", None, None),
    (b"/data/shared/iris/x.csv", "/", None, None),
    (42, "/", None, None),
    ("", "/", None, None),
]


@pytest.mark.parametrize(("target", "cwd", "name", "source"), MATCHES)
def test_a_read_maps_to_its_catalog_dataset_and_source_uri(
    target: object, cwd: str, name: str | None, source: str | None
) -> None:
    location = location_of(target, home=HOME, cwd=cwd)
    found = match(location, CATALOG, home=HOME, cwd=cwd) if location else None
    assert (found.entry.name if found else None) == name
    assert (found.source_uri if found else None) == source


def test_symlinked_mounts_match_when_resolved() -> None:
    real = {"/home/jovyan/datasets/coco": "/mnt/csi/vol-1"}

    def resolve(path: str) -> str:
        for link, target in real.items():
            if path == link or path.startswith(link + "/"):
                return target + path[len(link) :]
        return path

    location = Location("local", "/mnt/csi/vol-1/train.csv")
    assert match(location, CATALOG, home=HOME, cwd="/") is None
    found = match(location, CATALOG, home=HOME, cwd="/", resolve=resolve)
    assert found is not None
    assert (found.entry.name, found.source_uri) == ("coco", "s3://lake/coco/train.csv")


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("s3://lake/x", "s3"),
        ("s3a://lake/x", "s3"),
        ("/data/x", "local"),
        ("file:///data/x", "local"),
        ("gs://b/x", "gs"),
        ("nfs://filer/x", "nfs"),
    ],
)
def test_source_type_is_the_scheme_or_local(uri: str, kind: str) -> None:
    assert source_type(uri) == kind


# -- digests ------------------------------------------------------------------------------------


def test_small_files_are_hashed_and_large_ones_fingerprinted(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_bytes(b"a,b\n1,2\n")
    small = local_digest(str(data))
    assert small == Digest(hashlib.sha256(b"a,b\n1,2\n").hexdigest()[:32], "sha256")
    large = local_digest(str(data), hash_max_bytes=4)
    assert large is not None and large.kind == "size-mtime" and len(large.value) == 32
    os.utime(data, ns=(1, 1))
    assert local_digest(str(data), hash_max_bytes=4) != large
    assert local_digest(str(tmp_path / "missing.csv")) is None


def test_a_folder_digest_follows_names_sizes_and_times(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    (folder / "part").mkdir(parents=True)
    (folder / "part" / "a.parquet").write_bytes(b"1")
    first = local_digest(str(folder))
    assert first is not None and first.kind == "listing"
    assert local_digest(str(folder)) == first
    (folder / "b.parquet").write_bytes(b"2")
    assert local_digest(str(folder)) != first
    assert local_digest(str(folder), max_entries=1) is None


class FakeStore:
    """An fsspec-like object store: ``objects`` maps keys to their info."""

    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.calls: list[str] = []

    def info(self, path: str, **kwargs: Any) -> Mapping[str, Any]:
        self.calls.append(f"info {path}")
        if path in self.objects:
            return {"name": path, "type": "file", **self.objects[path]}
        if any(k.startswith(path.rstrip("/") + "/") for k in self.objects):
            return {"name": path, "type": "directory", "size": 0}
        raise FileNotFoundError(path)

    def find(self, path: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
        self.calls.append(f"find {path}")
        prefix = path.rstrip("/") + "/"
        return {k: {"name": k, **v} for k, v in self.objects.items() if k.startswith(prefix)}


MULTIPART = "0123456789abcdef0123456789abcdef-10000"


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"ETag": '"d41d8cd9"', "VersionId": "v7", "size": 3}, Digest("d41d8cd9", "etag", "v7")),
        ({"ETag": '"d41d8cd9"', "VersionId": "null"}, Digest("d41d8cd9", "etag")),
        ({"VersionId": "v7", "size": 3}, Digest("v7", "version-id", "v7")),
    ],
)
def test_an_object_digest_is_its_etag_or_version(info: dict[str, Any], expected: Digest) -> None:
    assert object_digest(FakeStore({"lake/coco/x.csv": info}), "lake/coco/x.csv") == expected


def test_an_object_without_etag_or_version_is_fingerprinted_by_size_and_time() -> None:
    store = FakeStore({"lake/x.csv": {"size": 3, "LastModified": "2024-01-01T00:00:00Z"}})
    digest = object_digest(store, "lake/x.csv")
    assert digest is not None and digest.kind == "size-mtime"
    store.objects["lake/x.csv"]["LastModified"] = "2024-01-02T00:00:00Z"
    assert object_digest(store, "lake/x.csv") != digest


def test_a_prefix_digest_follows_its_keys_and_etags() -> None:
    store = FakeStore({"lake/ds/a": {"ETag": '"1"'}, "lake/ds/b": {"ETag": '"2"'}})
    first = object_digest(store, "lake/ds/")
    assert first is not None and first.kind == "listing"
    store.objects["lake/ds/b"]["ETag"] = '"3"'
    assert object_digest(store, "lake/ds") != first
    assert object_digest(store, "lake/ds", max_entries=1) is None


def test_a_remote_digest_uses_the_readers_storage_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore({"lake/coco/x.csv": {"ETag": '"abc"'}})
    seen: list[tuple[str, dict[str, Any]]] = []

    def url_to_fs(url: str, **options: Any) -> tuple[FakeStore, str]:
        seen.append((url, options))
        return store, url.split("://", 1)[1]

    fake = types.ModuleType("fsspec")
    fake.core = types.SimpleNamespace(url_to_fs=url_to_fs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fsspec", fake)
    options = {"key": "k", "client_kwargs": {"endpoint_url": "http://minio:9000"}}
    assert remote_digest("s3://lake/coco/x.csv", options) == Digest("abc", "etag")
    assert seen == [("s3://lake/coco/x.csv", options)]
    assert store.calls == ["info lake/coco/x.csv"]


def test_records_carry_name_source_and_a_digest_mlflow_can_store() -> None:
    found = CatalogMatch(CATALOG[0], "x.csv", Location("remote", "s3://lake/coco/x.csv"))
    read = dataset_read(found, Digest(MULTIPART, "etag", "v1"), "pandas.read_csv")
    assert (read.name, read.source_uri, read.digest_kind) == (
        "coco",
        "s3://lake/coco/x.csv",
        "etag",
    )
    assert read.digest == fit_digest(MULTIPART) and len(read.digest) == 32
    assert fit_digest("d41d8cd9") == "d41d8cd9"
    assert read.input_tags() == {
        "mlflow.data.context": "training",
        "mlteams.dataset.reader": "pandas.read_csv",
        "mlteams.dataset.path": "s3://lake/coco/x.csv",
        "mlteams.dataset.digest_kind": "etag",
        "mlteams.dataset.version": "v1",
    }
    unknown = dataset_read(found, None, "pandas.read_csv")
    assert unknown.digest_kind == "uri"
    assert unknown.digest == dataset_read(found, None, "fsspec.open").digest


# -- reader wrappers ----------------------------------------------------------------------------


class Reports:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[str, object, Mapping[str, Any] | None]] = []
        self.fail = fail

    def __call__(self, reader: str, target: object, options: Mapping[str, Any] | None) -> None:
        if self.fail:
            raise RuntimeError("recorder broke")
        self.seen.append((reader, target, options))


@pytest.fixture
def pandas_hooks() -> Iterator[tuple[ReadHooks, Reports]]:
    import pandas

    reports = Reports()
    hooks = ReadHooks(reports)
    hooks.on_import("pandas")
    try:
        yield hooks, reports
    finally:
        hooks.unpatch()
    assert not hasattr(pandas.read_csv, "__wrapped__")


def test_wrapped_pandas_readers_keep_results_signatures_and_errors(
    pandas_hooks: tuple[ReadHooks, Reports], tmp_path: Path
) -> None:
    import pandas as pd

    hooks, reports = pandas_hooks
    original = pd.read_csv.__wrapped__  # type: ignore[attr-defined]
    assert inspect.signature(pd.read_csv) == inspect.signature(original)
    assert pd.read_csv.__doc__ == original.__doc__ and pd.read_csv.__name__ == "read_csv"
    assert all(hasattr(getattr(pd, n), "__wrapped__") for n in READERS["pandas"].names)

    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    assert pd.read_csv(data).equals(original(data))
    pd.read_csv(filepath_or_buffer=str(data), storage_options=None)
    with pytest.raises(FileNotFoundError):
        pd.read_csv(tmp_path / "missing.csv")
    assert reports.seen == [
        ("pandas.read_csv", data, None),
        ("pandas.read_csv", str(data), None),
    ]
    hooks.on_import("pandas")
    assert pd.read_csv.__wrapped__ is original  # type: ignore[attr-defined]


def test_a_failing_report_never_reaches_the_notebook_and_warns_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    hooks = ReadHooks(Reports(fail=True))
    hooks.on_import("pandas")
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    try:
        assert pd.read_csv(data)["a"].tolist() == [1]
        assert pd.read_csv(data)["a"].tolist() == [1]
    finally:
        hooks.unpatch()
    err = capsys.readouterr().err
    assert err.count("mlteams warning") == 1 and "recorder broke" in err


def test_a_read_inside_another_read_is_reported_once() -> None:
    reports = Reports()
    hooks = ReadHooks(reports)
    inner = hooks.wrap(lambda url, mode="rb", **kw: url, "fsspec.open", READERS["fsspec"])
    outer = hooks.wrap(lambda path, **kw: inner(path), "pandas.read_csv", READERS["pandas"])
    assert outer("s3://lake/coco/x.csv", storage_options={"anon": True}) == "s3://lake/coco/x.csv"
    assert reports.seen == [("pandas.read_csv", "s3://lake/coco/x.csv", {"anon": True})]


def test_fsspec_openers_report_reads_with_their_filesystem_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = types.ModuleType("fsspec")
    fake.open = lambda urlpath, mode="rb", **kw: ("file", urlpath)  # type: ignore[attr-defined]
    fake.open_files = lambda urlpath, mode="rb", **kw: ["files"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fsspec", fake)
    reports = Reports()
    hooks = ReadHooks(reports)
    hooks.on_import("fsspec")
    assert fake.open("s3://lake/a", "rt", compression=None, key="k") == ("file", "s3://lake/a")
    fake.open("s3://lake/out", mode="wb")
    fake.open("s3://lake/rw", mode="r+b")
    fake.open_files(["s3://lake/a", "s3://lake/b"], anon=True)
    assert reports.seen == [
        ("fsspec.open", "s3://lake/a", {"key": "k"}),
        ("fsspec.open_files", "s3://lake/a", {"anon": True}),
        ("fsspec.open_files", "s3://lake/b", {"anon": True}),
    ]
    hooks.unpatch()
    assert not hasattr(fake.open, "__wrapped__")


# -- reads become run inputs --------------------------------------------------------------------


class FakeRuns:
    """Stands in for MLflow: the open run, logged inputs and the run-creation hook."""

    def __init__(self) -> None:
        self.active: str | None = None
        self.logged: list[tuple[str, list[str]]] = []
        self.on_create: Any = None
        self.undone = False
        self.fail = False

    def log(self, client: Any, run_id: str, reads: list[Any]) -> None:
        if self.fail:
            raise ConnectionError("MLflow is down")
        self.logged.append((run_id, [r.source_uri for r in reads]))

    def hook(self, callback: Any) -> Any:
        self.on_create = callback

        def undo() -> None:
            self.undone = True

        return undo

    def create(self, run_id: str) -> None:
        if self.on_create:
            self.on_create(None, run_id)


@pytest.fixture
def dataset_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "datasets" / "iris"
    folder.mkdir(parents=True)
    (folder / "iris.csv").write_text("a,b\n1,2\n")
    return folder


def recorder_for(
    folder: Path, runs: FakeRuns, state: list[str], warnings: list[str]
) -> LineageRecorder:
    catalog = [CatalogEntry("iris", "s3://lake/iris/", "csv", mount_path=str(folder))]
    return LineageRecorder(
        catalog,
        state=lambda: state[0],
        active_run_id=lambda: runs.active,
        warn=warnings.append,
        home=str(folder.parent.parent),
        hash_max_bytes=1024,
        cwd=lambda: str(folder.parent.parent),
        log=runs.log,
        hook=runs.hook,
    )


def test_reads_before_a_run_go_to_every_later_run_once(dataset_folder: Path) -> None:
    runs, state, warnings = FakeRuns(), ["waiting"], []
    recorder = recorder_for(dataset_folder, runs, state, warnings)
    recorder.report("pandas.read_csv", "~/datasets/iris/iris.csv", None)
    recorder.report("pandas.read_csv", "datasets/iris/iris.csv", None)
    recorder.report("pandas.read_csv", "elsewhere.csv", None)
    recorder.report("pandas.read_csv", io.StringIO("a"), None)
    assert [r.name for r in recorder.pending.values()] == ["iris"]
    assert runs.logged == []

    state[0] = "active"
    recorder.activate()
    runs.create("r1")
    runs.create("r1")
    runs.create("r2")
    source = "s3://lake/iris/iris.csv"
    assert runs.logged == [("r1", [source]), ("r2", [source])]
    read = next(iter(recorder.pending.values()))
    expected = hashlib.sha256(b"a,b\n1,2\n").hexdigest()[:32]
    assert (read.digest, read.digest_kind) == (expected, "sha256")
    recorder.deactivate()
    assert runs.undone and warnings == []


def test_a_read_during_an_open_run_is_logged_at_once(dataset_folder: Path) -> None:
    runs, state, warnings = FakeRuns(), ["active"], []
    recorder = recorder_for(dataset_folder, runs, state, warnings)
    runs.active = "open"
    recorder.activate()
    recorder.report("pandas.read_parquet", str(dataset_folder), None)
    assert runs.logged == [("open", ["s3://lake/iris/"])]
    assert next(iter(recorder.pending.values())).digest_kind == "listing"


def test_an_open_run_gets_earlier_reads_when_tracking_starts(dataset_folder: Path) -> None:
    runs, state, warnings = FakeRuns(), ["waiting"], []
    recorder = recorder_for(dataset_folder, runs, state, warnings)
    runs.active = "open"
    recorder.report("pandas.read_csv", str(dataset_folder / "iris.csv"), None)
    assert runs.logged == []
    state[0] = "active"
    recorder.activate()
    assert runs.logged == [("open", ["s3://lake/iris/iris.csv"])]


def test_untracked_kernels_keep_nothing(dataset_folder: Path) -> None:
    runs, state, warnings = FakeRuns(), ["unreachable"], []
    recorder = recorder_for(dataset_folder, runs, state, warnings)
    recorder.report("pandas.read_csv", str(dataset_folder / "iris.csv"), None)
    assert recorder.pending == {}


def test_a_failed_log_warns_and_is_retried_on_the_next_run(dataset_folder: Path) -> None:
    runs, state, warnings = FakeRuns(), ["active"], []
    recorder = recorder_for(dataset_folder, runs, state, warnings)
    recorder.activate()
    recorder.report("pandas.read_csv", str(dataset_folder / "iris.csv"), None)
    runs.fail = True
    runs.create("r1")
    runs.fail = False
    runs.create("r2")
    runs.create("r1")
    assert [run for run, _ in runs.logged] == ["r2", "r1"]
    assert len(warnings) == 1 and "MLflow is down" in warnings[0]


# -- the MLflow edge ----------------------------------------------------------------------------


def test_dataset_inputs_resolve_to_mlflow_sources() -> None:
    import mlflow.data
    from mlflow.data.filesystem_dataset_source import FileSystemDatasetSource

    found = CatalogMatch(CATALOG[0], "x.csv", Location("remote", "s3://lake/coco/x.csv"))
    read = dataset_read(found, Digest("abc", "etag"), "pandas.read_csv")
    local = dataset_read(
        CatalogMatch(CATALOG[3], "x.csv", Location("local", "/data/shared/iris/x.csv")),
        Digest("def", "sha256"),
        "pandas.read_csv",
    )
    s3_input, local_input = dataset_inputs([read, local])
    assert (s3_input.dataset.name, s3_input.dataset.digest) == ("coco", "abc")
    assert {t.key: t.value for t in s3_input.tags}["mlflow.data.context"] == "training"
    for given, uri, kind in (
        (s3_input, read.source_uri, "s3"),
        (local_input, "/data/shared/iris/x.csv", "local"),
    ):
        source = mlflow.data.get_source(given)
        assert isinstance(source, FileSystemDatasetSource)
        assert (source.uri, source._get_source_type()) == (uri, kind)
        assert json.loads(given.dataset.source) == {"uri": uri}


def test_run_creation_hook_reports_each_run_and_comes_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    def create_run(self: Any, experiment_id: str, **kwargs: Any) -> Any:
        """Create a run."""
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=f"run-{experiment_id}"))

    monkeypatch.setattr(MlflowClient, "create_run", create_run)
    seen: list[str] = []

    def callback(client: Any, run_id: str) -> None:
        seen.append(run_id)
        raise RuntimeError("never reaches the caller")

    undo = hook_run_creation(callback)
    client = MlflowClient("http://127.0.0.1:1")
    assert client.create_run("7").info.run_id == "run-7"
    assert MlflowClient.create_run.__doc__ == "Create a run."
    undo()
    assert MlflowClient.create_run is create_run
    client.create_run("8")
    assert seen == ["run-7"]


# -- the kernel hook ----------------------------------------------------------------------------


def test_the_kernel_hook_wraps_readers_only_for_a_team_with_datasets(
    dataset_folder: Path,
) -> None:
    import pandas as pd

    home = str(dataset_folder.parent.parent)
    catalog = dump_catalog(
        [CatalogEntry("iris", "s3://lake/iris/", "csv", mount_path=str(dataset_folder))]
    )
    base = {"MLTEAMS_TRACKING": "1", "MLFLOW_TRACKING_URI": "http://127.0.0.1:1", "HOME": home}

    libraries = ["mlteams_not_imported_lib"]
    bare = kernel_hook.KernelTracking(environ=base, libraries=libraries)
    bare.install()
    bare.watcher.uninstall()
    bare.uninstall_environment()
    assert bare.lineage is None and not hasattr(pd.read_csv, "__wrapped__")

    environ = {**base, "MLTEAMS_DATASETS": catalog}
    tracker = kernel_hook.KernelTracking(environ=environ, libraries=libraries)
    tracker.install()
    try:
        assert tracker.lineage is not None and hasattr(pd.read_csv, "__wrapped__")
        pd.read_csv(dataset_folder / "iris.csv")
        assert [r.name for r in tracker.lineage.pending.values()] == ["iris"]
    finally:
        tracker.watcher.uninstall()
        tracker.uninstall_lineage()
        tracker.uninstall_environment()
    assert not hasattr(pd.read_csv, "__wrapped__")
    # nothing of either hook stays on MLflow's run creation in this process
    assert run_hooks._installed is None
    assert tracker.read_watcher not in sys.meta_path
    assert set(kernel_hook.DATASET_READER_MODULES) == set(READERS)


def test_a_file_read_again_unchanged_is_hashed_once_and_a_changed_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server_ext.kernel import lineage_digest

    hashed: list[str] = []
    real = lineage_digest._file_sha256
    monkeypatch.setattr(lineage_digest, "_file_sha256", lambda p: hashed.append(p) or real(p))
    data = tmp_path / "train.csv"
    data.write_bytes(b"a,b\n1,2\n")
    first = local_digest(str(data))
    assert local_digest(str(data)) == first
    assert len(hashed) == 1
    data.write_bytes(b"a,b\n1,2\n3,4\n")
    second = local_digest(str(data))
    assert second == Digest(hashlib.sha256(b"a,b\n1,2\n3,4\n").hexdigest()[:32], "sha256")
    assert len(hashed) == 2
