"""What every pod worker shares: the API client, the event recorder, the state directory, the
address pool and the facts about the nodes and the host."""

from __future__ import annotations

from dataclasses import dataclass, field

from .addresses import AddressPool
from .api import Kube
from .events import EventRecorder
from .layout import StateLayout
from .node_config import NodeSpec


@dataclass
class KubeletContext:
    kube: Kube
    events: EventRecorder
    layout: StateLayout
    addresses: AddressPool
    nodes: dict[str, tuple[int, NodeSpec]]
    service_host: str
    service_port: str
    venv_bin: str
    host_path: str
    inherited: dict[str, str] = field(default_factory=dict)
    pod_bin: str = ""

    def address_block(self, name: str) -> int:
        index, spec = self.nodes[name]
        return spec.block(index)

    def node_allocatable(self, name: str) -> dict[str, str]:
        return self.nodes[name][1].capacity()
