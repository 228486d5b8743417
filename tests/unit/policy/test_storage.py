"""Homes, team folders and the storage quota: configuration, manifests, pod parts, messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hub_ext.policy import ConfigError, Quota, QuotaOverride, load_config
from hub_ext.policy.manifests import quota_hard, render_team_manifests, team_manifests
from hub_ext.policy.notebook_pod import merge_volumes
from hub_ext.policy.storage import (
    TEAM_FOLDER_VOLUME,
    QuotaRefusal,
    home_environment,
    home_is_persistent,
    home_settings,
    missing_team_folder_message,
    quota_refusal,
    storage_note,
    storage_refusal_message,
    team_folder_volumes,
)
from server_ext import contract
from tests.unit.policy.sample import GIB, sample_raw

pytestmark = pytest.mark.unit

Mutation = Callable[[dict[str, Any]], None]


def with_storage() -> dict[str, Any]:
    raw = sample_raw()
    vision = raw["teams"]["vision"]
    vision["quota"].update(storage="100Gi", claims=20)
    vision["home"] = {"capacity": "20Gi", "storage_class": "fast-ssd"}
    vision["shared_folder"] = {"capacity": "50Gi", "storage_class": "nfs"}
    return raw


def test_storage_keys_load_with_their_defaults() -> None:
    config = load_config(with_storage())
    vision, nlp = config.teams["vision"], config.teams["nlp"]
    assert (vision.quota.storage, vision.quota.claims) == (100 * GIB, 20)
    assert (nlp.quota.storage, nlp.quota.claims) == (None, None)
    assert (vision.home.capacity, vision.home.storage_class) == (20 * GIB, "fast-ssd")
    assert (nlp.home.capacity, nlp.home.storage_class) == (None, None)
    folder = vision.shared_folder
    assert folder is not None
    assert folder.claim_name == "team-folder"
    assert folder.create is True
    assert folder.capacity == 50 * GIB
    assert folder.access_modes == ("ReadWriteMany",)
    assert folder.mount_path == "/home/jovyan/team"
    assert nlp.shared_folder is None


def _set(path: str, value: Any) -> Mutation:
    *parents, last = path.split(".")

    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            _set("teams.vision.quota.storage", "lots"),
            'MLTeams.teams.vision.quota.storage: must be a Kubernetes quantity: "lots"',
        ),
        (
            _set("teams.vision.quota.claims", "5"),
            'MLTeams.teams.vision.quota.claims: must be an integer >= 0, got "5"',
        ),
        (
            _set("teams.vision.home.size", "5Gi"),
            "MLTeams.teams.vision.home.size: unknown key; allowed keys: capacity, storage_class",
        ),
        (
            _set("teams.vision.home.storage_class", "Fast SSD"),
            "MLTeams.teams.vision.home.storage_class: must be a Kubernetes StorageClass name",
        ),
        (
            _set("teams.vision.shared_folder.claim_name", "claim-team"),
            'MLTeams.teams.vision.shared_folder.claim_name: must not start with "claim-"',
        ),
        (
            _set("teams.vision.shared_folder.claim_name", "Team_Folder"),
            "MLTeams.teams.vision.shared_folder.claim_name: must be a Kubernetes "
            "PersistentVolumeClaim name",
        ),
        (
            _set("teams.vision.shared_folder.access_modes", ["ReadOnlyMany"]),
            "MLTeams.teams.vision.shared_folder.access_modes[0]: must be one of ReadWriteMany, "
            "ReadWriteOnce",
        ),
        (
            _set("teams.vision.shared_folder.access_modes", []),
            "MLTeams.teams.vision.shared_folder.access_modes: must list at least one access mode",
        ),
        (
            _set("teams.vision.shared_folder.mount_path", "team"),
            "MLTeams.teams.vision.shared_folder.mount_path: must be an absolute folder path",
        ),
        (
            _set("teams.vision.shared_folder.mount_path", "/home/jovyan/team/"),
            "MLTeams.teams.vision.shared_folder.mount_path: must be an absolute folder path",
        ),
        (
            _set("teams.vision.shared_folder.mount_path", "/home/jovyan/../etc"),
            "MLTeams.teams.vision.shared_folder.mount_path: must not contain '.' or '..' parts",
        ),
        (
            _set("teams.vision.shared_folder.create", "yes"),
            'MLTeams.teams.vision.shared_folder.create: must be true or false, got "yes"',
        ),
        (
            _set("teams.vision.shared_folder", "nfs"),
            "MLTeams.teams.vision.shared_folder: ",
        ),
        (
            _set("teams.vision.home.capacity", "200Gi"),
            "MLTeams.teams.vision.home.capacity: a home of 200 GiB does not fit team vision's "
            "storage quota of 100 GiB",
        ),
        (
            _set("teams.vision.shared_folder.capacity", "1Ti"),
            "MLTeams.teams.vision.shared_folder.capacity: a team folder of 1 TiB does not fit "
            "team vision's storage quota of 100 GiB",
        ),
        (
            _set("teams.vision.quota.claims", 0),
            "MLTeams.teams.vision.quota.claims: team vision's quota allows no volume claims, so "
            "its team folder cannot be created",
        ),
    ],
)
def test_bad_storage_settings_name_the_key_and_why(mutate: Mutation, expected: str) -> None:
    raw = with_storage()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert expected in str(info.value)


def test_a_home_or_team_folder_as_big_as_the_storage_quota_fits() -> None:
    raw = with_storage()
    raw["teams"]["vision"]["home"]["capacity"] = "100Gi"
    raw["teams"]["vision"]["shared_folder"]["capacity"] = "100Gi"
    vision = load_config(raw).teams["vision"]
    assert vision.shared_folder is not None
    assert (vision.home.capacity, vision.shared_folder.capacity) == (100 * GIB, 100 * GIB)


def test_a_folder_the_admin_creates_needs_no_room_in_the_quota() -> None:
    raw = with_storage()
    raw["teams"]["vision"]["quota"]["claims"] = 0
    raw["teams"]["vision"]["shared_folder"].update(create=False, capacity="1Ti")
    assert load_config(raw).teams["vision"].shared_folder is not None


def test_two_teams_never_share_a_team_folder() -> None:
    """A claim is named within its namespace, and team namespaces are unique."""
    raw = with_storage()
    raw["teams"]["nlp"]["namespace"] = "team-vision"
    raw["teams"]["nlp"]["shared_folder"] = {}
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert (
        'MLTeams.teams.nlp.namespace: namespace "team-vision" is already used by team vision'
        in str(info.value)
    )


@pytest.mark.parametrize(
    ("quota", "hard"),
    [
        (Quota(gpus=2), {"requests.nvidia.com/gpu": "2"}),
        (
            Quota(gpus=2, storage=500 * GIB),
            {"requests.nvidia.com/gpu": "2", "requests.storage": "500Gi"},
        ),
        (Quota(gpus=0, claims=7), {"requests.nvidia.com/gpu": "0", "persistentvolumeclaims": "7"}),
        (
            Quota(gpus=1, storage=1536 * 2**20, claims=0),
            {
                "requests.nvidia.com/gpu": "1",
                "requests.storage": "1536Mi",
                "persistentvolumeclaims": "0",
            },
        ),
    ],
)
def test_storage_quota_renders_into_the_resource_quota(quota: Quota, hard: dict[str, str]) -> None:
    assert quota_hard(quota) == hard


def test_a_quota_override_keeps_or_replaces_the_storage_keys() -> None:
    quota = Quota(gpus=4, storage=10 * GIB, claims=3)
    assert QuotaOverride(gpus=2).apply(quota) == Quota(gpus=2, storage=10 * GIB, claims=3)
    assert QuotaOverride(storage=GIB, claims=9).apply(quota) == Quota(gpus=4, storage=GIB, claims=9)


def test_the_team_folder_claim_is_rendered_after_the_quota_in_the_team_namespace() -> None:
    config = load_config(with_storage())
    kinds = [m["kind"] for m in team_manifests(config.teams["vision"])]
    assert kinds == ["Namespace", "ResourceQuota", "RoleBinding", "PersistentVolumeClaim"]
    claim = team_manifests(config.teams["vision"])[-1]
    assert claim == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "team-folder",
            "namespace": "team-vision",
            "labels": {
                "app.kubernetes.io/managed-by": "jupyterhub-mlteams",
                "mlteams.io/team": "vision",
            },
        },
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "50Gi"}},
            "storageClassName": "nfs",
        },
    }
    assert [m["kind"] for m in team_manifests(config.teams["nlp"])][-1] == "RoleBinding"
    everything = render_team_manifests(config, cluster_scoped=False)
    assert [m["metadata"]["namespace"] for m in everything if m["kind"] == "PersistentVolumeClaim"]


def test_a_folder_the_admin_creates_is_not_rendered() -> None:
    raw = with_storage()
    raw["teams"]["vision"]["shared_folder"] = {"create": False, "claim_name": "vision-nfs"}
    config = load_config(raw)
    kinds = [m["kind"] for m in team_manifests(config.teams["vision"])]
    assert "PersistentVolumeClaim" not in kinds


def test_only_the_chosen_teams_folder_is_mounted_and_a_previous_one_goes() -> None:
    raw = with_storage()
    raw["teams"]["nlp"]["shared_folder"] = {"claim_name": "nlp-folder", "mount_path": "/data/nlp"}
    config = load_config(raw)
    volumes, mounts = team_folder_volumes(config.teams["vision"])
    assert volumes == [
        {"name": TEAM_FOLDER_VOLUME, "persistentVolumeClaim": {"claimName": "team-folder"}}
    ]
    assert mounts == [{"name": TEAM_FOLDER_VOLUME, "mountPath": "/home/jovyan/team"}]
    assert team_folder_volumes(config.teams["research"]) == ([], [])

    home = {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    nlp_volumes, _ = team_folder_volumes(config.teams["nlp"])
    after_nlp = merge_volumes([home, *volumes], nlp_volumes)
    assert after_nlp == [home, *nlp_volumes]
    assert merge_volumes(after_nlp, []) == [home]


def test_a_teams_home_settings_replace_the_global_ones() -> None:
    config = load_config(with_storage())
    assert home_settings(config.teams["vision"]) == {
        "storage_capacity": "20Gi",
        "storage_class": "fast-ssd",
    }
    assert home_settings(config.teams["nlp"]) == {}


STORAGE_BODY = json.dumps(
    {
        "kind": "Status",
        "status": "Failure",
        "message": 'persistentvolumeclaims "claim-ben" is forbidden: exceeded quota: '
        "mlteams-quota, requested: requests.storage=10Gi, used: requests.storage=95Gi, "
        "limited: requests.storage=100Gi",
        "reason": "Forbidden",
        "code": 403,
    }
)
CLAIMS_BODY = (
    'persistentvolumeclaims "claim-ben" is forbidden: exceeded quota: mlteams-quota, requested: '
    "persistentvolumeclaims=1, used: persistentvolumeclaims=20, limited: persistentvolumeclaims=20"
)
BOTH_BODY = (
    'persistentvolumeclaims "claim-ben" is forbidden: exceeded quota: mlteams-quota, requested: '
    "persistentvolumeclaims=1,requests.storage=10Gi, used: persistentvolumeclaims=20,"
    "requests.storage=95Gi, limited: persistentvolumeclaims=20,requests.storage=100Gi"
)
GPU_BODY = (
    'pods "jupyter-ben" is forbidden: exceeded quota: mlteams-quota, requested: '
    "requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=4, limited: requests.nvidia.com/gpu=4"
)
CLASS_BODY = (
    'persistentvolumeclaims "claim-ben" is forbidden: exceeded quota: ssd, requested: '
    "fast.storageclass.storage.k8s.io/requests.storage=10Gi, used: "
    "fast.storageclass.storage.k8s.io/requests.storage=10Gi, limited: "
    "fast.storageclass.storage.k8s.io/requests.storage=15Gi"
)


@pytest.mark.parametrize(
    ("body", "storage", "limited"),
    [
        (STORAGE_BODY, True, {"requests.storage": "100Gi"}),
        (STORAGE_BODY.encode(), True, {"requests.storage": "100Gi"}),
        (CLAIMS_BODY, True, {"persistentvolumeclaims": "20"}),
        (BOTH_BODY, True, {"persistentvolumeclaims": "20", "requests.storage": "100Gi"}),
        (GPU_BODY, False, {"requests.nvidia.com/gpu": "4"}),
        (CLASS_BODY, True, {"fast.storageclass.storage.k8s.io/requests.storage": "15Gi"}),
        ('pods "jupyter-ana" is forbidden: exceeded quota: mlteams-quota', False, {}),
    ],
)
def test_a_quota_refusal_is_read_from_the_api_servers_answer(
    body: str | bytes, storage: bool, limited: dict[str, str]
) -> None:
    refusal = quota_refusal(body)
    assert refusal is not None
    assert refusal.storage is storage
    assert dict(refusal.limited) == limited


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        'pods is forbidden: User "x" cannot create resource "pods"',
        json.dumps({"message": "namespace terminating"}),
    ],
)
def test_other_answers_are_not_quota_refusals(body: Any) -> None:
    assert quota_refusal(body) is None


def test_the_storage_refusal_names_the_team_the_quota_and_what_to_do() -> None:
    vision = load_config(with_storage()).teams["vision"]
    refusal = quota_refusal(STORAGE_BODY)
    assert refusal is not None
    assert storage_refusal_message(vision, refusal) == (
        "Team vision has no storage left for your home: it needs 10 GiB, and the team's volumes "
        "already hold 95 GiB of its 100 GiB storage quota (namespace team-vision). Your server "
        "was not started and nothing was changed. Ask your team lead (#ml-vision) or a platform "
        "admin to delete homes that are no longer needed or to raise the team's quota "
        "(quota.storage of team vision)."
    )
    claims = quota_refusal(CLAIMS_BODY)
    assert claims is not None
    nlp = load_config(with_storage()).teams["nlp"]
    message = storage_refusal_message(nlp, claims)
    assert message.startswith(
        "Team nlp has no room for another volume: its quota allows 20 volume claims in "
        "namespace ml-nlp and 20 exist."
    )
    assert "Ask your team lead or a platform admin" in message
    assert "(quota.claims of team nlp)" in message


def test_the_whole_refusal_is_read_with_the_quota_name() -> None:
    assert quota_refusal(STORAGE_BODY) == QuotaRefusal(
        quota="mlteams-quota",
        requested={"requests.storage": "10Gi"},
        used={"requests.storage": "95Gi"},
        limited={"requests.storage": "100Gi"},
    )


def test_an_answer_that_is_not_utf8_is_still_read() -> None:
    body = (
        b'persistentvolumeclaims "claim-\xff" is forbidden: exceeded quota: mlteams-quota, '
        b"requested: persistentvolumeclaims=1, used: persistentvolumeclaims=20, "
        b"limited: persistentvolumeclaims=20"
    )
    assert quota_refusal(body) == QuotaRefusal(
        quota="mlteams-quota",
        requested={"persistentvolumeclaims": "1"},
        used={"persistentvolumeclaims": "20"},
        limited={"persistentvolumeclaims": "20"},
    )


def test_the_message_of_a_json_status_is_read_decoded() -> None:
    body = (
        '{"kind": "Status", "message": "exceeded quota: mlteams-quota, requested: '
        "requests.storage\\u003d10Gi, used: requests.storage\\u003d95Gi, limited: "
        'requests.storage\\u003d100Gi"}'
    )
    assert quota_refusal(body) == QuotaRefusal(
        quota="mlteams-quota",
        requested={"requests.storage": "10Gi"},
        used={"requests.storage": "95Gi"},
        limited={"requests.storage": "100Gi"},
    )


@pytest.mark.parametrize(
    ("team", "refusal", "told"),
    [
        (
            "vision",
            QuotaRefusal(
                quota="mlteams-quota",
                requested={},
                used={"requests.storage": "95Gi"},
                limited={"requests.storage": "100Gi"},
            ),
            "Team vision has no storage left for your home: it needs ?, and the team's volumes "
            "already hold 95 GiB of its 100 GiB storage quota (namespace team-vision).",
        ),
        (
            "nlp",
            QuotaRefusal(
                quota="mlteams-quota",
                requested={"persistentvolumeclaims": "2"},
                used={"persistentvolumeclaims": "19"},
                limited={"persistentvolumeclaims": "20"},
            ),
            "Team nlp has no room for another volume: its quota allows 20 volume claims in "
            "namespace ml-nlp and 19 exist.",
        ),
        (
            "nlp",
            QuotaRefusal(
                quota="mlteams-quota",
                requested={"persistentvolumeclaims": "1"},
                used={},
                limited={"persistentvolumeclaims": "20"},
            ),
            "Team nlp has no room for another volume: its quota allows 20 volume claims in "
            "namespace ml-nlp and 20 exist.",
        ),
    ],
)
def test_a_refusal_missing_some_figures_is_still_explained(
    team: str, refusal: QuotaRefusal, told: str
) -> None:
    """A figure the API server left out reads ``?``; a missing count of claims in use is the
    limit, since the quota refused another."""
    message = storage_refusal_message(load_config(with_storage()).teams[team], refusal)
    assert message.startswith(told + " Your server was not started and nothing was changed. ")


def test_a_missing_team_folder_is_explained() -> None:
    vision = load_config(with_storage()).teams["vision"]
    assert missing_team_folder_message(vision) == (
        "Team vision's shared folder is not ready: its volume claim team-folder does not exist "
        "in namespace team-vision, so servers of the team cannot start. Ask a platform admin to "
        "create it (or to let the hub create it with MLTeams provision)."
    )


@pytest.mark.parametrize(
    ("team", "capacity", "others", "expected"),
    [
        (
            "vision",
            "10Gi",
            [],
            "Your home: a volume of 20 GiB in namespace team-vision, kept when the server stops. "
            "Team folder: /home/jovyan/team, shared with every member of vision.",
        ),
        (
            "nlp",
            "10Gi",
            ["vision"],
            "Your home: a volume of 10 GiB in namespace ml-nlp, kept when the server stops. "
            "Your home in team vision is separate.",
        ),
        (
            "research",
            None,
            ["vision", "nlp"],
            "Your home: a volume in namespace team-research, kept when the server stops. "
            "Your homes in teams vision, nlp are separate.",
        ),
    ],
)
def test_the_spawn_form_says_where_the_home_lives(
    team: str, capacity: str | None, others: list[str], expected: str
) -> None:
    config = load_config(with_storage())
    note = storage_note(
        config.teams[team], capacity=capacity, other_teams=[config.teams[o] for o in others]
    )
    assert note == expected


# -- whether the home outlives the server ------------------------------------------------------

CLAIM = {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}
SCRATCH = {"name": "home", "emptyDir": {}}
TEAM_DIR = {"name": "team", "persistentVolumeClaim": {"claimName": "team-folder"}}


@pytest.mark.parametrize(
    ("volumes", "mounts", "expected"),
    [
        ([CLAIM], [{"name": "home", "mountPath": "/home/jovyan"}], True),
        ([CLAIM], [{"name": "home", "mountPath": "/home/jovyan/"}], True),
        ([CLAIM], [{"name": "home", "mountPath": "/home"}], True),
        ([SCRATCH], [{"name": "home", "mountPath": "/home/jovyan"}], False),
        # a team folder below the home does not make the home persistent
        ([TEAM_DIR], [{"name": "team", "mountPath": "/home/jovyan/team"}], False),
        # the nearest mount decides: an emptyDir home under a claim mounted at /home
        (
            [CLAIM, {"name": "scratch", "emptyDir": {}}],
            [
                {"name": "home", "mountPath": "/home"},
                {"name": "scratch", "mountPath": "/home/jovyan"},
            ],
            False,
        ),
        ([], [], False),
        (
            [{"name": "home", "hostPath": {"path": "/srv/homes/alice"}}],
            [{"name": "home", "mountPath": "/home/jovyan"}],
            True,
        ),
        (
            [{"name": "home", "someDriver": {}}],
            [{"name": "home", "mountPath": "/home/jovyan"}],
            None,
        ),
        ([], [{"name": "home", "mountPath": "/home/jovyan"}], None),
    ],
)
def test_home_is_persistent(
    volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], expected: bool | None
) -> None:
    assert home_is_persistent(volumes, mounts, "/home/jovyan") is expected


def test_home_environment_tells_the_server_or_says_nothing() -> None:
    mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    assert home_environment([CLAIM], mounts, home="/home/jovyan") == {
        contract.HOME_PERSISTENT: "true"
    }
    assert home_environment([SCRATCH], mounts, home="/home/jovyan") == {
        contract.HOME_PERSISTENT: "false"
    }
    assert home_environment([{"name": "home", "x": {}}], mounts, home="/home/jovyan") == {}


def _claim(name: str) -> dict[str, Any]:
    return {"name": name, "persistentVolumeClaim": {"claimName": f"claim-{name}"}}


@pytest.mark.parametrize(
    ("home", "volumes", "mounts", "expected"),
    [
        ("/", [_claim("root")], [{"name": "root", "mountPath": "/"}], True),
        ("/home/jovyan", [_claim("root")], [{"name": "root", "mountPath": "/"}], True),
        ("/home/jovyan/", [_claim("home")], [{"name": "home", "mountPath": "/home/jovyan"}], True),
        ("/home/jovyan", [_claim("home")], [{"name": "home", "mountPath": "/home/jov"}], False),
        (
            "/home/ALEX",
            [_claim("home"), {"name": "scratch", "emptyDir": {}}],
            [
                {"name": "scratch", "mountPath": "/home"},
                {"name": "home", "mountPath": "/home/ALEX"},
            ],
            True,
        ),
        ("/home/jovyan", [_claim("root")], [{"name": "root"}], True),
    ],
    ids=[
        "home at the root",
        "a claim at the root",
        "a home written with a slash",
        "a mount whose path is a prefix of the home's name only",
        "an upper-case home below a scratch /home",
        "a mount without a path is at the root",
    ],
)
def test_the_mount_that_holds_the_home(
    home: str, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], expected: bool
) -> None:
    assert home_is_persistent(volumes, mounts, home) is expected
