"""A pod reflector that keeps the GPU ledger in step with the pods it watches.

KubeSpawner's reflector keeps every singleuser pod in its ``resources`` dict, replacing it on
each relist and updating single keys on watch events. Wrapping that dict in ``MirroredPods``
forwards each change to the ledger, so an admission decision reads counters, not the API.

The reflector watches every namespace (one watch serves all teams) but only pods that carry the
team label: singleuser pods of other hubs on the same cluster are neither mirrored nor processed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kubespawner.reflector import ResourceReflector
from kubespawner.spawner import PodReflector
from traitlets import validate

from hub_ext.policy import TEAM_LABEL, Ledger, MirroredPods


class LedgerPodReflector(PodReflector):
    """``PodReflector`` whose ``resources`` mirror into ``ledger``."""

    ledger: ClassVar[Ledger | None] = None
    label_selector: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label_selector = ",".join(s for s in (self.label_selector, TEAM_LABEL) if s)

    @validate("resources")
    def _mirror_into_ledger(self, proposal: Any) -> dict[str, Any]:
        ledger = type(self).ledger
        if ledger is None or isinstance(proposal.value, MirroredPods):
            return proposal.value
        return MirroredPods(ledger, proposal.value)


def reflector_for(ledger: Ledger) -> type[ResourceReflector]:
    """A reflector class bound to ``ledger`` (one per hub process)."""
    return type("TeamPodReflector", (LedgerPodReflector,), {"ledger": ledger})
