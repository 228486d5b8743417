"""The teams' data plane on the rig, set up as a platform admin would before the hub starts.

Each team gets a bucket on the object store with a read-only key pair in a Secret of the team's
namespace (the catalog's ``credentials_secret``) and a sample table in its bucket. Team vision
also gets a shared folder as a statically provisioned PersistentVolume and its claim, which the
hub mounts into vision's servers read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv.kubeapi import KubeAPI, create_if_missing
from devenv.object_store import ObjectStore, S3Credentials, team_bucket
from devenv.serving_keys import publish_serving_key
from devenv.team_data import publish_team_keys


def iris_csv(rows: range) -> str:
    """Iris-like measurements, one row per flower; the species follows the petals."""
    return "sepal_length,sepal_width,petal_length,petal_width,species\n" + "\n".join(
        f"{5.0 + i % 7 * 0.3:.1f},{3.0 + i % 5 * 0.2:.1f},{1.4 + (i % 3) * 2.1:.1f},"
        f"{0.2 + (i % 3) * 0.8:.1f},{('setosa', 'versicolor', 'virginica')[i % 3]}"
        for i in rows
    )


IRIS_CSV = iris_csv(range(60))
# the held-out set the promotion service scores candidates on: other flowers, in a bucket only
# the service reads (the teams' keys read their own buckets only)
GOVERNED_BUCKET = "mlteams-governed"
EVALUATION_KEYS = {
    "vision": "evaluation/vision/iris.csv",
    "nlp": "evaluation/nlp/iris.csv",
    "audio": "evaluation/audio/iris.csv",
}
EVALUATION_CSV = iris_csv(range(60, 90))
REVIEWS_CSV = "text,label\ngreat model,1\nterrible latency,0\n"
SHARED_README = "Labelled crops shared by team vision.\n"

# team -> (namespace, Secret name); the same names are in team_config.yaml
TEAMS = {"vision": ("it-vision", "vision-datasets"), "nlp": ("it-nlp", "nlp-datasets")}
SHARED_CLAIM = "vision-shared"


# team -> namespace whose champions are served (team_config.yaml: serving.enabled)
SERVING_TEAMS = {"vision": "it-vision"}


@dataclass
class TeamData:
    store: ObjectStore
    credentials: dict[str, S3Credentials]
    shared_folder: Path
    serving: dict[str, S3Credentials] = field(default_factory=dict)

    def secret_values(self) -> list[str]:
        """Every secret the rig handed out: no spec, response or log may contain one."""
        root = self.store.root_credentials
        keys = [*self.credentials.values(), *self.serving.values()]
        return [root.secret_key, *(c.secret_key for c in keys)]


def shared_volume(folder: Path, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A PersistentVolume on ``folder`` pre-bound to claim ``SHARED_CLAIM`` in ``namespace``."""
    pv_name = f"{namespace}-{SHARED_CLAIM}"
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": namespace, "name": SHARED_CLAIM},
            "hostPath": {"path": str(folder), "type": "Directory"},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": SHARED_CLAIM},
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "storageClassName": "",
            "volumeName": pv_name,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    return pv, pvc


def prepare_team_data(api: KubeAPI, store: ObjectStore, root: Path) -> TeamData:
    credentials = publish_team_keys(api, store, TEAMS)
    store.upload(team_bucket("vision"), "iris/iris.csv", IRIS_CSV)
    store.upload(team_bucket("nlp"), "reviews/reviews.csv", REVIEWS_CSV)
    store.create_bucket(GOVERNED_BUCKET)
    for key in EVALUATION_KEYS.values():
        store.upload(GOVERNED_BUCKET, key, EVALUATION_CSV)
    shared = root / "vision-shared"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "README.txt").write_text(SHARED_README)
    pv, pvc = shared_volume(shared, "it-vision")
    create_if_missing(api, "/api/v1/persistentvolumes", pv)
    create_if_missing(api, "/api/v1/namespaces/it-vision/persistentvolumeclaims", pvc)
    serving = {
        team: publish_serving_key(
            api, store, team=team, namespace=namespace, bucket=GOVERNED_BUCKET
        )
        for team, namespace in SERVING_TEAMS.items()
    }
    return TeamData(store, credentials, shared, serving)
