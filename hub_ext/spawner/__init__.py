"""TeamKubeSpawner: KubeSpawner with per-team GPU quotas, image profiles and a queue."""

from hub_ext.spawner.team_spawner import TeamKubeSpawner

__all__ = ["TeamKubeSpawner"]
