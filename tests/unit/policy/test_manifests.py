"""Per-team Kubernetes objects: rendering, YAML output and `mlteams-manifests`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub_ext.policy import Quota, load_config
from hub_ext.policy.manifests import (
    PROVISIONER_CLUSTER_ROLE,
    TEAM_CLUSTER_ROLE,
    WATCH_CLUSTER_ROLE,
    cluster_manifests,
    quota_hard,
    render_team_manifests,
    team_manifests,
    to_yaml,
)
from hub_ext.provisioning.cli import main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
MANAGED = {"app.kubernetes.io/managed-by": "jupyterhub-mlteams"}

TWO_TEAMS: dict[str, Any] = {
    "teams": {
        "vision": {
            "groups": ["/ml/vision"],
            "quota": {"gpus": 8, "gpus_per_user": 2},
            "profiles": ["cpu", "gpu"],
        },
        "nlp": {
            "groups": ["/ml/nlp"],
            "namespace": "ml-nlp",
            "quota": {"gpus": 4, "cpu": "64", "memory": "256Gi"},
            "profiles": ["cpu"],
        },
    },
    "profiles": {
        "cpu": {"image": "mlteams/cpu:1", "cpu": 2, "memory": "8Gi"},
        "gpu": {"image": "mlteams/pytorch:1", "gpus": 1},
    },
}


def rendered(**options: Any) -> list[dict[str, Any]]:
    return render_team_manifests(
        load_config(TWO_TEAMS), hub_namespace="jhub", hub_service_account="hub-sa", **options
    )


def find(manifests: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None):
    matches = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"]["name"] == name
        and m["metadata"].get("namespace") == namespace
    ]
    assert len(matches) == 1, f"{kind} {namespace}/{name}: {len(matches)} found"
    return matches[0]


def identities(manifests: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests]


def test_two_teams_render_in_a_stable_applicable_order() -> None:
    assert identities(rendered()) == [
        ("ClusterRole", None, TEAM_CLUSTER_ROLE),
        ("ClusterRole", None, WATCH_CLUSTER_ROLE),
        ("ClusterRoleBinding", None, "mlteams-hub-watch-jhub"),
        ("Namespace", None, "ml-nlp"),
        ("ResourceQuota", "ml-nlp", "mlteams-quota"),
        ("RoleBinding", "ml-nlp", "mlteams-hub"),
        ("Namespace", None, "team-vision"),
        ("ResourceQuota", "team-vision", "mlteams-quota"),
        ("RoleBinding", "team-vision", "mlteams-hub"),
    ]


def test_order_does_not_depend_on_the_order_teams_are_written() -> None:
    reversed_teams = dict(TWO_TEAMS, teams=dict(reversed(list(TWO_TEAMS["teams"].items()))))
    config = load_config(reversed_teams)
    assert render_team_manifests(config, hub_namespace="jhub", hub_service_account="hub-sa") == (
        rendered()
    )
    assert to_yaml(rendered()) == to_yaml(rendered())


def test_namespaces_carry_managed_by_and_team_labels() -> None:
    manifests = rendered()
    assert find(manifests, "Namespace", "team-vision") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-vision", "labels": {**MANAGED, "mlteams.io/team": "vision"}},
    }
    assert find(manifests, "Namespace", "ml-nlp")["metadata"]["labels"] == {
        **MANAGED,
        "mlteams.io/team": "nlp",
    }


def test_quota_keys_and_values_are_exact() -> None:
    manifests = rendered()
    nlp = find(manifests, "ResourceQuota", "mlteams-quota", "ml-nlp")
    assert nlp["spec"] == {
        "hard": {
            "requests.nvidia.com/gpu": "4",
            "limits.cpu": "64",
            "limits.memory": "256Gi",
        }
    }
    vision = find(manifests, "ResourceQuota", "mlteams-quota", "team-vision")
    assert vision["spec"] == {"hard": {"requests.nvidia.com/gpu": "8"}}
    assert vision["metadata"]["labels"] == {**MANAGED, "mlteams.io/team": "vision"}


def test_gpu_quota_uses_only_the_requests_prefix() -> None:
    for manifest in rendered():
        if manifest["kind"] == "ResourceQuota":
            assert "limits.nvidia.com/gpu" not in manifest["spec"]["hard"]
            assert "nvidia.com/gpu" not in manifest["spec"]["hard"]


@pytest.mark.parametrize(
    ("quota", "hard"),
    [
        (Quota(gpus=0, gpus_per_user=0), {"requests.nvidia.com/gpu": "0"}),
        (
            Quota(gpus=2, gpus_per_user=1, cpu=500),
            {"requests.nvidia.com/gpu": "2", "limits.cpu": "500m"},
        ),
        (
            Quota(gpus=1, gpus_per_user=1, memory=1536 * 2**20),
            {"requests.nvidia.com/gpu": "1", "limits.memory": "1536Mi"},
        ),
    ],
)
def test_quota_hard(quota: Quota, hard: dict[str, str]) -> None:
    assert quota_hard(quota) == hard


def test_run_time_quota_replaces_the_configured_one() -> None:
    manifests = rendered(quotas={"vision": Quota(gpus=12, gpus_per_user=2)})
    vision = find(manifests, "ResourceQuota", "mlteams-quota", "team-vision")
    assert vision["spec"]["hard"] == {"requests.nvidia.com/gpu": "12"}
    nlp = find(manifests, "ResourceQuota", "mlteams-quota", "ml-nlp")
    assert nlp["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"


def test_bindings_target_the_hub_service_account() -> None:
    manifests = rendered(provisioning=True)
    hub = {"kind": "ServiceAccount", "name": "hub-sa", "namespace": "jhub"}
    for namespace in ("ml-nlp", "team-vision"):
        binding = find(manifests, "RoleBinding", "mlteams-hub", namespace)
        assert binding["subjects"] == [hub]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": TEAM_CLUSTER_ROLE,
        }
    for role in (WATCH_CLUSTER_ROLE, PROVISIONER_CLUSTER_ROLE):
        binding = find(manifests, "ClusterRoleBinding", f"{role}-jhub")
        assert binding["subjects"] == [hub]
        assert binding["roleRef"]["name"] == role


def rules_of(manifests: list[dict[str, Any]], role: str) -> set[tuple[str, str, str, str]]:
    out = set()
    for rule in find(manifests, "ClusterRole", role)["rules"]:
        names = ",".join(rule.get("resourceNames", [])) or "*"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb, names))
    return out


def test_team_role_is_least_privilege() -> None:
    assert rules_of(rendered(), TEAM_CLUSTER_ROLE) == {
        ("", "pods", "get", "*"),
        ("", "pods", "create", "*"),
        ("", "pods", "delete", "*"),
        ("", "persistentvolumeclaims", "get", "*"),
        ("", "persistentvolumeclaims", "create", "*"),
        ("", "persistentvolumeclaims", "delete", "*"),
        ("", "resourcequotas", "get", "*"),
        ("batch", "jobs", "get", "*"),
        ("batch", "jobs", "list", "*"),
        ("batch", "jobs", "watch", "*"),
        ("batch", "jobs", "create", "*"),
        ("batch", "jobs", "delete", "*"),
        ("serving.kserve.io", "inferenceservices", "get", "*"),
        ("serving.kserve.io", "inferenceservices", "create", "*"),
        ("serving.kserve.io", "inferenceservices", "patch", "*"),
        ("serving.kserve.io", "inferenceservices", "delete", "*"),
    }


def test_watch_role_reads_pods_and_events_everywhere() -> None:
    assert rules_of(rendered(), WATCH_CLUSTER_ROLE) == {
        ("", "pods", "list", "*"),
        ("", "pods", "watch", "*"),
        ("", "events", "list", "*"),
        ("", "events", "watch", "*"),
        ("", "namespaces", "get", "*"),
    }


def test_provisioner_may_bind_only_the_team_role() -> None:
    rules = rules_of(rendered(provisioning=True), PROVISIONER_CLUSTER_ROLE)
    rbac = "rbac.authorization.k8s.io"
    assert (rbac, "clusterroles", "bind", TEAM_CLUSTER_ROLE) in rules
    assert {rule for rule in rules if rule[1] == "clusterroles"} == {
        (rbac, "clusterroles", "bind", TEAM_CLUSTER_ROLE)
    }
    assert not any(verb in {"delete", "escalate", "*"} for _, _, verb, _ in rules)
    for resource, group in (("namespaces", ""), ("resourcequotas", ""), ("rolebindings", rbac)):
        for verb in ("get", "create", "patch"):
            assert (group, resource, verb, "*") in rules


def test_no_role_grants_secrets_services_or_wildcards() -> None:
    for manifest in cluster_manifests(provisioning=True):
        for rule in manifest.get("rules", []):
            assert "secrets" not in rule["resources"]
            assert "services" not in rule["resources"]
            assert "*" not in rule["resources"] + rule["verbs"] + rule["apiGroups"]


def test_provisioning_role_only_on_request_and_cluster_objects_optional() -> None:
    assert PROVISIONER_CLUSTER_ROLE not in {m["metadata"]["name"] for m in rendered()}
    teams_only = rendered(cluster_scoped=False, provisioning=True)
    assert {m["kind"] for m in teams_only} == {"Namespace", "ResourceQuota", "RoleBinding"}


def test_extra_labels_cannot_override_ours() -> None:
    team = load_config(TWO_TEAMS).teams["vision"]
    labels = {"app.kubernetes.io/managed-by": "helm", "release": "jh", "mlteams.io/team": "x"}
    for manifest in team_manifests(team, labels=labels):
        assert manifest["metadata"]["labels"] == {
            "release": "jh",
            "app.kubernetes.io/managed-by": "jupyterhub-mlteams",
            "mlteams.io/team": "vision",
        }


def test_rendering_does_not_share_mutable_parts() -> None:
    first = rendered(provisioning=True)
    first[0]["rules"][0]["verbs"].append("patch")
    first[3]["metadata"]["labels"]["x"] = "y"
    assert rendered(provisioning=True)[0]["rules"][0]["verbs"] == ["get", "create", "delete"]
    assert "x" not in rendered()[3]["metadata"]["labels"]


def test_yaml_round_trips() -> None:
    manifests = rendered(provisioning=True)
    text = to_yaml(manifests)
    assert text.startswith("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n")
    assert text.count("\n---\n") == len(manifests) - 1
    assert list(yaml.safe_load_all(text)) == manifests
    assert "requests.nvidia.com/gpu: '8'" in text


ONE_TEAM: dict[str, Any] = {
    "teams": {
        "vision": {
            "groups": ["/ml/vision"],
            "quota": {"gpus": 2, "gpus_per_user": 1},
            "profiles": ["cpu"],
            "shared_folder": {"capacity": "50Gi", "storage_class": "nfs"},
        },
    },
    "profiles": {"cpu": {"image": "mlteams/cpu:1", "cpu": 2, "memory": "8Gi"}},
}


def test_everything_rendered_for_one_team_with_extra_labels_and_provisioning() -> None:
    """Each object whole: the cluster RBAC, then the team's Namespace, ResourceQuota,
    RoleBinding and team folder claim, every one with the extra labels next to ours."""
    manifests = render_team_manifests(
        load_config(ONE_TEAM),
        hub_namespace="jhub",
        hub_service_account="hub-sa",
        labels={"release": "jh"},
        provisioning=True,
    )
    common = {"release": "jh", **MANAGED}
    team = {**common, "mlteams.io/team": "vision"}
    hub = {"kind": "ServiceAccount", "name": "hub-sa", "namespace": "jhub"}
    rbac = "rbac.authorization.k8s.io/v1"

    def role(name: str) -> dict[str, Any]:
        return {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}

    assert [m["kind"] for m in manifests] == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "ResourceQuota",
        "RoleBinding",
        "PersistentVolumeClaim",
    ]
    for cluster_role, name in zip(
        (manifests[0], manifests[1], manifests[3]),
        (TEAM_CLUSTER_ROLE, WATCH_CLUSTER_ROLE, PROVISIONER_CLUSTER_ROLE),
        strict=True,
    ):
        assert cluster_role["apiVersion"] == rbac
        assert cluster_role["metadata"] == {"name": name, "labels": common}
    assert manifests[2] == {
        "apiVersion": rbac,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "mlteams-hub-watch-jhub", "labels": common},
        "roleRef": role(WATCH_CLUSTER_ROLE),
        "subjects": [hub],
    }
    assert manifests[4] == {
        "apiVersion": rbac,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "mlteams-hub-provisioner-jhub", "labels": common},
        "roleRef": role(PROVISIONER_CLUSTER_ROLE),
        "subjects": [hub],
    }
    assert manifests[5:] == [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-vision", "labels": team},
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "mlteams-quota", "namespace": "team-vision", "labels": team},
            "spec": {"hard": {"requests.nvidia.com/gpu": "2"}},
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": "mlteams-hub", "namespace": "team-vision", "labels": team},
            "roleRef": role(TEAM_CLUSTER_ROLE),
            "subjects": [hub],
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "team-folder", "namespace": "team-vision", "labels": team},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "50Gi"}},
                "storageClassName": "nfs",
            },
        },
    ]


def test_cluster_objects_by_default_are_for_the_hub_service_account_without_provisioning() -> None:
    manifests = cluster_manifests()
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("ClusterRole", TEAM_CLUSTER_ROLE),
        ("ClusterRole", WATCH_CLUSTER_ROLE),
        ("ClusterRoleBinding", "mlteams-hub-watch-jupyterhub"),
    ]
    assert manifests[2]["subjects"] == [
        {"kind": "ServiceAccount", "name": "hub", "namespace": "jupyterhub"}
    ]
    assert all(m["metadata"]["labels"] == MANAGED for m in manifests)


def test_yaml_keeps_the_built_key_order_in_block_style() -> None:
    binding = cluster_manifests(hub_namespace="jhub")[2]
    assert to_yaml([binding, {"kind": "Namespace", "metadata": {"name": "team-vision"}}]) == (
        "---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: ClusterRoleBinding\n"
        "metadata:\n"
        "  name: mlteams-hub-watch-jhub\n"
        "  labels:\n"
        "    app.kubernetes.io/managed-by: jupyterhub-mlteams\n"
        "roleRef:\n"
        "  apiGroup: rbac.authorization.k8s.io\n"
        "  kind: ClusterRole\n"
        "  name: mlteams-hub-watch\n"
        "subjects:\n"
        "- kind: ServiceAccount\n"
        "  name: hub\n"
        "  namespace: jhub\n"
        "---\n"
        "kind: Namespace\n"
        "metadata:\n"
        "  name: team-vision\n"
    )


# -- the command --------------------------------------------------------------------------------


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write_values(tmp_path: Path, mlteams: Any, **hub: Any) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"hub": {"config": {"MLTeams": mlteams}, **hub}}))
    return path


def test_cli_prints_documents_from_a_values_file(tmp_path: Path) -> None:
    values = write_values(tmp_path, TWO_TEAMS)
    code, out, err = run_main("--values", str(values), "--hub-namespace", "jhub")
    assert (code, err) == (0, "")
    documents = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in documents].count("Namespace") == 2
    binding = find(documents, "RoleBinding", "mlteams-hub", "team-vision")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": "jhub"}]
    assert out == to_yaml(
        render_team_manifests(
            load_config(TWO_TEAMS), hub_namespace="jhub", hub_service_account="hub"
        )
    )


def test_cli_takes_the_service_account_from_values_unless_given(tmp_path: Path) -> None:
    values = write_values(tmp_path, TWO_TEAMS, serviceAccount={"name": "jh-hub"})
    _, out, _ = run_main("--values", str(values), "--teams-only")
    subjects = {d["subjects"][0]["name"] for d in yaml.safe_load_all(out) if "subjects" in d}
    assert subjects == {"jh-hub"}
    _, out, _ = run_main("--values", str(values), "--teams-only", "--hub-service-account", "x")
    subjects = {d["subjects"][0]["name"] for d in yaml.safe_load_all(out) if "subjects" in d}
    assert subjects == {"x"}


def test_cli_uses_the_hub_settings_beside_the_teams(tmp_path: Path) -> None:
    section = {
        **TWO_TEAMS,
        "provision": False,
        "hub_namespace": "ml-hub",
        "hub_service_account": "ml-hub-sa",
        "queue_poll_seconds": 5,
    }
    values = write_values(tmp_path, section, serviceAccount={"name": "ignored"})
    code, out, err = run_main("--values", str(values))
    assert (code, err) == (0, "")
    subjects = {
        (s["namespace"], s["name"]) for d in yaml.safe_load_all(out) for s in d.get("subjects", [])
    }
    assert subjects == {("ml-hub", "ml-hub-sa")}
    code, out, _ = run_main("--values", str(values), "--hub-namespace", "other")
    subjects = {
        (s["namespace"], s["name"]) for d in yaml.safe_load_all(out) for s in d.get("subjects", [])
    }
    assert subjects == {("other", "ml-hub-sa")}


def test_cli_cluster_only_prints_what_the_cluster_admin_installs(tmp_path: Path) -> None:
    values = write_values(tmp_path, TWO_TEAMS)
    code, out, _ = run_main("--values", str(values), "--cluster-only", "--provisioning")
    assert code == 0
    assert list(yaml.safe_load_all(out)) == cluster_manifests(provisioning=True)
    with pytest.raises(SystemExit):
        run_main("--values", str(values), "--cluster-only", "--teams-only")


@pytest.mark.parametrize("wrapped", [True, False])
def test_cli_reads_a_plain_json_config(tmp_path: Path, wrapped: bool) -> None:
    path = tmp_path / "mlteams.json"
    path.write_text(json.dumps({"MLTeams": TWO_TEAMS} if wrapped else TWO_TEAMS))
    code, out, _ = run_main("--config", str(path), "--provisioning")
    assert code == 0
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(out)]
    assert PROVISIONER_CLUSTER_ROLE in names


def test_cli_broken_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(TWO_TEAMS))
    broken["teams"]["vision"]["quota"]["gpus_per_user"] = "two"
    values = write_values(tmp_path, broken)
    code, out, err = run_main("--values", str(values))
    assert code == 2
    assert out == ""
    assert "MLTeams.teams.vision.quota.gpus_per_user: must be an integer" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hub: {config: {}}\n", "has no hub.config.MLTeams"),
        ("singleuser: {}\n", "has no hub"),
        ("hub: [\n", "is not valid YAML or JSON"),
    ],
)
def test_cli_unusable_values_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(content)
    code, out, err = run_main("--values", str(path))
    assert (code, out) == (2, "")
    assert message in err


def test_cli_missing_file_and_bad_hub_namespace_exit_2(tmp_path: Path) -> None:
    code, _, err = run_main("--config", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err
    values = write_values(tmp_path, TWO_TEAMS)
    code, _, err = run_main("--values", str(values), "--hub-namespace", "Not_A_Namespace")
    assert code == 2
    assert "the hub namespace must be a DNS-1123 label" in err


def test_cli_prints_the_json_schema_of_the_mlteams_section(tmp_path: Path) -> None:
    code, out, err = run_main("--schema")
    assert (code, err) == (0, "")
    assert out == (REPO / "helm-values" / "mlteams.schema.json").read_text()
    assert json.loads(out)["title"] == "MLTeams"
    with pytest.raises(SystemExit):
        run_main("--schema", "--values", str(write_values(tmp_path, TWO_TEAMS)))


def test_python_dash_m_runs_the_command(tmp_path: Path) -> None:
    values = write_values(tmp_path, TWO_TEAMS)
    done = subprocess.run(
        [sys.executable, "-m", "hub_ext.provisioning", "--values", str(values)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(list(yaml.safe_load_all(done.stdout))) == 9
    broken = json.loads(json.dumps(TWO_TEAMS))
    broken["teams"]["nlp"]["profiles"] = ["cpu", "gpu-xl"]
    broken = write_values(tmp_path, broken)
    done = subprocess.run(
        [sys.executable, "-m", "hub_ext.provisioning", "--values", str(broken)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert 'MLTeams.teams.nlp.profiles[1]: profile "gpu-xl" is not declared' in done.stderr


# -- the admin guide ----------------------------------------------------------------------------

GUIDE = REPO / "docs" / "admin" / "provisioning.md"


def guide_section(role: str) -> str:
    """The table of rules that follows the role's name in the guide."""
    text = GUIDE.read_text()
    start = text.index("| resources |", text.index(f"**`{role}`**"))
    end = text.find("\n\n", start)
    return text[start : end if end != -1 else len(text)]


def test_admin_guide_lists_every_rule_of_every_role() -> None:
    for manifest in cluster_manifests(provisioning=True):
        if manifest["kind"] != "ClusterRole":
            continue
        section = guide_section(manifest["metadata"]["name"])
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        assert len(rows) == len(manifest["rules"])
        for rule in manifest["rules"]:
            resources = ", ".join(f"`{r}`" for r in rule["resources"])
            if "resourceNames" in rule:
                resources += ", name " + ", ".join(f"`{n}`" for n in rule["resourceNames"])
                resources += " only"
            verbs = ", ".join(f"`{v}`" for v in rule["verbs"])
            assert f"| {resources} | {verbs} |" in section, (resources, verbs)


def test_rendering_imports_no_kubernetes_client() -> None:
    probe = (
        "import sys, hub_ext.policy.manifests, hub_ext.provisioning.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'kubernetes', 'kubernetes_asyncio', 'kubespawner', 'tornado', 'jupyterhub'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
