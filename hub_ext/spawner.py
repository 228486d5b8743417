"""TeamKubeSpawner: KubeSpawner for ML teams."""

from kubespawner import KubeSpawner


class TeamKubeSpawner(KubeSpawner):
    """KubeSpawner that places each server in its team's namespace under the team's quota."""
