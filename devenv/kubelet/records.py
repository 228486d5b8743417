"""What the kubelet remembers about each pod's processes across its own restarts."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class ContainerRecord:
    name: str
    init: bool = False
    restart_count: int = 0
    pid: int | None = None
    proc_start: int | None = None
    started_at: str | None = None
    terminated: dict[str, Any] | None = None
    last_terminated: dict[str, Any] | None = None


@dataclass
class PodRecord:
    uid: str
    namespace: str
    name: str
    node: str
    pod_ip: str | None = None
    start_time: str | None = None
    init_done: bool = False
    init_failed: bool = False
    containers: dict[str, ContainerRecord] = field(default_factory=dict)

    @property
    def markers(self) -> list[str]:
        return [f"{self.uid}/{name}" for name in self.containers]


def save_record(path: Path, record: PodRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=1))
    os.replace(tmp, path)


def record_from_json(data: dict[str, Any]) -> PodRecord:
    containers = {
        name: ContainerRecord(**value) for name, value in (data.get("containers") or {}).items()
    }
    return PodRecord(**{**data, "containers": containers})


def load_record(path: Path) -> PodRecord | None:
    try:
        return record_from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        log.warning("ignoring unreadable pod record %s: %s", path, exc)
        return None


def load_records(pods_root: Path) -> list[tuple[Path, PodRecord]]:
    """Every pod record under ``pods_root`` with the pod directory it lives in."""
    found = []
    if not pods_root.exists():
        return found
    for pod_dir in sorted(pods_root.iterdir()):
        record = load_record(pod_dir / "record.json")
        if record is not None:
            found.append((pod_dir, record))
    return found
