"""What the process kubelet remembers about pods across its restarts, and its state layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.kubelet.layout import StateLayout
from devenv.kubelet.records import (
    ContainerRecord,
    PodRecord,
    load_record,
    load_records,
    save_record,
)

pytestmark = pytest.mark.unit


def test_record_round_trip(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    paths = layout.pod("team-a", "jupyter-alice", "uid-1")
    record = PodRecord(
        uid="uid-1",
        namespace="team-a",
        name="jupyter-alice",
        node="gpu-0",
        pod_ip="127.11.0.4",
        start_time="2030-01-01T00:00:00Z",
        init_done=True,
        containers={
            "notebook": ContainerRecord(
                name="notebook", restart_count=2, pid=1234, proc_start=99, started_at="t"
            ),
            "fetch": ContainerRecord(
                name="fetch", init=True, terminated={"exitCode": 0, "reason": "Completed"}
            ),
        },
    )
    save_record(paths.record, record)
    assert paths.record == tmp_path / "pods" / "team-a_jupyter-alice_uid-1" / "record.json"
    assert load_record(paths.record) == record
    assert load_records(layout.pods_root) == [(paths.root, record)]
    assert record.markers == ["uid-1/notebook", "uid-1/fetch"]


def test_unreadable_or_missing_records_are_skipped(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)
    broken = layout.pod("ns", "p", "u").record
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    assert load_record(broken) is None
    assert load_record(tmp_path / "missing.json") is None
    assert load_records(layout.pods_root) == []
    assert load_records(tmp_path / "nowhere") == []


def test_pod_cleanup_keeps_logs(tmp_path: Path) -> None:
    paths = StateLayout(tmp_path).pod("ns", "p", "u")
    for path in (paths.log("main"), paths.record, paths.spec("main"), paths.volumes / "v" / "f"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    paths.remove_all_but_logs()
    assert sorted(p.name for p in paths.root.iterdir()) == ["main.log"]
